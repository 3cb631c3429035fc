"""Posterior predictive draws of loss (Eq. 4) and chained error (Eq. 4 → Eq. 5), and their
central intervals.

A predictive draw is the law at one posterior draw of its parameters plus noise of sd
sqrt(σ_fit² + sd(Δ)²): its fit noise and one draw of its discrepancy at the target's
extrapolation distance Δ (see ``discrepancy``), so bands carry the parameter uncertainty,
the scatter of runs and the law's misfit, which grows away from the fit points. The chained
error feeds each loss draw through a matching draw of Eq. 5 and adds Eq. 5's own noise and
discrepancy, so the error band includes both laws' uncertainty.

Eq. 5 falls below zero at losses low enough (ε − k·e^−γL ≤ 0). The fit gives a draw that does
so at a fit point zero density (``models.error_model``); a draw that does so at a target makes
no prediction there, so its error draw is NaN, left out of the bands' quantiles (the rest
renormalised) and counted: ``Bands.undefined`` is the share left out per target. Clipping
such draws to a tiny error (as before) put a floor of 1e-6 under the bands and counted them
as reaching any error target.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import forms
from scaling_jax.laws.bayes.design import Support, error_distance, loss_distance
from scaling_jax.laws.bayes.discrepancy import Discrepancy, noise_sd, prior_discrepancy

LEVELS = (50, 90, 95)


def _paired(disc: Discrepancy | None, kind: str, n: int) -> Discrepancy:
    """``disc`` (or the prior's) with exactly ``n`` draws, to pair with ``n`` posterior draws."""
    return (disc or prior_discrepancy(kind, n, seed=("loss", "error").index(kind))).take(n)


@dataclass(frozen=True)
class LossLaw:
    """Posterior draws of Eq. 4 (shape ``(draws,)`` each), its fit noise σ_fit, the support of
    its fit points and the discrepancy applied beyond them."""

    E: np.ndarray
    a: np.ndarray
    b: np.ndarray
    eta: np.ndarray
    sigma: np.ndarray
    support: Support
    discrepancy: Discrepancy

    @classmethod
    def from_samples(cls, samples: dict, support: Support, discrepancy: Discrepancy | None = None,
                     index: int | None = None) -> "LossLaw":
        """From ``Posterior.samples``; ``index`` picks one set of a hierarchical fit;
        ``discrepancy`` defaults to draws from its weakly informative prior."""
        pick = (lambda x: x) if index is None else (lambda x: x[:, index])
        n = len(samples["sigma_loss"])
        return cls(
            E=pick(samples["E"]), a=pick(samples["a"]), b=pick(samples["b"]), eta=pick(samples["eta"]),
            sigma=samples["sigma_loss"], support=support, discrepancy=_paired(discrepancy, "loss", n),
        )  # fmt: skip

    def law_args(self, C, M) -> tuple:
        """(form, parameters as (draws, 1) columns, ln C and ln M as (1, P) rows) for ``log_law_DxP``;
        call under x64."""
        p = {k: jnp.asarray(getattr(self, k))[:, None] for k in ("E", "a", "b", "eta")}
        return forms.overtrain_at_logs, p, *log_rows(C, M)

    def log_law(self, C, M) -> np.ndarray:
        """ln L of the law per draw, no noise: shape ``(draws, P)``."""
        with jax.enable_x64(True):
            return np.asarray(log_law_DxP(*self.law_args(C, M)))


@dataclass(frozen=True)
class ErrorLaw:
    """Posterior draws of Eq. 5, its fit noise, the support (in ln L) of its fit points and the
    discrepancy applied beyond them."""

    epsilon: np.ndarray
    k: np.ndarray
    gamma: np.ndarray
    sigma: np.ndarray
    support: Support
    discrepancy: Discrepancy

    @classmethod
    def from_samples(cls, samples: dict, support: Support, discrepancy: Discrepancy | None = None) -> "ErrorLaw":
        n = len(samples["sigma_error"])
        return cls(
            epsilon=samples["epsilon"], k=samples["k"], gamma=samples["gamma"],
            sigma=samples["sigma_error"], support=support, discrepancy=_paired(discrepancy, "error", n),
        )  # fmt: skip

    def log_law(self, L_DxP) -> np.ndarray:
        """ln Err of the law per draw at losses ``L_DxP`` (one row per draw, or ``(P,)`` for
        the same losses under every draw), no noise: shape ``(draws, P)``."""
        with jax.enable_x64(True):
            return np.asarray(log_law_DxP(*self.law_args(L_DxP)))

    def law_args(self, L_DxP) -> tuple:
        """(form, parameters as (draws, 1) columns, losses) for ``log_law_DxP``; call under x64."""
        p = {k: jnp.asarray(getattr(self, k))[:, None] for k in ("epsilon", "k", "gamma")}
        return _defined_error, p, jnp.asarray(L_DxP, jnp.float64)


def log_rows(*xs) -> tuple:
    """ln of each input as a float64 (1, P) row, computed once per target rather than once per
    (draw, target) inside the fused kernel."""
    return tuple(jnp.asarray(np.log(np.asarray(x, np.float64)))[None] for x in xs)


def _defined_error(p, L):
    """Eq. 5 where it is positive, NaN where a draw gives Err ≤ 0 (no prediction: module docstring)."""
    err = forms.error(p, L)
    return jnp.where(err > 0, err, jnp.nan)


@functools.partial(jax.jit, static_argnums=0)
def log_law_DxP(form, p, *xs):
    """ln form(p, *xs) in one compiled kernel (no (draws, P) temporaries between the law's terms)."""
    return jnp.log(form(p, *xs))


@functools.partial(jax.jit, static_argnums=0)
def _noisy_kernel(form, p, xs, sigma_D, floor_D, tau2_DxK, dist2, key):
    sd_DxP = noise_sd(sigma_D, floor_D, tau2_DxK, dist2)
    # The noise factor exp(sd·z) in float32 (relative error ~1e-7, far below any band's width);
    # the law stays float64.
    z_DxP = antithetic_normals(key, sd_DxP.shape)
    return form(p, *xs) * jnp.exp(sd_DxP.astype(jnp.float32) * z_DxP)


def antithetic_normals(key, shape) -> jax.Array:
    """Standard normals of ``shape`` (draws, P) whose second half of rows is minus the first: each
    entry is exactly N(0, 1) and independent across targets, and a band's quantiles over draws
    keep their expectation with less variance (antithetic variates). Generating normals is
    most of the predictive kernel's time (threefry bits), so this halves it; float32, as a
    24-bit z is far finer than any band's quantile needs."""
    half = jax.random.normal(key, ((shape[0] + 1) // 2, *shape[1:]), jnp.float32)
    return jnp.concatenate([half, -half])[: shape[0]]


def _noisy(law, inputs: tuple, dist, seed: int) -> np.ndarray:
    """law·exp(sqrt(σ_fit² + sd(Δ)²)·z), one standard normal z per draw and target; sd(Δ)² as
    in ``Discrepancy.sd``. One compiled kernel from the law's parameters to the draws: at 4,000
    draws × 10,000 targets the unfused version spent seconds on (draws, P) temporaries."""
    disc = law.discrepancy
    disc.check_axes(dist)
    dist = np.asarray(dist, np.float64)
    with jax.enable_x64(True):
        form, p, *xs = law.law_args(*inputs)
        out = _noisy_kernel(form, p, tuple(xs), jnp.asarray(law.sigma, jnp.float64),
                            jnp.asarray(disc.floor, jnp.float64), jnp.asarray(disc.tau_DxK, jnp.float64) ** 2,
                            jnp.asarray(dist) ** 2, jax.random.PRNGKey(seed))
        return np.asarray(out)


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
    return _noisy(law, (C, M), loss_distance(law.support, C, M), seed)


def error_draws(law: ErrorLaw, L_DxP, *, seed: int = 1) -> np.ndarray:
    """Predictive error draws at losses ``L_DxP`` (one row per posterior draw, or ``(P,)``)."""
    L_DxP = np.broadcast_to(np.asarray(L_DxP, np.float64), (len(law.epsilon), np.shape(L_DxP)[-1]))
    return _noisy(law, (L_DxP,), error_distance(law.support, L_DxP), seed)


def chained_error_draws(loss: LossLaw, error: ErrorLaw, C, M, *, seed: int = 0) -> np.ndarray:
    """(C, M) → loss draw → error draw: both laws' uncertainty, shape ``(draws, P)``."""
    if len(loss.E) != len(error.epsilon):
        raise ValueError(f"loss and error posteriors differ in draws: {len(loss.E)} vs {len(error.epsilon)}")
    return error_draws(error, loss_draws(loss, C, M, seed=seed), seed=seed + 1)


@dataclass(frozen=True)
class Bands:
    """Median and central intervals per target: ``lo[level]``, ``hi[level]`` of shape ``(P,)``;
    ``undefined`` the share of draws per target that made no prediction (NaN: an Eq. 5 draw at
    Err ≤ 0, see the module docstring), left out of the quantiles."""

    median: np.ndarray
    lo: dict[int, np.ndarray]
    hi: dict[int, np.ndarray]
    undefined: np.ndarray | None = None

    @classmethod
    def from_draws(cls, draws_DxP: np.ndarray, levels=LEVELS) -> "Bands":
        draws_DxP = np.asarray(draws_DxP)
        nan = np.isnan(draws_DxP)
        undefined = nan.mean(axis=0)
        # nanpercentile only when needed: it is many times slower than percentile.
        pct = np.nanpercentile if nan.any() else np.percentile
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a target with no defined draw: NaN band
            q = lambda p: pct(draws_DxP, p, axis=0)  # noqa: E731
            return cls(
                median=q(50.0),
                lo={lv: q(50.0 - lv / 2) for lv in levels},
                hi={lv: q(50.0 + lv / 2) for lv in levels},
                undefined=undefined,
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
