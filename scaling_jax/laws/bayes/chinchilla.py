"""NumPyro model of Eq. 3 (Chinchilla, α ≠ β): L(N, D) = E + A·N^−α + B·D^−β, and its posterior
law, usable wherever an Eq. 4 ``LossLaw`` is (``loss_draws``, ``chained_error_draws``, ``predictive``).

Priors (weakly informative; each follows from what the law means, not from a fit). The model
is sampled in anchored coordinates: N₀, D₀ are the geometric means of the fit points'
parameters and tokens, and the law is written

    L(N, D) = E + A₀·(N/N₀)^−α + B₀·(D/D₀)^−β,   A = A₀·N₀^α,  B = B₀·D₀^β.

* ln L₀ ~ Normal(ln L̄, 1): L₀ = E + A₀ + B₀ is the law's loss at the centre (N₀, D₀) of the fit
  points and L̄ the geometric mean observed loss (the law passes near its data, within a
  factor e either way).
* E = u·L₀, u ~ Beta(2, 2): the irreducible loss is positive and below the loss the law
  reaches inside its fit range, with no favoured value inside.
* A₀ = w·(L₀ − E), B₀ = (1 − w)·(L₀ − E), w ~ Beta(2, 2): the model-size term's share of the
  reducible loss at the centre; both terms are present, neither is favoured.
* α, β ~ Beta(2, 6): each exponent is in (0, 1) (loss falls, but slower than 1/N or 1/D);
  Chinchilla-style fits find 0.28-0.37, and Beta(2, 6) has mean 0.25 and 95 % of its mass in
  (0.03, 0.6). They get separate priors because Eq. 3, unlike Eq. 4, lets them differ.

Sampled coordinates. The data pin L₀ and the law's relative slopes at the centre,
g_N = −∂ ln L/∂ ln N = α·A₀/L₀ and g_D = β·B₀/L₀; E and the A/B split are what they pin least.
Sampling α, β directly leaves a curved ridge (lower E goes with a larger reducible loss and a
smaller α at the same slope) that NUTS crosses slowly (min ESS ≈ 80, R-hat ≈ 1.03 at 2 × 300
draws on the tests' 20 simulated runs). So NUTS samples (ln L₀, u, w, ln g_N, ln g_D), with
α = g_N/(w·(1 − u)), β = g_D/((1 − w)·(1 − u)), and a factor that makes the prior exactly the
one above: Beta(2, 6)'s density at α times the Jacobian |∂α/∂ ln g_N| = α (β likewise), over a
Normal base for ln g whose own density is taken back out (the base only gives the initial
point and the sampler a proper distribution to start from). On the same data and seeds: min
ESS ≈ 200 and R-hat ≈ 1.01-1.015, for the same time. A default fit (4 chains × 1,000 + 1,000)
on 20 or 250 simulated runs takes ~37-39 s with compilation on two busy CPU cores, with
R-hat ≤ 1.002, min ESS > 1,600 and no divergences.

Likelihood as Eq. 4's (see ``models``): ln L_obs ~ Normal(ln L_law(N, D), σ_fit), σ_fit with
the same LogNormal prior. The support of the fit points is measured in (ln C, ln M), C = 6ND,
M = D/N, exactly as Eq. 4's, so ``design.loss_distance`` and the loss discrepancy (prior or
calibrated) apply unchanged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from scaling_jax.laws import forms
from scaling_jax.laws.bayes.design import Support, log_cm
from scaling_jax.laws.bayes.discrepancy import Discrepancy
from scaling_jax.laws.bayes.models import ErrorData, _FitPoints, _set_arrays, _sigma_fit, error_model
from scaling_jax.laws.bayes.predict import _paired, log_law_DxP, log_rows
from scaling_jax.laws.points import as_points, design_problems

EXPONENT_PRIOR = dist.Beta(2.0, 6.0)  # prior of α and β (see module docstring)
# Base of the sampled ln g (taken back out by the prior factor): centred where α = β = 0.25 at u = w = 0.5.
SLOPE_BASE = dist.Normal(np.log(0.25 * 0.25), 1.0)


@dataclass(frozen=True)
class ChinchillaData(_FitPoints):
    """Eq. 3 fit points (float64): parameters N, tokens D, loss L.

    Validated like the point fitter's (:func:`scaling_jax.laws.points.as_points`): too few
    points, non-finite or non-positive values raise ``UserError``; a design with every point
    at one D/N (α, β and A, B confounded) only warns, since the priors keep the posterior proper.
    """

    N: np.ndarray
    D: np.ndarray
    L: np.ndarray

    def __post_init__(self):
        xs, y = as_points("chinchilla", {"N": self.N, "D": self.D}, self.L)
        _set_arrays(self, N=xs["N"], D=xs["D"], L=y)
        for problem in design_problems("chinchilla", xs):
            msg = f"Eq. 3 fit points: {problem}; the posterior there is the prior's"
            warnings.warn(msg, RuntimeWarning, stacklevel=3)

    @property
    def C(self) -> np.ndarray:
        return forms.compute(self.N, self.D)

    @property
    def M(self) -> np.ndarray:
        return forms.multiplier(self.N, self.D)

    @property
    def x(self) -> np.ndarray:
        """(ln C, ln M) per point: Eq. 4's coordinates, so distances and discrepancies carry over."""
        return log_cm(self.C, self.M)

    @property
    def log_N0(self) -> jax.Array:
        return jnp.mean(jnp.log(self.N))

    @property
    def log_D0(self) -> jax.Array:
        return jnp.mean(jnp.log(self.D))


