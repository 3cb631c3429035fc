"""Where a prediction sits relative to the fit points: extrapolation distance in log space.

Eq. 4 is fitted on a handful of runs; every other run is an extrapolation of some distance
from them. The distance used by the discrepancy model (see ``models``) is how far a point
lies outside the box spanned by the fit points, separately along ln C and ln M (natural-log
units, so 1.0 means "e times beyond the largest or below the smallest fit value"). Points
inside the box get 0 along that axis: interpolation is where the law is best supported.

For the fit points themselves the distance is taken leave-one-out, to the box of the *other*
fit points. That makes the edge points (smallest and largest C, the lone M = 320 run) count
as extrapolations of the rest, which is what lets the data inform how fast the discrepancy
grows instead of leaving it to the prior alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """Bounds of the fit points along each log axis: ``lo[j] <= x[:, j] <= hi[j]``."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def around(cls, x_PxK: np.ndarray) -> "Box":
        x_PxK = np.asarray(x_PxK, dtype=np.float64)
        return cls(lo=x_PxK.min(axis=0), hi=x_PxK.max(axis=0))

    def distance(self, x_PxK: np.ndarray) -> np.ndarray:
        """Per-axis distance outside the box (0 inside), shape like ``x_PxK``."""
        x_PxK = np.asarray(x_PxK, dtype=np.float64)
        return np.maximum(0.0, np.maximum(self.lo - x_PxK, x_PxK - self.hi))


def leave_one_out_distance(x_PxK: np.ndarray) -> np.ndarray:
    """Distance of each fit point to the box of the other fit points, shape ``(P, K)``."""
    x_PxK = np.asarray(x_PxK, dtype=np.float64)
    out = np.zeros_like(x_PxK)
    for i in range(len(x_PxK)):
        rest = np.delete(x_PxK, i, axis=0)
        out[i] = Box.around(rest).distance(x_PxK[i : i + 1])[0]
    return out


def log_cm(C, M) -> np.ndarray:
    """Stack (ln C, ln M) as a ``(P, 2)`` float64 array."""
    return np.stack([np.log(np.asarray(C, np.float64)), np.log(np.asarray(M, np.float64))], axis=-1)
