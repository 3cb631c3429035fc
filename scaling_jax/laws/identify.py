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
# JᵀJ's eigenvalues below this fraction of its largest are rounding noise (float64's ~1e-16
# relative error, amplified by the Jacobian's spread): the design is singular along them.
RANK_RTOL = 1e-13
NULL_LOADING = 1e-6  # a parameter whose squared weight in a null direction exceeds this is not pinned


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
    corr, confounded = _correlations(scaled)
    if not np.isfinite(cond_scaled) or cond_scaled > SCALED_CONDITION_WARN:
        warnings.append(f"JᵀJ is near singular (scaled condition number {cond_scaled:.3g}): "
                        "some parameters are not pinned by the data")
    for group in confounded:
        listed = ", ".join(names[i] for i in group)
        warnings.append(f"the design cannot separate {listed}: JᵀJ is singular along a combination of them, "
                        "so their correlations are undefined (null)")
    n_eff = int(np.sum(np.asarray(weights) > 0)) if weights is not None else J.shape[0]
    if n_eff <= len(names):
        warnings.append(f"{n_eff} points for {len(names)} parameters: no residual degrees of freedom, "
                        "the fit interpolates")
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if np.isfinite(corr[i, j]) and abs(corr[i, j]) > CORRELATION_WARN:
                warnings.append(f"{names[i]} and {names[j]} are {corr[i, j]:+.4f} correlated: "
                                "the data barely separate them")
    return {
        "condition_number": cond if np.isfinite(cond) else None,
        "condition_number_scaled": cond_scaled if np.isfinite(cond_scaled) else None,
        "correlations": {
            names[i]: {names[j]: (float(corr[i, j]) if np.isfinite(corr[i, j]) else None) for j in range(len(names))}
            for i in range(len(names))
        },
        "warnings": warnings,
    }


def _correlations(scaled: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Correlations of the parameters' estimates from the correlation form of JᵀJ, by its
    eigen-decomposition, and the groups of parameters its null space confounds.

    Eigenvalues at or below RANK_RTOL × the largest are taken as zero: JᵀJ is not invertible
    along those directions, so a parameter with weight there has no finite variance and its
    correlations are NaN (reported as None). The rest come from the pseudo-inverse, which is
    positive semi-definite, so they lie in [-1, 1] (clipped against rounding).
    """
    lam, V = np.linalg.eigh((scaled + scaled.T) / 2)
    null = lam <= RANK_RTOL * max(float(lam.max()), 1e-300)
    cov = (V[:, ~null] / lam[~null]) @ V[:, ~null].T
    Vn = V[:, null]
    unpinned = np.sum(Vn**2, axis=1) > NULL_LOADING
    groups = []
    for v in Vn.T:  # one group per null direction, parameters with visible weight in it
        g = tuple(int(i) for i in np.flatnonzero(v**2 > NULL_LOADING))
        if g and g not in groups:
            groups.append(g)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.clip(cov / np.outer(sd, sd), -1.0, 1.0)
    corr[unpinned, :] = np.nan
    corr[:, unpinned] = np.nan
    corr[~np.isfinite(corr)] = np.nan
    return corr, groups
