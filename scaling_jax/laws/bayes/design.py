"""Where a prediction sits relative to the fit points: extrapolation distance in log space.

Eq. 4 is fitted on a handful of runs; every other run is an extrapolation of some distance
from them. The distance used by the discrepancy model (see ``discrepancy``) is the offset
from the *nearest* fit point (Euclidean in the log inputs), per axis, in natural-log units
(1.0 means a factor e). Nearest point rather than the box the fit points span: Table 1's
box reaches M = 320 only through its smallest model, so a 0.15B model at M = 160 lies
inside the box yet three doublings in M from any fit run of its size, and such runs miss
the law by 2-3 % on the testbed. A fit point itself is at distance 0.

Along ln M the two sides are kept apart: fewer tokens per parameter than the nearest fit run
is toward under-training, more is toward over-training, different regimes for the law, so
the discrepancy may grow at a different rate on each side. Along ln C (and ln L for Eq. 5)
one distance serves both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSS_AXES = ("C", "M_below", "M_above")
ERROR_AXES = ("L",)


@dataclass(frozen=True)
class Support:
    """The fit points' log inputs ``x_FxK``, from which prediction distances are measured."""

    x_FxK: np.ndarray

    def __post_init__(self):
        x = np.asarray(self.x_FxK, np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"support needs a (points, axes) array of fit points, got shape {x.shape}")
        object.__setattr__(self, "x_FxK", x)

    def offset(self, x_PxK, xp=np) -> np.ndarray:
        """Signed offset of each point from its nearest fit point, shape like ``x_PxK``
        (any leading axes). ``xp`` is the array module (``jax.numpy`` inside compiled code)."""
        x = xp.asarray(x_PxK)
        diff = x[..., None, :] - xp.asarray(self.x_FxK)  # (..., F, K)
        nearest = xp.argmin(xp.sum(diff**2, axis=-1), axis=-1)
        return xp.take_along_axis(diff, nearest[..., None, None], axis=-2)[..., 0, :]


def log_cm(C, M, xp=np) -> np.ndarray:
    """Stack (ln C, ln M) as a ``(P, 2)`` array (float64 under NumPy)."""
    if xp is np:
        C, M = np.asarray(C, np.float64), np.asarray(M, np.float64)
    return xp.stack([xp.log(C), xp.log(M)], axis=-1)


def loss_distance(support: Support, C, M, xp=np) -> np.ndarray:
    """Eq. 4 distances along ``LOSS_AXES`` from the nearest fit point: |Δ ln C|, Δ ln M
    toward fewer tokens per parameter, Δ ln M toward more; shape ``(P, 3)``."""
    off = support.offset(log_cm(xp.atleast_1d(C), xp.atleast_1d(M), xp), xp)
    return xp.stack([xp.abs(off[:, 0]), xp.maximum(0.0, -off[:, 1]), xp.maximum(0.0, off[:, 1])], axis=-1)


def error_distance(support: Support, L, xp=np) -> np.ndarray:
    """Eq. 5 distance |Δ ln L| from the nearest fit loss; shape ``L.shape + (1,)``."""
    L = np.asarray(L, np.float64) if xp is np else L
    # One axis: |offset to the nearest fit loss| is the smallest |difference| (no argmin/gather).
    return xp.min(xp.abs(xp.log(L)[..., None] - xp.asarray(support.x_FxK)[:, 0]), axis=-1)[..., None]
