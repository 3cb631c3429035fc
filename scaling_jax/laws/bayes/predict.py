"""Posterior predictive draws of loss (Eq. 4) and chained error (Eq. 4 → Eq. 5), and their
central intervals.

A predictive draw is the law at one posterior draw of its parameters plus one draw of its
discrepancy at the target's extrapolation distance, so bands carry both the parameter
uncertainty and the law's misfit, which grows outside the fit box. The chained error feeds
each loss draw (discrepancy included) through a matching draw of Eq. 5 and adds Eq. 5's own
discrepancy, so the error band includes both laws' uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import forms
from scaling_jax.laws.bayes.design import Box, log_cm
from scaling_jax.laws.bayes.models import discrepancy

LEVELS = (50, 90, 95)


@dataclass(frozen=True)
class LossLaw:
    """Posterior draws of Eq. 4 (shape ``(draws,)`` each) and the box of its fit points."""

    E: np.ndarray
    a: np.ndarray
    b: np.ndarray
    eta: np.ndarray
    sigma: np.ndarray
    tau_Kx: np.ndarray  # (draws, 2): growth per e-fold along ln C, ln M
    box: Box

    @classmethod
    def from_samples(cls, samples: dict, box: Box, index: int | None = None) -> "LossLaw":
        """From ``Posterior.samples``; ``index`` picks one set of a hierarchical fit."""
        pick = (lambda x: x) if index is None else (lambda x: x[:, index])
        return cls(
            E=pick(samples["E"]), a=pick(samples["a"]), b=pick(samples["b"]), eta=pick(samples["eta"]),
            sigma=samples["sigma_loss"], tau_Kx=samples["tau_loss"], box=box,
        )  # fmt: skip


@dataclass(frozen=True)
class ErrorLaw:
    """Posterior draws of Eq. 5 and the box (in ln L) of its fit points."""

    epsilon: np.ndarray
    k: np.ndarray
    gamma: np.ndarray
    sigma: np.ndarray
    tau_Kx: np.ndarray  # (draws, 1): growth per e-fold of loss outside the fit range
    box: Box

    @classmethod
    def from_samples(cls, samples: dict, box: Box) -> "ErrorLaw":
        return cls(
            epsilon=samples["epsilon"], k=samples["k"], gamma=samples["gamma"],
            sigma=samples["sigma_error"], tau_Kx=samples["tau_error"], box=box,
        )  # fmt: skip


def to_CM(*, N=None, M=None, C=None, D=None):
    """Targets given as (N, M), (N, D) or (C, M) → float64 (C, M)."""
    if C is not None and M is not None:
        return np.asarray(C, np.float64), np.asarray(M, np.float64)
    if N is not None and M is not None:
        N, M = np.asarray(N, np.float64), np.asarray(M, np.float64)
        return forms.compute(N, M * N), M
    if N is not None and D is not None:
        N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
        return forms.compute(N, D), forms.multiplier(N, D)
    raise ValueError("targets need (C, M), (N, M) or (N, D)")


def loss_draws(law: LossLaw, C, M, *, seed: int = 0) -> np.ndarray:
    """Predictive loss draws, shape ``(draws, P)`` for ``P`` targets."""
    C, M = np.atleast_1d(C).astype(np.float64), np.atleast_1d(M).astype(np.float64)
    dist_PxK = law.box.distance(log_cm(C, M))
    with jax.enable_x64(True):
        p = {k: jnp.asarray(getattr(law, k))[:, None] for k in ("E", "a", "b", "eta")}
        mean = jnp.log(forms.overtrain(p, C[None], M[None]))
        sd = discrepancy(law.sigma[:, None], law.tau_Kx[:, None, :], dist_PxK[None])
        z = jax.random.normal(jax.random.PRNGKey(seed), mean.shape, jnp.float64)
        return np.asarray(jnp.exp(mean + sd * z))


def error_draws(law: ErrorLaw, L_DxP, *, seed: int = 1) -> np.ndarray:
    """Predictive error draws at losses ``L_DxP`` (one row per posterior draw, or ``(P,)``)."""
    L_DxP = np.broadcast_to(np.asarray(L_DxP, np.float64), (len(law.epsilon), np.shape(L_DxP)[-1]))
    dist_DxPxK = law.box.distance(np.log(L_DxP)[..., None])
    with jax.enable_x64(True):
        p = {k: jnp.asarray(getattr(law, k))[:, None] for k in ("epsilon", "k", "gamma")}
        mean = jnp.log(jnp.clip(forms.error(p, L_DxP), 1e-6, None))
        sd = discrepancy(law.sigma[:, None], law.tau_Kx[:, None, :], dist_DxPxK)
        z = jax.random.normal(jax.random.PRNGKey(seed), mean.shape, jnp.float64)
        return np.asarray(jnp.exp(mean + sd * z))


def chained_error_draws(loss: LossLaw, error: ErrorLaw, C, M, *, seed: int = 0) -> np.ndarray:
    """(C, M) → loss draw → error draw: both laws' uncertainty, shape ``(draws, P)``."""
    if len(loss.E) != len(error.epsilon):
        raise ValueError(f"loss and error posteriors differ in draws: {len(loss.E)} vs {len(error.epsilon)}")
    return error_draws(error, loss_draws(loss, C, M, seed=seed), seed=seed + 1)


@dataclass(frozen=True)
class Bands:
    """Median and central intervals per target: ``lo[level]``, ``hi[level]`` of shape ``(P,)``."""

    median: np.ndarray
    lo: dict[int, np.ndarray]
    hi: dict[int, np.ndarray]

    @classmethod
    def from_draws(cls, draws_DxP: np.ndarray, levels=LEVELS) -> "Bands":
        q = lambda p: np.percentile(draws_DxP, p, axis=0)  # noqa: E731
        return cls(
            median=q(50.0),
            lo={lv: q(50.0 - lv / 2) for lv in levels},
            hi={lv: q(50.0 + lv / 2) for lv in levels},
        )

    def covers(self, y_P: np.ndarray, level: int) -> np.ndarray:
        return (self.lo[level] <= y_P) & (y_P <= self.hi[level])

    def to_dict(self) -> dict:
        """Per-target quantiles as lists, keyed like the JSON outputs: q2.5, q5, q25, q50, ..."""
        out = {"q50": self.median.tolist()}
        for lv in self.lo:
            out[f"q{50 - lv / 2:g}"] = self.lo[lv].tolist()
            out[f"q{50 + lv / 2:g}"] = self.hi[lv].tolist()
        return out


def predictive(loss: LossLaw, error: ErrorLaw | None = None, *, N=None, M=None, C=None, D=None,
               seed: int = 0) -> dict[str, Bands]:
    """50/90/95 % bands of loss (and chained error when ``error`` is given) at targets given
    as (N, M), (N, D) or (C, M)."""
    C, M = to_CM(N=N, M=M, C=C, D=D)
    C, M = np.atleast_1d(C), np.atleast_1d(M)
    out = {"loss": Bands.from_draws(loss_draws(loss, C, M, seed=seed))}
    if error is not None:
        out["error"] = Bands.from_draws(chained_error_draws(loss, error, C, M, seed=seed))
    return out
