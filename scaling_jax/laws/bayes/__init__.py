"""Bayesian scaling laws: NumPyro models of Eq. 4 and Eq. 5, NUTS, posterior predictive bands.

``models`` holds the priors, likelihoods and discrepancy; ``design`` the extrapolation
distance; ``infer`` NUTS and its diagnostics; ``predict`` predictive draws and intervals.
"""

from scaling_jax.laws.bayes.design import Box
from scaling_jax.laws.bayes.infer import Diagnostics, NutsConfig, Posterior, run_nuts
from scaling_jax.laws.bayes.models import (
    ErrorData, LossData, PooledLossData, chained_model, error_model, hierarchical_loss_model, loss_model,
)  # fmt: skip
from scaling_jax.laws.bayes.predict import (
    Bands, ErrorLaw, LossLaw, chained_error_draws, error_draws, loss_draws, predictive, to_CM,
)  # fmt: skip

__all__ = [
    "Bands", "Box", "Diagnostics", "ErrorData", "ErrorLaw", "LossData", "LossLaw", "NutsConfig",
    "PooledLossData", "Posterior", "chained_error_draws", "chained_model", "error_draws", "error_model",
    "hierarchical_loss_model", "loss_draws", "loss_model", "predictive", "run_nuts", "to_CM",
]  # fmt: skip