def _exponent_log_prior(x, ln_g):
    """log Beta(2, 6) density of exponent x = g/c, times |∂x/∂ ln g| = x, less the base's density of
    ln g; zero density (−∞) for x ≥ 1, where the Beta density already falls to 0 as (1 − x)⁵."""
    inside = x < 1.0
    safe = jnp.where(inside, x, 0.5)
    log_p = EXPONENT_PRIOR.log_prob(safe) + jnp.log(safe) - SLOPE_BASE.log_prob(ln_g)
    return jnp.where(inside, log_p, -jnp.inf)


def chinchilla_model(data: ChinchillaData):
    """Eq. 3 on ln L with a learned fit noise σ_fit, in anchored coordinates (module docstring);
    deterministic sites E, A, B, alpha, beta carry the paper's parameters."""
    ln_L0 = numpyro.sample("ln_L0", dist.Normal(jnp.log(data.L_bar), 1.0))
    u_E = numpyro.sample("u_E", dist.Beta(2.0, 2.0))
    w = numpyro.sample("w", dist.Beta(2.0, 2.0))
    ln_g_N = numpyro.sample("ln_g_N", SLOPE_BASE)
    ln_g_D = numpyro.sample("ln_g_D", SLOPE_BASE)
    alpha = numpyro.deterministic("alpha", jnp.exp(ln_g_N) / (w * (1.0 - u_E)))
    beta = numpyro.deterministic("beta", jnp.exp(ln_g_D) / ((1.0 - w) * (1.0 - u_E)))
    numpyro.factor("exponent_prior", _exponent_log_prior(alpha, ln_g_N) + _exponent_log_prior(beta, ln_g_D))
    sigma = _sigma_fit("sigma_loss")
    L0 = jnp.exp(ln_L0)
    E = numpyro.deterministic("E", u_E * L0)
    A0, B0 = w * (L0 - E), (1.0 - w) * (L0 - E)
    numpyro.deterministic("A", A0 * jnp.exp(alpha * data.log_N0))
    numpyro.deterministic("B", B0 * jnp.exp(beta * data.log_D0))
    dN, dD = jnp.log(data.N) - data.log_N0, jnp.log(data.D) - data.log_D0
    L = E + A0 * jnp.exp(-alpha * dN) + B0 * jnp.exp(-beta * dD)
    numpyro.sample("ln_L", dist.Normal(jnp.log(L), sigma), obs=jnp.log(data.L))


def chained_chinchilla_model(loss: ChinchillaData, error: ErrorData):
    """Eq. 3 and Eq. 5 in one model: joint draws of both laws from one NUTS run (as
    ``models.chained_model`` does for Eq. 4)."""
    chinchilla_model(loss)
    error_model(error)


# What fit.json's "priors" says of the sampled coordinates whose own distributions are not the
# prior (``fit.describe_priors`` reads it): the Normal base of ln g is taken back out by the
# exponent factor, and the prior in effect is the module docstring's α, β ~ Beta(2, 6).
_EXPONENT = "Beta(concentration1=2, concentration0=6)"
PRIOR_NOTES = {
    "alpha": f"{_EXPONENT} (effective prior, independent of u_E and w)",
    "beta": f"{_EXPONENT} (effective prior, independent of u_E and w)",
    "ln_g_N": "sampling coordinate, not a prior: alpha = exp(ln_g_N)/(w*(1 - u_E)); its Normal base is "
              "cancelled by exponent_prior",
    "ln_g_D": "sampling coordinate, not a prior: beta = exp(ln_g_D)/((1 - w)*(1 - u_E)); its Normal base is "
              "cancelled by exponent_prior",
    "exponent_prior": f"density factor: with it the effective prior is alpha, beta ~ {_EXPONENT} "
                      f"(see {__name__})",
}
chinchilla_model.prior_notes = chained_chinchilla_model.prior_notes = PRIOR_NOTES


@dataclass(frozen=True)
class ChinchillaLaw:
    """Posterior draws of Eq. 3 (shape ``(draws,)`` each), its fit noise σ_fit, the support of its
    fit points in (ln C, ln M) and the discrepancy applied beyond them. Interchangeable with
    ``predict.LossLaw``: targets come in as (C, M)."""

    E: np.ndarray
    A: np.ndarray
    B: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    sigma: np.ndarray
    support: Support
    discrepancy: Discrepancy

    @classmethod
    def from_samples(cls, samples: dict, support: Support, discrepancy: Discrepancy | None = None) -> "ChinchillaLaw":
        """From ``Posterior.samples``; ``discrepancy`` defaults to draws from its weakly informative prior."""
        n = len(samples["sigma_loss"])
        return cls(
            E=samples["E"], A=samples["A"], B=samples["B"], alpha=samples["alpha"], beta=samples["beta"],
            sigma=samples["sigma_loss"], support=support, discrepancy=_paired(discrepancy, "loss", n),
        )  # fmt: skip

    def law_args(self, C, M) -> tuple:
        """(form, parameters as (draws, 1) columns, ln N and ln D as (1, P) rows) for ``log_law_DxP``, with
        N = (C/(6M))^½, D = M·N; call under x64."""
        C, M = np.asarray(C, np.float64), np.asarray(M, np.float64)
        N = np.sqrt(C / (6.0 * M))
        p = {k: jnp.asarray(getattr(self, k))[:, None] for k in ("E", "A", "B", "alpha", "beta")}
        return forms.chinchilla_at_logs, p, *log_rows(N, M * N)

    def log_law(self, C, M) -> np.ndarray:
        """ln L of the law per draw, no noise: shape ``(draws, P)``."""
        with jax.enable_x64(True):
            return np.asarray(log_law_DxP(*self.law_args(C, M)))
