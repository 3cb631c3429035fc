"""A posterior packed for compiled planning kernels, and the probability of reaching a target.

A predictive value at (C, M) under draw d is lognormal: ln L = ln L_d(C, M) + s_d·z with
s_d = sqrt(σ_fit² + δ₀² + Σ_k τ_k²·Δ_k²) (``laws.bayes.discrepancy.noise_sd``, the predictive
kernel's own noise model), so P(L ≤ L* | d) = Φ((ln L* − ln L_d)/s_d) exactly and the
posterior probability is its (weighted) mean over draws: no noise sampling, smooth in (N, D),
which the chance-constrained search needs. The chained error is integrated over the loss
noise by Gauss–Hermite quadrature, each loss node fed through Eq. 5 with its own noise and
discrepancy.

Where a draw's Eq. 5 gives Err ≤ 0 (at a loss below those it was fitted on) the fit's
likelihood gives that draw zero density (``laws.bayes.models.error_model``), so such a
(draw, loss node) is no prediction: it is dropped from every mean and quantile, the rest
renormalised, and the share dropped is reported (:func:`nonpositive_share`), never clipped to
a tiny positive error (which made them count as reaching any error target).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import forms
from scaling_jax.laws.bayes.design import Support, error_distance, loss_distance
from scaling_jax.laws.bayes.discrepancy import noise_sd
from scaling_jax.laws.bayes.predict import ErrorLaw, LossLaw

GH_NODES = 10  # Gauss–Hermite nodes over the loss noise for the chained error
MEDIAN_STEPS = 30  # the predictive median's bisection: its bracket (a few e-folds) to ~1e-8 in ln L


def ndtr(x):
    """Φ(x) = (1 + erf(x/√2))/2: exact to ~1e-16 in absolute terms, which is what a mean of
    probabilities needs, and 3× faster in float64 on CPU than ``jax.scipy.special.ndtr`` (whose
    erfc branch keeps relative accuracy deep in the tails)."""
    return 0.5 + 0.5 * jax.lax.erf(x * 0.7071067811865476)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Draws:
    """Eq. 4 draws (and Eq. 5 draws when chained) as float64 arrays of shape ``(draws,)``; the
    fit points' log inputs ``x_loss`` ``(F, 2)`` and ``x_error`` ``(F_e, 1)``."""

    E: jnp.ndarray
    a: jnp.ndarray
    b: jnp.ndarray
    eta: jnp.ndarray
    sigma: jnp.ndarray
    floor: jnp.ndarray
    tau2: jnp.ndarray
    x_loss: jnp.ndarray
    epsilon: jnp.ndarray | None = None
    k: jnp.ndarray | None = None
    gamma: jnp.ndarray | None = None
    sigma_e: jnp.ndarray | None = None
    floor_e: jnp.ndarray | None = None
    tau2_e: jnp.ndarray | None = None
    x_error: jnp.ndarray | None = None

    @classmethod
    def from_laws(cls, loss: LossLaw, error: ErrorLaw | None = None) -> "Draws":
        f = lambda x: jnp.asarray(np.asarray(x, np.float64))  # noqa: E731
        with jax.enable_x64(True):
            out = dict(E=f(loss.E), a=f(loss.a), b=f(loss.b), eta=f(loss.eta), sigma=f(loss.sigma),
                       floor=f(loss.discrepancy.floor), tau2=f(loss.discrepancy.tau_DxK) ** 2,
                       x_loss=f(loss.support.x_FxK))  # fmt: skip
            if error is not None:
                out |= dict(epsilon=f(error.epsilon), k=f(error.k), gamma=f(error.gamma), sigma_e=f(error.sigma),
                            floor_e=f(error.discrepancy.floor), tau2_e=f(error.discrepancy.tau_DxK) ** 2,
                            x_error=f(error.support.x_FxK))  # fmt: skip
        return cls(**out)

    @property
    def chained(self) -> bool:
        return self.epsilon is not None

    @property
    def params(self) -> dict:
        return {"E": self.E, "a": self.a, "b": self.b, "eta": self.eta}


