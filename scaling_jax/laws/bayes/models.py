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
* The hierarchical Eq. 4 samples η itself (it is what is pooled): η̄ ~ Beta(2, 6) (η in (0, 1);
  Chinchilla-style fits find α = 2η ≈ 0.3, and Beta(2, 6) has mean 0.25 and 95 % of its mass
  in (0.03, 0.6)); per set, L_hi, E and w as above.
* ε = Err_max + (1 − Err_max)·u, u ~ Beta(2, 2): Err(L) < ε for all L, so ε sits between the
  largest observed error and 1 (chance-level error of a useless model is below 1).
* Eq. 5 is centred at L̄ too: k·e^−γL = k₀·e^−γ(L−L̄) with k₀ = ε·v, v ~ Beta(1.5, 4) (the gap
  between ε and the error at the typical loss is a modest fraction of ε); ln γ ~ Normal(0, 1).

Likelihood. The loss likelihood is on ln L: ln L_obs ~ Normal(ln L_law(C, M), σ_fit), with
σ_fit ~ LogNormal(ln 0.005, 0.75), 95 % of its mass in (0.1 %, 2.2 %): the scatter of a run
about the law where the law is fitted, of the size of seed-to-seed differences in LM
validation loss. The prior vanishes at 0 because with five points and four parameters (one
residual degree of freedom) the likelihood cannot rule out σ_fit → 0 (a funnel NUTS cannot
sample). Every fit point gets the same σ_fit: the edge points (smallest and largest C, the
lone M = 320 run) are the ones that pin the extrapolation, and giving them a larger noise
(as an earlier version did, treating each as a leave-one-out extrapolation of the rest)
doubled the parameter spread of predictions (median sd of ln L 2.0 % vs 0.9 % on the
testbed's Table-1 fits) without making any held-out prediction more accurate. How misfit
grows away from the fit points is the job of ``discrepancy``, applied at prediction time.
The error likelihood is on ln Err with σ_fit's prior.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logit

from scaling_jax.laws import forms
from scaling_jax.laws.bayes.design import Support, log_cm
from scaling_jax.laws.points import as_points, design_problems

SIGMA_FIT_MEDIAN = 0.005  # LogNormal median of σ_fit on ln L and ln Err (see module docstring)
SIGMA_FIT_LOG_SD = 0.75


class _FitPoints:
    """Shared by the fit-point containers: ``x`` (log inputs, one row per point) decides
    the support that prediction distances are measured from; L̄ centres the priors.

    Each container is a pytree of its arrays, so NUTS takes it as an argument of the compiled
    sampler instead of baking it in as constants: fits of one model and shape share one
    compiled program (in memory and in the persistent cache). The summaries the models use
    (L_bar, log_C0, ...) are ``jnp`` expressions for the same reason. Unflattening skips
    validation, which ran when the container was built from concrete arrays.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        jax.tree_util.register_pytree_node(cls, _flatten_points, functools.partial(_unflatten_points, cls))

    @property
    def support(self) -> Support:
        return Support(self.x)

    @property
    def L_bar(self) -> jax.Array:
        return jnp.exp(jnp.mean(jnp.log(self.L)))


def _flatten_points(points):
    names = tuple(f.name for f in dataclasses.fields(points))
    return [getattr(points, n) for n in names], names


def _unflatten_points(cls, names, arrays):
    points = object.__new__(cls)
    _set_arrays(points, **dict(zip(names, arrays)))
    return points


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
            warnings.warn(f"Eq. 4 fit points: {problem}; the posterior there is the prior's", RuntimeWarning,
                          stacklevel=3)

    @property
    def x(self) -> np.ndarray:
        return log_cm(self.C, self.M)

    @property
    def log_C0(self) -> jax.Array:
        return jnp.mean(jnp.log(self.C))

    @property
    def log_M0(self) -> jax.Array:
        return jnp.mean(jnp.log(self.M))


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
    def Err_max(self) -> jax.Array:
        return jnp.max(self.Err)


def _set_arrays(obj, **arrays):
    for k, v in arrays.items():
        object.__setattr__(obj, k, v)


def _anchored_params(d: LossData, L_hi, E, w, eta) -> dict:
    """Anchored coordinates → the paper's E, a, b, η. The reducible loss at the largest fit
    compute is L_hi − E, so at the centre (C₀, M₀) it is K = a₀ + b₀ = (L_hi − E)·(C_hi/C₀)^η;
    a₀ = w·K, b₀ = (1 − w)·K, and undoing the centring a = a₀·M₀^−η·C₀^η, b = b₀·M₀^η·C₀^η."""
    log_K = jnp.log(L_hi - E) + eta * (jnp.log(d.C).max() - d.log_C0)
    a = w * jnp.exp(log_K + eta * (d.log_C0 - d.log_M0))
    b = (1 - w) * jnp.exp(log_K + eta * (d.log_C0 + d.log_M0))
    return {"E": E, "a": a, "b": b, "eta": eta}


def _sigma_fit(name: str):
    return numpyro.sample(name, dist.LogNormal(np.log(SIGMA_FIT_MEDIAN), SIGMA_FIT_LOG_SD))


def loss_model(data: LossData):
    """Eq. 4 on ln L with a learned fit noise σ_fit (see module docstring).

    Sampled in anchored coordinates: the law's loss at the smallest and largest fit compute
    (at M₀), which the data pin, plus E and the a/b split, which they don't. In (E, η, a, b)
    the same posterior is a curved ridge (lower E goes with lower η) that NUTS crosses
    badly (R-hat ≈ 1.07, ESS ≈ 30 at 4 × 1,000 draws on RedPajama's Table-1 points); here
    it has R-hat ≈ 1.00 and ESS ≈ 1,000.
    """
    log_C_lo, log_C_hi = jnp.log(data.C).min(), jnp.log(data.C).max()
    ln_L_hi = numpyro.sample("ln_L_hi", dist.Normal(jnp.log(data.L_bar), 1.0))
    drop = numpyro.sample("drop", dist.HalfNormal(1.0))
    u_E = numpyro.sample("u_E", dist.Beta(2.0, 2.0))
    w = numpyro.sample("w", dist.Beta(2.0, 2.0))
    sigma = _sigma_fit("sigma_loss")
    L_hi = jnp.exp(ln_L_hi)
    E = u_E * L_hi
    eta = jnp.log((L_hi * jnp.exp(drop) - E) / (L_hi - E)) / (log_C_hi - log_C_lo)
    p = _anchored_params(data, L_hi, E, w, eta)
    for name in ("E", "a", "b", "eta"):
        numpyro.deterministic(name, p[name])
    L = forms.overtrain(p, data.C, data.M)
    numpyro.sample("ln_L", dist.Normal(jnp.log(L), sigma), obs=jnp.log(data.L))


def error_model(data: ErrorData):
    """Eq. 5 on ln Err with a learned fit noise σ_fit."""
    u_eps = numpyro.sample("u_epsilon", dist.Beta(2.0, 2.0))
    v_k = numpyro.sample("v_k", dist.Beta(1.5, 4.0))
    gamma = numpyro.sample("gamma", dist.LogNormal(0.0, 1.0))
    sigma = _sigma_fit("sigma_error")
    eps = numpyro.deterministic("epsilon", data.Err_max + (1.0 - data.Err_max) * u_eps)
    k = numpyro.deterministic("k", eps * v_k * jnp.exp(gamma * data.L_bar))
    Err = forms.error({"epsilon": eps, "k": k, "gamma": gamma}, data.L)
    # Measured errors are positive, so a draw with ε − k·e^−γL ≤ 0 at a fit point is
    # impossible: zero density, not a clipped value (clipping left flat regions where a chain
    # started by init_to_median could stick).
    positive = Err > 0
    numpyro.factor("error_positive", jnp.where(jnp.all(positive), 0.0, -jnp.inf))
    Err = jnp.where(positive, Err, 1.0)
    numpyro.sample("ln_Err", dist.Normal(jnp.log(Err), sigma), obs=jnp.log(data.Err))


def chained_model(loss: LossData, error: ErrorData):
    """Eq. 4 and Eq. 5 in one model, so one NUTS run yields joint draws of both laws.

    The error law is fitted on the measured losses of its fit points; predictions chain
    (C, M) → L (with its noise and discrepancy) → Err (with its own), so an error band
    carries both laws' uncertainty.
    """
    loss_model(loss)
    error_model(error)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["sets"], meta_fields=[])
@dataclass(frozen=True)
class PooledLossData:
    """Eq. 4 fit points of several training sets; ``sets[s]`` holds set s's points."""

    sets: tuple[LossData, ...]


def hierarchical_loss_model(data: PooledLossData, pooled: bool = True):
    """Eq. 4 for S training sets with η partially pooled and E, a, b free per set.

    Per set the anchored coordinates of :func:`loss_model` (L_hi, E = u·L_hi, w) with their
    priors, but η is sampled (it is what is pooled) instead of following from L_lo.

    logit η_s = logit η̄ + s_η·z_s with η̄ ~ Beta(2, 6) (the single-set prior), z_s ~ N(0, 1),
    s_η ~ HalfNormal(0.2): the paper finds η nearly constant across data sets, and 0.2 on the
    logit scale lets η_s differ from η̄ by ~±20 % (η(1−η)·0.2 ≈ 0.02 at η ≈ 0.13). The
    fit noise σ_fit is shared: the same architecture, recipe and evaluation set make the
    law's scatter a property of the recipe, and pooling it gives it S times the residuals.

    ``pooled=False`` is the same model without pooling (:func:`independent_loss_model`): each
    η_s ~ Beta(2, 6) on its own, everything else (priors, shared σ_fit) unchanged, so that a
    comparison of the two measures pooling alone. (:func:`loss_model`'s η follows from its
    anchored coordinates, with an implied prior that is not Beta(2, 6).)
    """
    S = len(data.sets)
    if pooled:
        eta_bar = numpyro.sample("eta_bar", dist.Beta(2.0, 6.0))
        s_eta = numpyro.sample("s_eta", dist.HalfNormal(0.2))
    sigma = _sigma_fit("sigma_loss")
    with numpyro.plate("set", S):
        if pooled:
            z = numpyro.sample("z_eta", dist.Normal(0.0, 1.0))
        else:
            eta = numpyro.sample("eta", dist.Beta(2.0, 6.0))
        ln_L_hi = numpyro.sample("ln_L_hi", dist.Normal(jnp.log(jnp.stack([d.L_bar for d in data.sets])), 1.0))
        u_E = numpyro.sample("u_E", dist.Beta(2.0, 2.0))
        w = numpyro.sample("w", dist.Beta(2.0, 2.0))
    if pooled:
        eta = numpyro.deterministic("eta", jax.nn.sigmoid(logit(eta_bar) + s_eta * z))
    per_set = []
    for s, d in enumerate(data.sets):
        L_hi = jnp.exp(ln_L_hi[s])
        p = _anchored_params(d, L_hi, u_E[s] * L_hi, w[s], eta[s])
        L = forms.overtrain(p, d.C, d.M)
        numpyro.sample(f"ln_L_{s}", dist.Normal(jnp.log(L), sigma), obs=jnp.log(d.L))
        per_set.append(p)
    for name in ("E", "a", "b"):
        numpyro.deterministic(name, jnp.stack([p[name] for p in per_set]))


def independent_loss_model(data: PooledLossData):
    """:func:`hierarchical_loss_model` without pooling: η_s ~ Beta(2, 6) independently per set."""
    hierarchical_loss_model(data, pooled=False)
