"""The law's misfit away from its fit points, and how to learn it from past sweeps.

A prediction of ln L (or ln Err) at extrapolation distances Δ (see ``design``) is the law
plus noise of standard deviation sqrt(σ_fit² + sd(Δ)²), where σ_fit is the fit likelihood's
noise (seed-to-seed scatter, learned with the law) and

    sd(Δ)² = δ₀² + Σ_k (τ_k·Δ_k)²

is the discrepancy: δ₀ the misfit of a new run at a fit point's inputs, τ_k how fast the
misfit grows per e-fold of distance from the nearest fit run along axis k (ln C; ln M toward
fewer and toward more tokens per parameter; ln L for Eq. 5). Growth linear in Δ is what a
wrong local exponent gives: if the true slope of ln L differs from the law's by δη, the
miss after Δ e-folds is δη·Δ.

The fit points cannot learn δ₀ or τ: with five points and four parameters the law passes
through them, and a residual of a fit point is not a prediction error. Two sources:

* :func:`prior_discrepancy`: weakly informative HalfNormal draws (scales in
  ``PRIOR_SCALES``). δ₀ ~ HalfNormal(0.01) on ln L: a new run inside the fit range lands
  within about 2 % of the law; τ ~ HalfNormal(0.01) per e-fold: an e-fold from the nearest fit
  run adds misfit of order 1 %. For Eq. 5, τ_L ~ HalfNormal(0.1) per e-fold of loss (ln L
  spans ~10× fewer e-folds than ln C).
* :func:`calibrate`: weak hyperpriors (the priors ×10 in scale) updated by held-out runs
  of past sweeps, e.g. other training sets of the testbed fitted with the same recipe. Each held-out run contributes
  ln y ~ Normal(μ, sqrt(s² + sd(Δ)²)), μ and s the mean and spread of the law's posterior
  prediction there (s includes σ_fit), so parameter uncertainty is not counted as
  discrepancy. This is empirical Bayes across sweeps: the misfit a recipe showed when
  extrapolating before is the best guide to its misfit next time. The held-out runs of one
  sweep are scored against one fitted law, so they share its error: the growth term is one
  draw per sweep (a random slope ζ_k ~ Normal(0, τ_k) per axis, the miss ζ·Δ, as a wrong
  exponent gives), the floor one per run. Marginally each run's sd is the one above; within a
  sweep the misses covary by Σ_k τ_k²·Δ_ik·Δ_jk (see :func:`residual_model`). Treating them
  as independent counted a sweep's thirty runs as thirty draws of τ where they are nearer one,
  and made τ's posterior too narrow.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from scaling_jax.errors import UserError
from scaling_jax.laws.bayes.design import ERROR_AXES, LOSS_AXES
from scaling_jax.laws.bayes.infer import NutsConfig, run_nuts

# HalfNormal scales of (δ₀, τ per axis) on ln L and ln Err; see the module docstring.
PRIOR_SCALES = {
    "loss": (0.01, {axis: 0.01 for axis in LOSS_AXES}),
    "error": (0.01, {axis: 0.1 for axis in ERROR_AXES}),
}
# Calibration's hyperpriors are the priors widened this much: still proper, but weak enough
# that a few dozen held-out runs decide (with the prior's own scales, a true growth of 4 %
# per e-fold, 4 prior sd, was pulled below its value even by 240 simulated runs).
CALIBRATION_WIDEN = 10.0


def noise_sd(sigma_D, floor_D, tau2_DxK, dist2):
    """sd of a predictive draw's ln value per draw and target, ``(draws, P)``: sqrt(σ_fit² + δ₀² +
    Σ_k τ_k²·Δ_k²) with ``dist2`` the squared distances ``(P, K)`` (or ``(draws, P, K)``); traceable."""
    if dist2.ndim == 3:
        var_DxP = jnp.einsum("dk,dpk->dp", tau2_DxK, dist2)
    else:  # a sum over the few axes, not a matmul: it fuses with what follows (no (draws, P) temporary)
        var_DxP = sum(tau2_DxK[:, k, None] * dist2[None, :, k] for k in range(dist2.shape[-1]))
    return jnp.sqrt(sigma_D[:, None] ** 2 + floor_D[:, None] ** 2 + var_DxP)


@dataclass(frozen=True)
class Discrepancy:
    """Draws of the discrepancy: ``floor`` δ₀ of shape ``(draws,)``, ``tau_DxK`` per axis."""

    floor: np.ndarray
    tau_DxK: np.ndarray
    axes: tuple[str, ...]
    source: str  # "prior" or what it was calibrated on

    def check_axes(self, dist) -> None:
        """Distances ``(..., K)`` must run along this discrepancy's K axes."""
        if np.shape(dist)[-1] != len(self.axes):
            raise ValueError(f"distances have {np.shape(dist)[-1]} axes, discrepancy has {self.axes}")

    def sd(self, dist_PxK) -> np.ndarray:
        """sd(Δ) per draw and target, shape ``(draws, P)``; ``dist_PxK`` may carry a leading
        draws axis ``(draws, P, K)``. :func:`noise_sd` without fit noise."""
        self.check_axes(dist_PxK)
        with jax.enable_x64(True):
            floor = jnp.asarray(self.floor, jnp.float64)
            return np.asarray(noise_sd(jnp.zeros_like(floor), floor, jnp.asarray(self.tau_DxK, jnp.float64) ** 2,
                                       jnp.asarray(dist_PxK, jnp.float64) ** 2))

    def take(self, n: int, seed: int = 0) -> "Discrepancy":
        """``n`` draws (resampled, with replacement only when there are fewer than ``n``),
        so they pair with a posterior of ``n`` draws."""
        if len(self.floor) == n:
            return self
        idx = np.random.default_rng(seed).choice(len(self.floor), n, replace=len(self.floor) < n)
        return Discrepancy(self.floor[idx], self.tau_DxK[idx], self.axes, self.source)

    @property
    def kind(self) -> str:
        """"loss" or "error": the law family whose distances its axes measure."""
        for kind in PRIOR_SCALES:
            if self.axes == _axes(kind):
                return kind
        raise ValueError(f"discrepancy axes {self.axes} match no kind ({sorted(PRIOR_SCALES)})")

    def to_dict(self) -> dict:
        """Every draw as JSON-ready lists (``tau[k]`` the draws along ``axes[k]``); Python's float
        repr round-trips float64 exactly, so :meth:`from_dict` rebuilds the same draws."""
        return {"kind": self.kind, "axes": list(self.axes), "source": self.source,
                "floor": np.asarray(self.floor, np.float64).tolist(),
                "tau": np.asarray(self.tau_DxK, np.float64).T.tolist()}  # fmt: skip

    @classmethod
    def from_dict(cls, d, where: str = "discrepancy") -> "Discrepancy":
        """Inverse of :meth:`to_dict`, checked: a bad field raises ``UserError`` naming
        ``where`` (e.g. "cal.json: laws.loss") and the field."""
        if not isinstance(d, dict):
            raise UserError(f"{where}: expected an object, got {type(d).__name__}")
        missing = [k for k in ("kind", "axes", "source", "floor", "tau") if k not in d]
        if missing:
            raise UserError(f"{where}: missing field(s) {missing}")
        kind = d["kind"]
        if kind not in PRIOR_SCALES:
            raise UserError(f"{where}.kind: expected one of {sorted(PRIOR_SCALES)}, got {kind!r}")
        axes = _axes(kind)
        if d["axes"] != list(axes):
            raise UserError(f"{where}.axes: a {kind} discrepancy has axes {list(axes)}, got {d['axes']!r}")
        if not isinstance(d["source"], str):
            raise UserError(f"{where}.source: expected a string, got {d['source']!r}")
        floor = _draws(d["floor"], f"{where}.floor")
        if not isinstance(d["tau"], list) or len(d["tau"]) != len(axes):
            got = len(d["tau"]) if isinstance(d["tau"], list) else type(d["tau"]).__name__
            raise UserError(f"{where}.tau: expected {len(axes)} axes ({', '.join(axes)}), got {got}")
        tau = [_draws(t, f"{where}.tau[{k}] ({axis})") for k, (t, axis) in enumerate(zip(d["tau"], axes))]
        for k, t in enumerate(tau):
            if len(t) != len(floor):
                raise UserError(f"{where}.tau[{k}] ({axes[k]}): {len(t)} draws, but floor has {len(floor)}")
        return cls(floor, np.stack(tau, axis=-1), axes, d["source"])

    def summary(self) -> dict:
        """Median and 95 % interval of δ₀ and each τ, and the source: for JSON reports."""
        q = lambda x: [float(v) for v in np.percentile(x, [2.5, 50.0, 97.5])]  # noqa: E731
        return {"source": self.source, "floor": q(self.floor),
                "tau": {axis: q(self.tau_DxK[:, k]) for k, axis in enumerate(self.axes)}}  # fmt: skip