def _support(x_FxK) -> Support:
    """A ``Support`` around traced fit points (its constructor's NumPy checks are for user input)."""
    support = Support.__new__(Support)
    object.__setattr__(support, "x_FxK", x_FxK)
    return support


def log_loss(dr: Draws, C, M):
    """ln L_d(C, M) of the law per draw, no noise: ``(draws, P)``; traceable."""
    p = {k: v[:, None] for k, v in dr.params.items()}
    return jnp.log(forms.overtrain(p, jnp.asarray(C)[None], jnp.asarray(M)[None]))


def loss_sd(dr: Draws, C, M, x_loss=None):
    """Predictive sd of ln L per draw and target ``(draws, P)``, distances from ``x_loss`` (default:
    the fit points)."""
    dist = loss_distance(_support(dr.x_loss if x_loss is None else x_loss), C, M, xp=jnp)
    return noise_sd(dr.sigma, dr.floor, dr.tau2, dist**2)


def _log_error(dr: Draws, L_DxP):
    """ln Err of Eq. 5 per draw at losses ``(draws, P)``, and where it is defined (Err > 0): a
    boolean mask of the same shape; undefined entries hold 0 (callers give them no weight)."""
    p = {"epsilon": dr.epsilon[:, None], "k": dr.k[:, None], "gamma": dr.gamma[:, None]}
    err = forms.error(p, L_DxP)
    valid = err > 0
    return jnp.log(jnp.where(valid, err, 1.0)), valid


def _gh():
    """Gauss–Hermite nodes and weights (summing to 1) over a standard normal."""
    z, w = np.polynomial.hermite_e.hermegauss(GH_NODES)
    return z, w / w.sum()


def _error_sd(dr: Draws, L_DxP):
    dist = error_distance(_support(dr.x_error), L_DxP, xp=jnp)
    return noise_sd(dr.sigma_e, dr.floor_e, dr.tau2_e, dist**2)


def _chained_sums_DxP(dr: Draws, C, M, target):
    """Per draw and target ``(draws, P)``: Σ_j w_j·P(Err ≤ target | draw, loss node j) over the
    nodes where Eq. 5 is defined, and Σ_j w_j over those nodes (the draw's defined mass)."""
    mu, s = log_loss(dr, C, M), loss_sd(dr, C, M)
    z, w = (jnp.asarray(x, mu.dtype) for x in _gh())

    def node(j, sums):  # one fused pass per node, no (nodes, draws, P) temporary; traced once
        hit, mass = sums
        L = jnp.exp(mu + s * z[j])
        log_err, valid = _log_error(dr, L)
        hit = hit + jnp.where(valid, w[j] * ndtr((jnp.log(target) - log_err) / _error_sd(dr, L)), 0.0)
        return hit, mass + jnp.where(valid, w[j], 0.0)

    return jax.lax.fori_loop(0, GH_NODES, node, (jnp.zeros_like(mu), jnp.zeros_like(mu)))


def p_reach_P(dr: Draws, C, M, target, error: bool = False):
    """P(value ≤ target) per target ``(P,)``: the mean over draws of P(value ≤ target | draw); for
    the chained error, over the (draw, loss node) pairs where Eq. 5 is defined (0 where none is)."""
    if not error:
        return jnp.mean(ndtr((jnp.log(target) - log_loss(dr, C, M)) / loss_sd(dr, C, M)), axis=0)
    hit, mass = _chained_sums_DxP(dr, C, M, target)
    total = jnp.sum(mass, axis=0)
    return jnp.where(total > 0, jnp.sum(hit, axis=0) / jnp.where(total > 0, total, 1.0), 0.0)


