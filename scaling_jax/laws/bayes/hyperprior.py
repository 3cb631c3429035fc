"""Hyperpriors of the discrepancy's scales (δ₀ and τ per axis) when residuals calibrate them.

Three sources, one per way of calibrating:

* ``widened``: the weakly informative prior's HalfNormal scales × ``CALIBRATION_WIDEN``, for
  held-out runs of past sweeps (hundreds of residuals decide; ``--calibrate others``);
* ``default``: the prior's own scales, for a ladder's rolling-origin residuals (a few cuts, each
  one group: the prior keeps its weight; ``--calibrate self``);
* ``from_draws``: a calibration file's posterior draws, as independent LogNormals fitted to each
  scale's draws (``--calibrate self+FILE``: past sweeps' lesson, updated by this ladder).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from scaling_jax.laws.bayes.discrepancy import CALIBRATION_WIDEN
from scaling_jax.laws.bayes.discrepancy import _axes as axes_of
from scaling_jax.laws.bayes.discrepancy import _scales as scales_of

# A file's draws of a scale that is ~0 (δ₀ often is) are clipped here before their log is taken,
# and the LogNormal's sd is at least this much, so the prior stays a prior, not a point.
DRAW_FLOOR = 1e-5
MIN_LOG_SD = 0.5


@dataclass(frozen=True)
class HyperPrior:
    """Per scale: ``family`` ("half_normal": ``loc`` 0 and ``scale``; "log_normal": ``loc``, ``scale``
    of ln), for δ₀ (index 0) and τ along each of ``axes``."""

    kind: str
    family: str
    loc: tuple[float, ...]
    scale: tuple[float, ...]
    origin: str

    @classmethod
    def default(cls, kind: str) -> "HyperPrior":
        floor, tau = scales_of(kind)
        return cls(kind, "half_normal", (0.0,) * (1 + len(tau)), (floor, *map(float, tau)), "prior")

    @classmethod
    def widened(cls, kind: str) -> "HyperPrior":
        floor, tau = scales_of(kind)
        s = (CALIBRATION_WIDEN * floor, *(CALIBRATION_WIDEN * float(t) for t in tau))
        return cls(kind, "half_normal", (0.0,) * len(s), s, f"prior x {CALIBRATION_WIDEN:g}")

    @classmethod
    def from_draws(cls, disc) -> "HyperPrior":
        """LogNormal per scale, fitted to a Discrepancy's draws (mean and sd of their logs)."""
        cols = [disc.floor] + [disc.tau_DxK[:, k] for k in range(disc.tau_DxK.shape[1])]
        logs = [np.log(np.maximum(np.asarray(c, np.float64), DRAW_FLOOR)) for c in cols]
        return cls(disc.kind, "log_normal", tuple(float(v.mean()) for v in logs),
                   tuple(max(float(v.std()), MIN_LOG_SD) for v in logs), disc.source)

    @property
    def axes(self) -> tuple[str, ...]:
        return axes_of(self.kind)

    def distributions(self):
        """(δ₀'s distribution, τ's as one event over the axes) for ``numpyro.sample``."""
        loc, scale = jnp.asarray(self.loc), jnp.asarray(self.scale)
        if self.family == "half_normal":
            return dist.HalfNormal(scale[0]), dist.HalfNormal(scale[1:]).to_event(1)
        return dist.LogNormal(loc[0], scale[0]), dist.LogNormal(loc[1:], scale[1:]).to_event(1)

    def describe(self) -> dict:
        """What the hyperprior is, for fit.json / posterior.json / plan.json."""
        names = ("floor", *(f"tau_{a}" for a in self.axes))
        if self.family == "half_normal":
            return {"from": self.origin, **{n: f"HalfNormal({s:.4g})" for n, s in zip(names, self.scale)}}
        return {"from": self.origin, **{n: f"LogNormal({m:.4g}, {s:.4g})" for n, m, s in zip(names, self.loc,
                                                                                          self.scale)}}