def _draws(x, where: str) -> np.ndarray:
    """A non-empty list of finite, non-negative numbers as float64 (δ₀ and τ are scales)."""
    if not isinstance(x, list) or not x or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x):
        raise UserError(f"{where}: expected a non-empty list of numbers")
    a = np.array(x, np.float64)
    bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
    if bad.size:
        raise UserError(f"{where}: draws must be finite and >= 0; draw {bad[0]} is {x[bad[0]]!r}")
    return a


def _axes(kind: str) -> tuple[str, ...]:
    if kind not in PRIOR_SCALES:
        raise ValueError(f"discrepancy kind must be one of {sorted(PRIOR_SCALES)}, got {kind!r}")
    return tuple(PRIOR_SCALES[kind][1])


def _scales(kind: str) -> tuple[float, np.ndarray]:
    """Prior HalfNormal scales of ``kind``: δ₀'s, and τ's in the order of its axes."""
    axes = _axes(kind)
    floor_scale, tau_scales = PRIOR_SCALES[kind]
    return floor_scale, np.array([tau_scales[a] for a in axes])


def prior_discrepancy(kind: str, n: int, seed: int = 0) -> Discrepancy:
    """``n`` draws from the weakly informative prior of ``kind`` ("loss" or "error")."""
    floor_scale, tau_K = _scales(kind)
    rng = np.random.default_rng(seed)
    floor = np.abs(rng.normal(0.0, floor_scale, n))
    tau = np.abs(rng.normal(0.0, tau_K, (n, len(tau_K))))
    return Discrepancy(floor, tau, _axes(kind), "prior")