@jax.jit
def _nonpositive_P(dr: Draws, C, M):
    mu, s = log_loss(dr, C, M), loss_sd(dr, C, M)
    defined = sum(wj * jnp.mean(_log_error(dr, jnp.exp(mu + s * zj))[1], axis=0) for zj, wj in zip(*_gh()))
    return 1.0 - defined


def nonpositive_share(dr: Draws, C, M) -> np.ndarray:
    """Share of the chained error's predictive mass at (C, M) where a draw's Eq. 5 gives Err ≤ 0
    (dropped from :func:`p_reach`, see the module docstring); shape ``(P,)``."""
    with jax.enable_x64(True):
        C, M = jnp.atleast_1d(jnp.asarray(C, jnp.float64)), jnp.atleast_1d(jnp.asarray(M, jnp.float64))
        return np.asarray(_nonpositive_P(dr, C, M))


def mixture_quantiles(mu_D, s_D, w_D, q, steps: int = 50):
    """Quantiles ``q`` of the mixture Σ_d w_d·Normal(mu_d, s_d) (w summing to 1), by bisection."""
    q = jnp.asarray(q)
    lo = jnp.full(q.shape, jnp.min(mu_D - 8 * s_D))
    hi = jnp.full(q.shape, jnp.max(mu_D + 8 * s_D))

    def step(_, b):
        lo, hi = b
        mid = 0.5 * (lo + hi)
        below = ndtr((mid[:, None] - mu_D[None]) / s_D[None]) @ w_D < q
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, steps, step, (lo, hi))
    return 0.5 * (lo + hi)


def predictive_median_P(dr: Draws, C, M, error: bool = False):
    """The predictive median per target ``(P,)`` (noise and discrepancy included: the ``median``
    that bands report), as the 50 % quantile of the predictive mixture over draws (for the
    chained error, over draws and the loss-noise quadrature nodes)."""
    mu, s = log_loss(dr, C, M), loss_sd(dr, C, M)
    n = mu.shape[0]
    w = jnp.full(mu.shape, 1.0 / n)
    if error:
        z, wz = _gh()
        Ls = [jnp.exp(mu + s * zj) for zj in z]
        errs = [_log_error(dr, L) for L in Ls]
        mu = jnp.concatenate([e[0] for e in errs])
        s = jnp.concatenate([_error_sd(dr, L) for L in Ls])
        w = jnp.concatenate([jnp.where(e[1], wj / n, 0.0) for e, wj in zip(errs, wz)])
        w = w / jnp.sum(w, axis=0)  # over the defined pairs only (NaN where none is: no median)
    q50 = jax.vmap(lambda m, sd, wd: mixture_quantiles(m, sd, wd, jnp.array([0.5]), MEDIAN_STEPS)[0],
                   in_axes=(1, 1, 1))(mu, s, w)
    return jnp.exp(q50)


def median_P(dr: Draws, C, M, error: bool = False):
    """The posterior-median law per target ``(P,)``: the median over draws of the law's loss (or
    chained error), no noise."""
    mu = log_loss(dr, C, M)
    if error:
        mu, valid = _log_error(dr, jnp.exp(mu))
        return jnp.exp(jnp.nanmedian(jnp.where(valid, mu, jnp.nan), axis=0))
    return jnp.exp(jnp.median(mu, axis=0))


_p_reach = jax.jit(p_reach_P, static_argnames="error")


