"""Predictive draws of the point estimators (LM, Huber), to set beside the Bayesian ones.

A predictive interval is for the *measured* loss of a new run, so it needs more than the law's
parameter uncertainty: each draw is the law refitted on one bootstrap resample (parameter
uncertainty, from the same estimator as the point fit) times exp(σ·z), σ the fit's residual
scale on log values (a run's scatter about the law). With no residual degrees of freedom
(as many points as parameters) σ is unknown and the draws carry parameter uncertainty only;
the result says which.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from scaling_jax.laws import forms
from scaling_jax.laws.bootstrap import BootstrapResult
from scaling_jax.laws.fit import predict


def log_residual_scale(law: str, params: Mapping[str, float], xs: Mapping[str, np.ndarray], y) -> float | None:
    """sqrt(Σ (ln y − ln ŷ)² / (n − P)): the scatter of runs about the fitted law, or None when n ≤ P."""
    y = np.asarray(y, np.float64)
    dof = y.size - len(forms.law(law)[1])
    if dof <= 0:
        return None
    r = np.log(y) - np.log(predict(law, params, **xs))
    return float(np.sqrt(np.sum(r**2) / dof))


def _noise(shape, sigma: float | None, rng: np.random.Generator) -> np.ndarray:
    return np.ones(shape) if sigma is None else np.exp(sigma * rng.standard_normal(shape))


def predictive_draws(bs: BootstrapResult, sigma: float | None, *, seed: int = 0, **inputs) -> np.ndarray:
    """(resamples, P) draws of a new run's value at ``inputs`` (the law's input names)."""
    law_draws = bs.predictions(**{k: np.atleast_1d(np.asarray(v, np.float64)) for k, v in inputs.items()})
    return law_draws * _noise(law_draws.shape, sigma, np.random.default_rng(seed))


def with_discrepancy(draws_RxP: np.ndarray, disc, dist, *, seed: int = 2) -> np.ndarray:
    """Draws times exp(sd(Δ)·z): the misfit a (self-)calibrated discrepancy ``disc`` expects at the
    targets' distances ``dist`` from the fit points, ``(P, K)`` or per draw ``(R, P, K)``, one
    discrepancy draw per predictive draw (``--calibrate self`` for the point estimators)."""
    sd = disc.take(len(draws_RxP), seed=seed).sd(dist)
    return draws_RxP * np.exp(sd * np.random.default_rng(seed).standard_normal(sd.shape))


def chained_error_draws(loss_draws_RxP: np.ndarray, error_bs: BootstrapResult, sigma: float | None, *,
                        seed: int = 1) -> np.ndarray:
    """Each loss draw through one bootstrap draw of Eq. 5 (paired at random), plus Eq. 5's scatter.
    A draw whose Eq. 5 gives Err <= 0 there makes no prediction (NaN), as the Bayesian bands treat
    it: the fit's log-error likelihood gives such a law zero density; bands leave it out and count it."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, error_bs.n_kept, size=len(loss_draws_RxP))
    p = {k: error_bs.params[idx, i][:, None] for i, k in enumerate(error_bs.names)}
    law_draws = predict("error", p, L=loss_draws_RxP)
    law_draws = np.where(law_draws > 0, law_draws, np.nan)
    return law_draws * _noise(law_draws.shape, sigma, rng)
