"""Bayesian scaling laws: NumPyro models of Eq. 3, Eq. 4 and Eq. 5, NUTS, posterior predictive bands.

``models`` holds the priors and likelihoods of Eq. 4 and Eq. 5, ``chinchilla`` those of Eq. 3;
``design`` the extrapolation distance;
``discrepancy`` the law's misfit beyond its fit points (prior, or calibrated on past sweeps);
``calibration_file`` saves and loads calibrated discrepancies for reuse;
``infer`` NUTS and its diagnostics; ``predict`` predictive draws and intervals.
"""

from scaling_jax.laws.bayes.calibration_file import load_calibration, save_calibration
from scaling_jax.laws.bayes.chinchilla import (
    ChinchillaData,
    ChinchillaLaw,
    chained_chinchilla_model,
    chinchilla_model,
)  # fmt: skip
from scaling_jax.laws.bayes.design import Support
from scaling_jax.laws.bayes.discrepancy import Discrepancy, Residuals, calibrate, prior_discrepancy
from scaling_jax.laws.bayes.infer import Diagnostics, NutsConfig, Posterior, run_nuts
from scaling_jax.laws.bayes.models import (
    ErrorData,
    LossData,
    PooledLossData,
    chained_model,
    error_model,
    hierarchical_loss_model,
    independent_loss_model,
    loss_model,
)  # fmt: skip
from scaling_jax.laws.bayes.predict import (
    Bands,
    ErrorLaw,
    LossLaw,
    chained_error_draws,
    error_draws,
    loss_draws,
    predictive,
    to_CM,
)  # fmt: skip

__all__ = [
    "Bands", "ChinchillaData", "ChinchillaLaw", "chained_chinchilla_model", "chinchilla_model",
    "Diagnostics", "Discrepancy", "ErrorData", "ErrorLaw", "LossData", "LossLaw", "NutsConfig",
    "PooledLossData", "Posterior", "Residuals", "Support", "calibrate", "chained_error_draws", "chained_model",
    "error_draws", "error_model", "hierarchical_loss_model", "independent_loss_model", "load_calibration",
    "loss_draws", "loss_model",
    "predictive", "prior_discrepancy", "run_nuts", "save_calibration", "to_CM",
]  # fmt: skip
