"""Identifiability of a fitted law: conditioning of JᵀJ at the optimum and parameter correlations."""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import forms
from scaling_jax.laws.points import design_problems

CORRELATION_WARN = 0.999
SCALED_CONDITION_WARN = 1e10


def jacobian(law: str, params: np.ndarray, xs: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n, P) Jacobian of the law's prediction with respect to its parameters, by autodiff."""
    fn, names, input_names = forms.law(law)
    with jax.enable_x64(True):
        x = tuple(jnp.asarray(xs[k], jnp.float64) for k in input_names)
        f = lambda p: fn(dict(zip(names, p)), *x)
        return np.asarray(jax.jacfwd(f)(jnp.asarray(params, jnp.float64)))


def identifiability(law: str, params: np.ndarray, xs: Mapping[str, np.ndarray], weights=None) -> dict:
    """``{"condition_number", "condition_number_scaled", "correlations", "warnings"}``.

    ``condition_number`` is that of JᵀJ as is; ``condition_number_scaled`` that of its
    correlation form, free of the parameters' units, and the one warned on.
    """
    _, names, _ = forms.law(law)
    J = jacobian(law, params, xs)
    if weights is not None:
        J = J * np.sqrt(np.asarray(weights))[:, None]
    A = J.T @ J
    warnings = list(design_problems(law, xs, weights))
    cond = float(np.linalg.cond(A))
    d = np.sqrt(np.clip(np.diag(A), 1e-300, None))
    scaled = A / np.outer(d, d)
    cond_scaled = float(np.linalg.cond(scaled))
    try:
        # A singular design overflows here; the non-finite entries are reported as None.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            cov = np.linalg.inv(scaled)
            s = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
            corr = cov / np.outer(s, s)
    except np.linalg.LinAlgError:
        corr = np.full_like(A, np.nan)
    if not np.isfinite(cond_scaled) or cond_scaled > SCALED_CONDITION_WARN:
        warnings.append(f"JᵀJ is near singular (scaled condition number {cond_scaled:.3g}): some parameters are not pinned by the data")
    n_eff = int(np.sum(np.asarray(weights) > 0)) if weights is not None else J.shape[0]
    if n_eff <= len(names):
        warnings.append(f"{n_eff} points for {len(names)} parameters: no residual degrees of freedom, the fit interpolates")
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if np.isfinite(corr[i, j]) and abs(corr[i, j]) > CORRELATION_WARN:
                warnings.append(f"{names[i]} and {names[j]} are {corr[i, j]:+.4f} correlated: the data barely separate them")
    return {
        "condition_number": cond if np.isfinite(cond) else None,
        "condition_number_scaled": cond_scaled if np.isfinite(cond_scaled) else None,
        "correlations": {
            names[i]: {names[j]: (float(corr[i, j]) if np.isfinite(corr[i, j]) else None) for j in range(len(names))}
            for i in range(len(names))
        },
        "warnings": warnings,
    }
