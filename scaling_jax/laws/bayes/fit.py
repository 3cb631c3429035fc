"""Bayesian fit of any law to anyone's points: one call picks the model (Eq. 3, Eq. 4, Eq. 5, or
a loss law chained to Eq. 5 when the points carry downstream errors), samples it with NUTS and
returns the laws that predict, with their priors stated.

``scaling-jax fit --estimator bayes`` and the paper's ``posterior`` check both fit through
:func:`fit_bayes`, so the same points and NUTS settings give the same draws either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpyro import handlers

from scaling_jax.errors import UserError
from scaling_jax.laws.bayes.chinchilla import ChinchillaData, ChinchillaLaw, chained_chinchilla_model, chinchilla_model
from scaling_jax.laws.bayes.discrepancy import Discrepancy
from scaling_jax.laws.bayes.infer import NutsConfig, Posterior, run_nuts
from scaling_jax.laws.bayes.models import ErrorData, LossData, chained_model, error_model, loss_model
from scaling_jax.laws.bayes.predict import Bands, ErrorLaw, LossLaw, chained_error_draws, error_draws, loss_draws

# law -> (its loss-data type, model alone, model chained to Eq. 5, posterior law type)
LOSS_MODELS = {
    "overtrain": (LossData, loss_model, chained_model, LossLaw),
    "chinchilla": (ChinchillaData, chinchilla_model, chained_chinchilla_model, ChinchillaLaw),
}
LAWS = (*LOSS_MODELS, "error")
PARAMS = {"overtrain": ("E", "a", "b", "eta"), "chinchilla": ("E", "A", "B", "alpha", "beta"),
          "error": ("epsilon", "k", "gamma")}  # fmt: skip


@dataclass(frozen=True)
class BayesFit:
    """A law's posterior: the loss law (Eq. 3 or 4) and/or the error law (Eq. 5) as draws."""

    law: str
    posterior: Posterior
    loss_law: LossLaw | ChinchillaLaw | None
    error_law: ErrorLaw | None
    priors: dict[str, str]

    @property
    def param_names(self) -> tuple[str, ...]:
        names = PARAMS[self.law]
        if self.law != "error" and self.error_law is not None:
            names += PARAMS["error"]
        return names

    def param_summary(self) -> dict[str, dict[str, float]]:
        """Median and central 95 % interval of each of the law's parameters (and σ_fit)."""
        s = self.posterior.samples
        names = self.param_names + tuple(k for k in ("sigma_loss", "sigma_error") if k in s)
        return {k: {"median": float(np.median(s[k])), "lo95": float(np.percentile(s[k], 2.5)),
                    "hi95": float(np.percentile(s[k], 97.5))} for k in names}  # fmt: skip

    def draws(self, *, C=None, M=None, L=None, seed: int = 0) -> dict[str, np.ndarray]:
        """Posterior predictive draws ``(draws, P)``: loss (and chained error) at (C, M) for a
        loss law, error at losses L for Eq. 5."""
        if self.law == "error":
            return {"error": error_draws(self.error_law, np.atleast_1d(np.asarray(L, np.float64)), seed=seed)}
        C, M = np.atleast_1d(np.asarray(C, np.float64)), np.atleast_1d(np.asarray(M, np.float64))
        out = {"loss": loss_draws(self.loss_law, C, M, seed=seed)}
        if self.error_law is not None:
            out["error"] = chained_error_draws(self.loss_law, self.error_law, C, M, seed=seed)
        return out

    def bands(self, **targets) -> dict[str, Bands]:
        return {k: Bands.from_draws(v) for k, v in self.draws(**targets).items()}


def describe_priors(model, *args) -> dict[str, str]:
    """Each latent site's prior, as its distribution and parameters (read from one traced run),
    and any density factors the model adds (their meaning is in the model's module docstring).
    A model's ``prior_notes`` (site → text) replace or add entries where a sampled coordinate's
    own distribution is not the prior in effect (Eq. 3's ln g, whose base a factor cancels)."""
    import jax

    with jax.enable_x64(True):  # the trace's arrays are float64: read them under x64 too (no truncation warning)
        tr = handlers.trace(handlers.seed(model, 0)).get_trace(*args)
        out = {}
        for name, site in tr.items():
            if site["type"] != "sample":
                continue
            fn = site["fn"]
            if site["is_observed"]:
                if type(fn).__name__ == "Unit":  # numpyro.factor
                    out[name] = f"density factor (see {model.__module__})"
                continue
            while type(fn).__name__ in ("Independent", "ExpandedDistribution", "MaskedDistribution"):
                fn = fn.base_dist
            values = ", ".join(f"{k}={float(np.mean(getattr(fn, k))):.4g}" for k in fn.arg_constraints
                               if hasattr(fn, k))
            out[name] = f"{type(fn).__name__}({values})"
    return out | getattr(model, "prior_notes", {})


def fit_bayes(law: str, *, loss: LossData | ChinchillaData | None = None, error: ErrorData | None = None,
              config: NutsConfig = NutsConfig(), loss_discrepancy: Discrepancy | None = None,
              error_discrepancy: Discrepancy | None = None) -> BayesFit:
    """NUTS on ``law``: Eq. 5 alone (``error`` only), a loss law alone (``loss`` only) or chained
    to Eq. 5 (both). Discrepancies default to draws from their weakly informative priors."""
    if law not in LAWS:
        raise UserError(f"the Bayesian estimator fits laws {list(LAWS)}, not {law!r}")
    if law == "error":
        if error is None or loss is not None:
            raise UserError("the error law (Eq. 5) is fitted to (loss, error) points only")
        model, args = error_model, (error,)
    else:
        data_type, alone, chained, _ = LOSS_MODELS[law]
        if not isinstance(loss, data_type):
            raise UserError(f"law {law!r} needs its fit points as {data_type.__name__}, got {type(loss).__name__}")
        model, args = (chained, (loss, error)) if error is not None else (alone, (loss,))
    post = run_nuts(model, *args, config=config)
    loss_law = error_law = None
    if law != "error":
        loss_law = LOSS_MODELS[law][3].from_samples(post.samples, loss.support, loss_discrepancy)
    if error is not None:
        error_law = ErrorLaw.from_samples(post.samples, error.support, error_discrepancy)
    return BayesFit(law, post, loss_law, error_law, describe_priors(model, *args))