@functools.partial(jax.tree_util.register_dataclass, data_fields=["mu", "s", "log_y", "dist_PxK", "group"],
                   meta_fields=[])
@dataclass(frozen=True)
class Residuals:
    """Held-out runs of past sweeps, as the laws' posteriors saw them: ``mu``, ``s`` the mean
    and spread of the ln prediction, ``log_y`` the measured ln value, ``dist_PxK`` distances,
    ``group`` which fitted law (sweep) scored each run (integers; None: every run its own)."""

    mu: np.ndarray
    s: np.ndarray
    log_y: np.ndarray
    dist_PxK: np.ndarray
    group: np.ndarray | None = None

    @classmethod
    def from_draws(cls, log_pred_DxP, sigma_fit_D, y_P, dist_PxK) -> "Residuals":
        """From one law's ln predictions per posterior draw (no noise) and its σ_fit draws: one
        group. A draw that makes no prediction at a run (NaN: Eq. 5 at Err ≤ 0) is left out there."""
        log_pred_DxP = np.asarray(log_pred_DxP, np.float64)
        y_P = np.asarray(y_P, np.float64)
        if not (np.all(np.isfinite(y_P)) and np.all(y_P > 0)):
            raise ValueError("held-out values must be finite and positive")
        none = np.flatnonzero(np.all(np.isnan(log_pred_DxP), axis=0))
        if none.size:
            raise ValueError(f"held-out point {none[0]}: no posterior draw predicts it (every draw gives Err <= 0)")
        s = np.sqrt(np.nanvar(log_pred_DxP, axis=0) + np.mean(np.square(sigma_fit_D)))
        return cls(np.nanmean(log_pred_DxP, axis=0), s, np.log(y_P), np.asarray(dist_PxK, np.float64),
                   np.zeros(len(y_P), np.int32))

    @classmethod
    def concat(cls, parts) -> "Residuals":
        """Several sweeps' residuals; each part's groups stay apart from every other part's."""
        parts = list(parts)
        if not parts:
            raise ValueError("calibrating a discrepancy needs held-out runs from at least one sweep")
        groups, offset = [], 0
        for p in parts:
            g = np.arange(len(p.mu)) if p.group is None else np.unique(p.group, return_inverse=True)[1]
            groups.append(g + offset)
            offset += int(g.max()) + 1 if len(g) else 0
        fields = (np.concatenate([getattr(p, f) for p in parts]) for f in ("mu", "s", "log_y", "dist_PxK"))
        return cls(*fields, np.concatenate(groups).astype(np.int32))


