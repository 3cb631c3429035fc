"""Compute-optimal allocation of a FLOP budget C under the posterior of Eq. 4.

Per draw, M* = (b/a)^(1/(2η)) (``forms.optimal_multiplier``), N* = sqrt(C/(6·M*)) and
D* = M*·N*. The loss (and chained error) band at the optimum is the predictive band of a run
at (C, median M*), the run a user would train. The penalty of training at M instead is
L_d(C, M) − L_d(C, M*_d) per draw (noise cancels in the paired difference), which shows how
flat the optimum is.
"""

from __future__ import annotations

import jax
import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.laws.bayes.predict import Bands, ErrorLaw, LossLaw, chained_error_draws, loss_draws

PENALTY_SPAN = 30.0  # the penalty curve spans median M* / 30 to × 30
PENALTY_POINTS = 41


def interval(draws) -> dict:
    """``{median, lo95, hi95}`` of one quantity's draws."""
    b = Bands.from_draws(np.asarray(draws, np.float64).reshape(-1, 1), levels=(95,))
    return {"median": float(b.median[0]), "lo95": float(b.lo[95][0]), "hi95": float(b.hi[95][0])}


def band(draws_DxP, i: int = 0) -> dict:
    return interval(np.asarray(draws_DxP)[:, i])


def error_band(draws_DxP, i: int = 0) -> dict:
    """:func:`band` of chained error draws, with the share of draws left out of it because their
    Eq. 5 gives Err <= 0 there (NaN draws: no prediction, see ``laws.bayes.predict``)."""
    return band(draws_DxP, i) | {"nonpositive_share": float(np.mean(np.isnan(np.asarray(draws_DxP)[:, i])))}


def check_budget(C: float, flag: str = "--budget") -> float:
    if not np.isfinite(C) or C <= 0:
        raise UserError(f"{flag}: a FLOP budget must be positive and finite, got {C!r}")
    return float(C)


def m_star(loss: LossLaw) -> np.ndarray:
    """Posterior draws of the compute-optimal multiplier M*."""
    return np.asarray(forms.optimal_multiplier({"a": loss.a, "b": loss.b, "eta": loss.eta}), np.float64)


def compute_optimal(loss: LossLaw, error: ErrorLaw | None, C: float, *, seed: int = 0) -> dict:
    """The ``compute_optimal`` block of plan.json for budget ``C``."""
    C = check_budget(C)
    M = m_star(loss)
    N = np.sqrt(C / (6.0 * M))
    M_med = float(np.median(M))
    err = chained_error_draws(loss, error, [C], [M_med], seed=seed) if error is not None else None
    out = {"C": C, "M_star": interval(M), "N": interval(N), "D": interval(M * N),
           "loss": band(loss_draws(loss, [C], [M_med], seed=seed)),
           "error": error_band(err) if err is not None else None,
           "at_M": M_med}  # fmt: skip
    out["penalty"] = penalty_curve(loss, C, M)
    return out


def penalty_curve(loss: LossLaw, C: float, M_star_D: np.ndarray) -> list[dict]:
    """Loss penalty of training at M instead of each draw's M*, over a grid of M around the
    median M*: ``[{M, median, lo95, hi95}]`` in loss units."""
    M_med = float(np.median(M_star_D))
    M_G = np.geomspace(M_med / PENALTY_SPAN, M_med * PENALTY_SPAN, PENALTY_POINTS)
    at_M = np.exp(loss.log_law(np.full_like(M_G, C), M_G))  # (draws, G)
    p = {"E": loss.E, "a": loss.a, "b": loss.b, "eta": loss.eta}
    with jax.enable_x64(True):
        at_opt = np.asarray(forms.overtrain(p, C, M_star_D), np.float64)
    return [{"M": float(m), **interval(at_M[:, g] - at_opt)} for g, m in enumerate(M_G)]