@jax.jit
def _p_reach_loss_f32(dr: Draws, C, M, target):
    """P(L ≤ target) per point ``(P,)`` like :func:`p_reach_P`, in float32 and laid out points ×
    draws, so the mean over draws runs along the contiguous axis. Per-point logs and distances and
    per-draw variances are formed in float64 first; what is left per element is two exp, one log,
    one rsqrt and one erf, at twice float64's SIMD width (6× faster on two CPU cores)."""
    f = lambda x: x.astype(jnp.float32)  # noqa: E731
    logC, logM = jnp.log(C), jnp.log(M)
    dist2_PxK = f(loss_distance(_support(dr.x_loss), C, M, xp=jnp) ** 2)
    # Centred at the fit points: a·e^(ηu) = e^(ln a + ηu₀ + η(u − u₀)), so the float32 coefficients
    # are the law's terms at the fit centre, of the order of the loss, never a, b themselves
    # (b = b₀·e^(η(ln C₀ + ln M₀)) overflows float32 for η ≳ 2).
    u, v = logM - logC, logM + logC
    x0 = jnp.mean(dr.x_loss, axis=0)
    u0, v0 = x0[1] - x0[0], x0[1] + x0[0]
    u_P1, v_P1 = f(u - u0)[:, None], f(v - v0)[:, None]
    ln_a, ln_b = f(jnp.log(dr.a) + dr.eta * u0)[None], f(jnp.log(dr.b) - dr.eta * v0)[None]
    E, eta = f(dr.E)[None], f(dr.eta)[None]
    var_PxD = f(dr.sigma**2 + dr.floor**2)[None] + sum(
        f(dr.tau2[:, k])[None] * dist2_PxK[:, k, None] for k in range(dist2_PxK.shape[1]))
    L_PxD = E + jnp.exp(ln_a + eta * u_P1) + jnp.exp(ln_b - eta * v_P1)
    z_PxD = (f(jnp.log(target)) - jnp.log(L_PxD)) * jax.lax.rsqrt(var_PxD)
    return jnp.mean(ndtr(z_PxD), axis=1)


def p_reach(dr: Draws, C, M, target: float, error: bool = False, *, exact: bool = False) -> np.ndarray:
    """Posterior probability that runs at (C, M) reach ``target`` (a loss, or a downstream error
    with ``error``), in one compiled evaluation over every draw and target; shape ``(P,)``.

    Loss targets are evaluated in float32 (within ~1e-5 of float64 in probability: a plan's
    probabilities are read to three digits); ``exact`` evaluates in float64, as the
    chance-constrained search does, so a plan reports the probability its search met."""
    with jax.enable_x64(True):
        C, M = jnp.atleast_1d(jnp.asarray(C, jnp.float64)), jnp.atleast_1d(jnp.asarray(M, jnp.float64))
        if error or exact:
            return np.asarray(_p_reach(dr, C, M, jnp.float64(target), error=error))
        return np.asarray(_p_reach_loss_f32(dr, C, M, jnp.float64(target)), np.float64)


def p_reachable(dr: Draws, target: float, error: bool = False) -> float:
    """P(the target lies above the law's floor): the share of draws whose irreducible loss E
    (or error at loss E) is below it. Zero means no run of any size reaches it. For the error,
    draws whose Eq. 5 gives Err ≤ 0 at E are dropped (:func:`floor_nonpositive_share` says how
    many); 0 when every draw is."""
    with jax.enable_x64(True):
        if not error:
            return float(jnp.mean(dr.E < target))
        log_err, valid = _log_error(dr, dr.E[:, None])
        n_valid = int(jnp.sum(valid))
        return float(jnp.sum(valid & (log_err < jnp.log(target)))) / n_valid if n_valid else 0.0


def floor_nonpositive_share(dr: Draws) -> float:
    """Share of draws whose Eq. 5 gives Err ≤ 0 at their own irreducible loss E."""
    with jax.enable_x64(True):
        return float(1.0 - jnp.mean(_log_error(dr, dr.E[:, None])[1]))


_median = jax.jit(median_P, static_argnames="error")


def median_law(dr: Draws, C, M, error: bool = False) -> np.ndarray:
    """The posterior-median law (no noise) at (C, M), compiled; shape ``(P,)``."""
    with jax.enable_x64(True):
        C, M = jnp.atleast_1d(jnp.asarray(C, jnp.float64)), jnp.atleast_1d(jnp.asarray(M, jnp.float64))
        return np.asarray(_median(dr, C, M, error=error))