def residual_model(res: Residuals, kind: str, hyperprior=None):
    """ln y ~ Normal(μ, Σ) with Σ_ii = s_i² + δ₀² + Σ_k (τ_k·Δ_ik)² and, for runs i ≠ j of one
    group, Σ_ij = Σ_k τ_k²·Δ_ik·Δ_jk: the growth is one random slope per group and axis,
    marginalised (module docstring). HalfNormal hyperpriors of ``kind``'s prior scales ×
    ``CALIBRATION_WIDEN``, or ``hyperprior``'s (a :class:`~scaling_jax.laws.bayes.hyperprior.HyperPrior`)."""
    from scaling_jax.laws.bayes.hyperprior import HyperPrior  # it reads this module's scales

    floor_dist, tau_dist = (hyperprior or HyperPrior.widened(kind)).distributions()
    floor = numpyro.sample("floor", floor_dist)
    tau = numpyro.sample("tau", tau_dist)
    own2 = res.s**2 + floor**2
    if res.group is None:  # every run its own group: independent
        sd2 = own2 + jnp.sum((tau * res.dist_PxK) ** 2, axis=-1)
        numpyro.sample("log_y", dist.Normal(res.mu, jnp.sqrt(sd2)), obs=res.log_y)
        return
    g = tau * res.dist_PxK
    same = res.group[:, None] == res.group[None, :]
    cov = jnp.where(same, g @ g.T, 0.0) + jnp.diag(own2)
    numpyro.sample("log_y", dist.MultivariateNormal(res.mu, covariance_matrix=cov), obs=res.log_y)


def calibrate(res: Residuals, kind: str, *, source: str, config=None, hyperprior=None) -> Discrepancy:
    """Posterior draws of (δ₀, τ) given held-out residuals (NUTS): of past sweeps under the widened
    prior by default, or under ``hyperprior`` (e.g. a ladder's own cuts under the prior itself)."""
    axes = _axes(kind)
    if res.dist_PxK.shape[-1] != len(axes):
        raise ValueError(f"{kind} residuals need distances along {axes}, got {res.dist_PxK.shape[-1]} axes")
    if hyperprior is not None and hyperprior.kind != kind:
        raise ValueError(f"a {hyperprior.kind} hyperprior cannot calibrate a {kind} discrepancy")
    model = functools.partial(residual_model, kind=kind, hyperprior=hyperprior)
    post = run_nuts(model, res, config=config or NutsConfig(target_accept_prob=0.95))
    return Discrepancy(post.samples["floor"], post.samples["tau"], axes, source)
