"""NumPyro models for Eq. 4 (loss from C, M), Eq. 5 (error from loss), the two chained, and
a hierarchical Eq. 4 that partially pools η across training sets.

Priors (weakly informative; each follows from what the law means, not from a fit):

* Eq. 4 (one training set) is sampled in anchored coordinates. With C_lo, C_hi the smallest
  and largest fit compute and M₀, C₀ the geometric means of the fit points:
  ln L_hi ~ Normal(ln L̄, 1), the law's loss at (C_hi, M₀), L̄ the geometric mean observed
  loss (the law passes near its data, within a factor e either way);
  ln L_lo − ln L_hi ~ HalfNormal(1): loss falls with compute over the fit range, by at most a
  few-fold; E = u·L_hi, u ~ Beta(2, 2): the irreducible loss is positive and below the
  loss the law reaches inside its fit range, with no favoured value inside; the a-term's
  share of the reducible loss at (C₀, M₀) is w ~ Beta(2, 2). Then
  η = ln((L_lo − E)/(L_hi − E))/ln(C_hi/C_lo) > 0 and a, b > 0 follow, with no hard bound
  needed. The data pin L_lo and L_hi; E and w are the weakly identified directions, and
  making them axes of the sampler is what lets NUTS mix (see :func:`loss_model`).
* The hierarchical Eq. 4 samples η itself (it is what is pooled): logit η̄ from η̄ ~ Beta(2, 6)
  (η in (0, 1); Chinchilla-style fits find α = 2η ≈ 0.3, and Beta(2, 6) has mean 0.25 and
  95 % of its mass in (0.03, 0.6)); per set E = L_min·u, u ~ Beta(2, 2), and a, b positive on
  a log scale after centring: (a·M^η + b·M^−η)·C^−η = (a₀·(M/M₀)^η + b₀·(M/M₀)^−η)·(C/C₀)^−η
  with ln(a₀/(L̄/2)), ln(b₀/(L̄/2)) ~ Normal(0, 1.5): each part of the reducible loss at the
  design centre is a fraction of the loss. Centring removes the near-perfect correlation of
  ln a and η (C^−η is a lever of e^−40η at C ≈ 1e18).
* ε = Err_max + (1 − Err_max)·u, u ~ Beta(2, 2): Err(L) < ε for all L, so ε sits between the
  largest observed error and 1 (chance-level error of a useless model is below 1).
* Eq. 5 is centred at L̄ too: k·e^−γL = k₀·e^−γ(L−L̄) with k₀ = ε·v, v ~ Beta(1.5, 4) (the gap
  between ε and the error at the typical loss is a modest fraction of ε); ln γ ~ Normal(0, 1).

Likelihood and discrepancy. The loss likelihood is on ln L:
ln L_obs ~ Normal(ln L_law(C, M), σ(x)), σ(x)² = σ₀² + (τ_C·Δ_C(x))² + (τ_M·Δ_M(x))², where
Δ is the extrapolation distance of ``design`` (leave-one-out for the fit points, to the fit box
for predictions). σ₀ is the law's misfit where it is best supported, τ the rate at which
misfit grows per e-fold of extrapolation (separately along ln C and ln M).
σ₀ ~ LogNormal(ln 0.005, 0.75), 95 % of its mass in (0.1 %, 2.2 %): a law worth using fits
its own range to about half a percent (the size of seed-to-seed differences in LM validation
loss), and the prior vanishes at 0, because with five points and four parameters (one
residual degree of freedom) the likelihood cannot rule out σ₀ → 0, which would give
absurdly narrow bands (and a funnel NUTS cannot sample). τ ~ HalfNormal(0.01) per e-fold:
extrapolating an e-fold beyond the fit box adds misfit of order 1 %, rarely 2 %. The
leave-one-out distances of the fit points let their residuals inform τ. The error
likelihood is on ln Err with the same structure: σ_err like σ₀, and τ_err ~ HalfNormal(0.1)
per e-fold of loss outside the fit range (ln L spans ~10× fewer e-folds than ln C).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logit

from scaling_jax.laws import forms
from scaling_jax.laws.points import as_points, design_problems
from scaling_jax.laws.bayes.design import Box, leave_one_out_distance, log_cm

SIGMA0_MEDIAN = 0.005  # LogNormal median of σ₀ on ln L and ln Err (see module docstring)
SIGMA0_LOG_SD = 0.75
TAU_SCALE = 0.01  # HalfNormal scale of τ per e-fold of ln C or ln M
TAU_ERR_SCALE = 0.1  # HalfNormal scale of τ_err per e-fold of ln L


class _FitPoints:
    """Shared by the fit-point containers: ``x`` (log inputs, one row per point) decides
    the fit box and the leave-one-out extrapolation distances; L̄ centres the priors."""

    @property
    def box(self) -> Box:
        return Box.around(self.x)

    @property
    def dist(self) -> np.ndarray:
        return leave_one_out_distance(self.x)

    @property
    def L_bar(self) -> float:
        return float(np.exp(np.mean(np.log(self.L))))


@dataclass(frozen=True)
class LossData(_FitPoints):
    """Eq. 4 fit points (float64) and the constants their model is centred on.

    Validated like the point fitter's (:func:`scaling_jax.laws.points.as_points`): too few
    points, non-finite or non-positive values raise ``ValueError``; a design that cannot
    pin a and b (one M) only warns, since the priors still give a proper posterior.
    """

    C: np.ndarray
    M: np.ndarray
    L: np.ndarray

    def __post_init__(self):
        xs, y = as_points("overtrain", {"C": self.C, "M": self.M}, self.L)
        _set_arrays(self, C=xs["C"], M=xs["M"], L=y)
        for problem in design_problems("overtrain", xs):
            warnings.warn(f"Eq. 4 fit points: {problem}; the posterior there is the prior's", RuntimeWarning, stacklevel=3)

    @property
    def x(self) -> np.ndarray:
        return log_cm(self.C, self.M)

    @property
    def log_C0(self) -> float:
        return float(np.mean(np.log(self.C)))

    @property
    def log_M0(self) -> float:
        return float(np.mean(np.log(self.M)))

    @property
    def L_min(self) -> float:
        return float(np.min(self.L))


@dataclass(frozen=True)
class ErrorData(_FitPoints):
    """Eq. 5 fit points: measured loss L and downstream error Err (float64)."""

    L: np.ndarray
    Err: np.ndarray

    def __post_init__(self):
        xs, y = as_points("error", {"L": self.L}, self.Err)
        _set_arrays(self, L=xs["L"], Err=y)

    @property
    def x(self) -> np.ndarray:
        return np.log(self.L)[:, None]

    @property
    def Err_max(self) -> float:
        return float(np.max(self.Err))


def _set_arrays(obj, **arrays):
    for k, v in arrays.items():
        object.__setattr__(obj, k, v)


def discrepancy(sigma0, tau_K, dist_PxK):
    """σ(x) = sqrt(σ₀² + Σ_k (τ_k·Δ_k)²) for distances ``dist_PxK`` (broadcasts over draws)."""
    return jnp.sqrt(sigma0**2 + jnp.sum((tau_K * dist_PxK) ** 2, axis=-1))


def _loss_params(d: LossData, u_E, eta, log_a0, log_b0) -> dict:
    """Sampled coordinates → the paper's E, a, b, η, undoing the centring:
    a₀ = (L̄/2)·e^{log_a0}, a = a₀·M₀^−η·C₀^η, b = b₀·M₀^η·C₀^η."""
    half = d.L_bar / 2
    a = half * jnp.exp(log_a0 + eta * (d.log_C0 - d.log_M0))
    b = half * jnp.exp(log_b0 + eta * (d.log_C0 + d.log_M0))
    return {"E": d.L_min * u_E, "a": a, "b": b, "eta": eta}


def _loss_noise_sites():
    sigma = numpyro.sample("sigma_loss", dist.LogNormal(np.log(SIGMA0_MEDIAN), SIGMA0_LOG_SD))
    tau = numpyro.sample("tau_loss", dist.HalfNormal(TAU_SCALE * jnp.ones(2)).to_event(1))
    return sigma, tau


def loss_model(data: LossData):
    """Eq. 4 on ln L with a learned, extrapolation-aware discrepancy (see module docstring).

    Sampled in anchored coordinates: the law's loss at the smallest and largest fit compute
    (at M₀), which the data pin, plus E and the a/b split, which they don't. In (E, η, a, b)
    the same posterior is a curved ridge (lower E goes with lower η) that NUTS crosses
    badly (R-hat ≈ 1.07, ESS ≈ 30 at 4 × 1,000 draws on RedPajama's Table-1 points); here
    it has R-hat ≈ 1.00 and ESS ≈ 1,000.
    """
    log_C_lo, log_C_hi = float(np.log(data.C).min()), float(np.log(data.C).max())
    ln_L_hi = numpyro.sample("ln_L_hi", dist.Normal(np.log(data.L_bar), 1.0))
    drop = numpyro.sample("drop", dist.HalfNormal(1.0))
    u_E = numpyro.sample("u_E", dist.Beta(2.0, 2.0))
    w = numpyro.sample("w", dist.Beta(2.0, 2.0))
    sigma, tau = _loss_noise_sites()
    L_hi = jnp.exp(ln_L_hi)
    E = u_E * L_hi
    eta = jnp.log((L_hi * jnp.exp(drop) - E) / (L_hi - E)) / (log_C_hi - log_C_lo)
    K = (L_hi - E) * jnp.exp(eta * (log_C_hi - data.log_C0))  # a₀ + b₀: reducible loss at (C₀, M₀)
    p = _loss_params(data, u_E=E / data.L_min, eta=eta, log_a0=jnp.log(w * K / (data.L_bar / 2)),
                     log_b0=jnp.log((1 - w) * K / (data.L_bar / 2)))
    for name in ("E", "a", "b", "eta"):
        numpyro.deterministic(name, p[name])
    L = forms.overtrain(p, data.C, data.M)
    numpyro.sample("ln_L", dist.Normal(jnp.log(L), discrepancy(sigma, tau, data.dist)), obs=np.log(data.L))


def error_model(data: ErrorData):
    """Eq. 5 on ln Err with a learned discrepancy growing with extrapolation in ln L."""
    u_eps = numpyro.sample("u_epsilon", dist.Beta(2.0, 2.0))
    v_k = numpyro.sample("v_k", dist.Beta(1.5, 4.0))
    gamma = numpyro.sample("gamma", dist.LogNormal(0.0, 1.0))
    sigma = numpyro.sample("sigma_error", dist.LogNormal(np.log(SIGMA0_MEDIAN), SIGMA0_LOG_SD))
    tau = numpyro.sample("tau_error", dist.HalfNormal(TAU_ERR_SCALE * jnp.ones(1)).to_event(1))
    eps = numpyro.deterministic("epsilon", data.Err_max + (1.0 - data.Err_max) * u_eps)
    k = numpyro.deterministic("k", eps * v_k * jnp.exp(gamma * data.L_bar))
    Err = forms.error({"epsilon": eps, "k": k, "gamma": gamma}, data.L)
    Err = jnp.clip(Err, 1e-6, None)  # ε − k·e^−γL > 0 at the data for any sensible draw
    numpyro.sample("ln_Err", dist.Normal(jnp.log(Err), discrepancy(sigma, tau, data.dist)), obs=np.log(data.Err))


def chained_model(loss: LossData, error: ErrorData):
    """Eq. 4 and Eq. 5 in one model, so one NUTS run yields joint draws of both laws.

    The error law is fitted on the measured losses of its fit points; predictions chain
    (C, M) → L (with its discrepancy) → Err (with its own), so an error band carries both
    laws' uncertainty.
    """
    loss_model(loss)
    error_model(error)


@dataclass(frozen=True)
class PooledLossData:
    """Eq. 4 fit points of several training sets; ``sets[s]`` holds set s's points."""

    sets: tuple[LossData, ...]


def hierarchical_loss_model(data: PooledLossData):
    """Eq. 4 for S training sets with η partially pooled and E, a, b free per set.

    logit η_s = logit η̄ + s_η·z_s with η̄ ~ Beta(2, 6) (the single-set prior), z_s ~ N(0, 1),
    s_η ~ HalfNormal(0.2): the paper finds η nearly constant across data sets, and 0.2 on the
    logit scale lets η_s differ from η̄ by ~±20 % (η(1−η)·0.2 ≈ 0.02 at η ≈ 0.13). The
    discrepancy (σ₀, τ) is shared: the same architecture, recipe and evaluation set make the
    law's misfit a property of the law, and pooling it gives it S times the residuals.
    """
    S = len(data.sets)
    eta_bar = numpyro.sample("eta_bar", dist.Beta(2.0, 6.0))
    s_eta = numpyro.sample("s_eta", dist.HalfNormal(0.2))
    sigma, tau = _loss_noise_sites()
    with numpyro.plate("set", S):
        z = numpyro.sample("z_eta", dist.Normal(0.0, 1.0))
        u_E = numpyro.sample("u_E", dist.Beta(2.0, 2.0))
        log_a0 = numpyro.sample("log_a0", dist.Normal(0.0, 1.5))
        log_b0 = numpyro.sample("log_b0", dist.Normal(0.0, 1.5))
    eta = numpyro.deterministic("eta", jax.nn.sigmoid(logit(eta_bar) + s_eta * z))
    per_set = []
    for s, d in enumerate(data.sets):
        p = _loss_params(d, u_E[s], eta[s], log_a0[s], log_b0[s])
        L = forms.overtrain(p, d.C, d.M)
        numpyro.sample(f"ln_L_{s}", dist.Normal(jnp.log(L), discrepancy(sigma, tau, d.dist)), obs=np.log(d.L))
        per_set.append(p)
    for name in ("E", "a", "b"):
        numpyro.deterministic(name, jnp.stack([p[name] for p in per_set]))
