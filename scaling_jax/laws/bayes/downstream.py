"""The Bayesian downstream laws (issue 30): both steps of every task in one NumPyro model.

Per intermediate k (the validation loss for the ``per-task`` route, each task's own loss for
``two-step``) step 1 is Eq. 3 (or Eq. 4: Eq. 3 with α = β) in the anchored coordinates and with the
priors of ``chinchilla`` (ln L₀ ~ Normal(ln L̄, 1), E = u·L₀, the A/B split w, α, β ~ Beta(2, 6)
through the slope coordinates ln g), its likelihood on ln loss with noise σ₁ₖ. Per task t step 2
is the sigmoid acc = b + a·σ(−k·(L − L0)) with b the task's chance accuracy, or Eq. 5 on the error,
its likelihood on ln(1 − acc) (as Eq. 5's in ``models``) with noise σ₂ₜ, fitted on the measured
intermediate of its fit runs. Tasks sit side by side in plates: one model per task, stacked, so
one NUTS run samples them all (on CPU a step costs what one task's does) and every draw pairs the
tasks' laws for the task mean. Where tasks share something, they share a hyper-prior: the noise
scales of one step (the same evaluation, the same number of examples), ln σₖ = μ + s·zₖ.

Priors of step 2 (weakly informative): with L̄ the geometric mean fit loss of the task,
k = κ/L̄, ln κ ~ Normal(ln 5, 1) (the sigmoid rises over a fraction of the loss's own scale);
L0 = L̄ + logit(v)/k, v = σ(k·(L0 − L̄)) ~ Uniform(0, 1): the typical fit loss sits anywhere on the
sigmoid, from its foot to its top. Sampled as (ln κ, v) rather than (k, L0): the data pin the
accuracy at L̄ and the slope there, which (k, L0) couple into a ridge (R-hat 1.02, ESS ≈ 150 of
2,000 on the CPU ladder; in (ln κ, v) ...). The anchor at the ideal
point L = 0: ``constraint`` a = (ceiling − b)/σ(k·L0) (acc(0) = ceiling exactly), ``prior``
acc(0) ~ Normal(ceiling, 0.05) truncated to (b, 1) and a = (acc(0) − b)/σ(k·L0), ``none``
a = (1 − b)·v, v ~ Beta(2, 2). σ₂: ln σ₂ ~ Normal(ln 0.03, 1) (a task of a few hundred examples
scatters by a few percent of its error). Step 1's σ₁: ln σ₁ ~ Normal(ln 0.01, 1). Eq. 5's priors are
``models.error_model``'s, per task.

Predictive draws (:class:`~scaling_jax.laws.downstream.DownstreamFit`) add, in each step, the fit
noise and the discrepancy at the target's distance: step 1's ``loss`` discrepancy along (ln C, ln M)
from the nearest fit run, step 2's ``error`` discrepancy along ln L from the nearest fit loss (priors,
or self-calibrated on the ladder's own cuts: ``paper.downstream``). The ``paper`` route is the
chained Eq. 4 → Eq. 5 model of ``fit`` (``models.chained_model``), its draws read the same way.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import logit

from scaling_jax.errors import UserError
from scaling_jax.laws.bayes.chinchilla import PRIOR_NOTES as CHINCHILLA_NOTES
from scaling_jax.laws.bayes.chinchilla import SLOPE_BASE, _exponent_log_prior
from scaling_jax.laws.bayes.design import Support, log_cm
from scaling_jax.laws.bayes.discrepancy import prior_discrepancy
from scaling_jax.laws.bayes.infer import NutsConfig, run_nuts

ANCHOR_SD = 0.05
SIGMA1 = (np.log(0.01), 1.0)  # ln σ₁ ~ Normal(·): step 1's scatter on ln loss
SIGMA2 = (np.log(0.03), 1.0)  # ln σ₂ ~ Normal(·): step 2's scatter on ln(1 − acc)
STEEPNESS = (np.log(5.0), 1.0)  # ln κ, k = κ/L̄
# A downstream fit samples every task at once (8 tasks: ~80 dimensions). A diagonal mass matrix: with
# the dense one (the single laws' default) 8 tasks x 16 runs took 57-73 CPU s (64 without compiling)
# for the same R-hat (1.006) and ESS; diagonal, 4 chains x (400 + 400) at acceptance 0.9, 29 CPU s
# with compilation, R-hat 1.0055, min ESS 510 of 1,600 (BENCHMARKS.md, "Downstream forecasts").
DOWNSTREAM_NUTS = NutsConfig(num_warmup=400, num_samples=400, num_chains=4, target_accept_prob=0.9,
                             dense_mass=False)


@functools.partial(jax.tree_util.register_dataclass,
                   data_fields=["N", "D", "Y", "X", "A", "chance", "ceiling"], meta_fields=[])
@dataclass(frozen=True)
class DownstreamData:
    """Step 1's fit runs (N, D) and their intermediates Y (n₁, K); step 2's fit runs' intermediate
    of each task X (n₂, T) and accuracies A (n₂, T); each task's chance and ceiling (T,)."""

    N: np.ndarray
    D: np.ndarray
    Y: np.ndarray
    X: np.ndarray
    A: np.ndarray
    chance: np.ndarray
    ceiling: np.ndarray


def _noise(name: str, size: int, prior: tuple[float, float]):
    """σ per member of a plate of ``size``: ln σ = μ + s·z with a shared μ and s (a hyper-prior
    pooling the members' scatter); one member samples ln σ from the prior itself."""
    if size == 1:
        return jnp.exp(numpyro.sample(f"ln_{name}", dist.Normal(*prior)))[None]
    mu = numpyro.sample(f"{name}_mu", dist.Normal(*prior))
    s = numpyro.sample(f"{name}_s", dist.HalfNormal(0.5))
    with numpyro.plate(f"{name}_plate", size):
        z = numpyro.sample(f"{name}_z", dist.Normal(0.0, 1.0))
    return jnp.exp(mu + s * z)


def _step1(d: DownstreamData, form: str):
    """Eq. 3 (``eq3``) or Eq. 4 (``eq4``: α = β) per intermediate; deterministic E, A, B, alpha, beta."""
    K = d.Y.shape[1]
    log_N0, log_D0 = jnp.mean(jnp.log(d.N)), jnp.mean(jnp.log(d.D))
    with numpyro.plate("intermediate", K):
        ln_L0 = numpyro.sample("ln_L0", dist.Normal(jnp.mean(jnp.log(d.Y), axis=0), 1.0))
        u_E = numpyro.sample("u_E", dist.Beta(2.0, 2.0))
        w = numpyro.sample("w", dist.Beta(2.0, 2.0))
        if form == "eq3":
            ln_g_N = numpyro.sample("ln_g_N", SLOPE_BASE)
            ln_g_D = numpyro.sample("ln_g_D", SLOPE_BASE)
            alpha = jnp.exp(ln_g_N) / (w * (1.0 - u_E))
            beta = jnp.exp(ln_g_D) / ((1.0 - w) * (1.0 - u_E))
            numpyro.factor("exponent_prior", _exponent_log_prior(alpha, ln_g_N) + _exponent_log_prior(beta, ln_g_D))
        else:
            ln_g = numpyro.sample("ln_g", SLOPE_BASE)
            alpha = beta = jnp.exp(ln_g) / (1.0 - u_E)
            numpyro.factor("exponent_prior", _exponent_log_prior(alpha, ln_g))
    L0 = jnp.exp(ln_L0)
    E = u_E * L0
    A0, B0 = w * (L0 - E), (1.0 - w) * (L0 - E)
    for name, v in (("E", E), ("A", A0 * jnp.exp(alpha * log_N0)), ("B", B0 * jnp.exp(beta * log_D0)),
                    ("alpha", alpha), ("beta", beta)):
        numpyro.deterministic(name, v)
    dN, dD = (jnp.log(d.N) - log_N0)[:, None], (jnp.log(d.D) - log_D0)[:, None]
    Y = E + A0 * jnp.exp(-alpha * dN) + B0 * jnp.exp(-beta * dD)
    sigma = numpyro.deterministic("sigma_1", _noise("sigma1", K, SIGMA1))
    numpyro.sample("ln_Y", dist.Normal(jnp.log(Y), sigma), obs=jnp.log(d.Y))


def _step2(d: DownstreamData, form: str, anchor: str):
    """The sigmoid (or Eq. 5) per task on ln(1 − acc); deterministic a, k, L0 (or epsilon, k, gamma)."""
    T = d.X.shape[1]
    L_bar = jnp.exp(jnp.mean(jnp.log(d.X), axis=0))
    c, u = d.chance, d.ceiling
    with numpyro.plate("task", T):
        if form == "sigmoid":
            k = jnp.exp(numpyro.sample("ln_kappa", dist.Normal(*STEEPNESS))) / L_bar
            # v = σ(k·(L0 − L̄)): where the typical fit loss sits on the sigmoid (module docstring)
            L0 = L_bar + logit(numpyro.sample("v_mid", dist.Beta(1.0, 1.0))) / k
            if anchor == "constraint":
                a = (u - c) / jax.nn.sigmoid(k * L0)
            elif anchor == "prior":
                acc0 = numpyro.sample("acc0", dist.TruncatedNormal(u, ANCHOR_SD, low=c, high=1.0))
                a = (acc0 - c) / jax.nn.sigmoid(k * L0)
            else:
                a = (1.0 - c) * numpyro.sample("v_a", dist.Beta(2.0, 2.0))
            p = {"a": a, "k": k, "L0": L0}
            err = 1.0 - (c + a * jax.nn.sigmoid(-k * (d.X - L0)))
        else:
            err_max = jnp.max(1.0 - d.A, axis=0)
            eps = err_max + (1.0 - err_max) * numpyro.sample("u_epsilon", dist.Beta(2.0, 2.0))
            gamma = numpyro.sample("gamma", dist.LogNormal(0.0, 1.0))
            k = eps * numpyro.sample("v_k", dist.Beta(1.5, 4.0)) * jnp.exp(gamma * L_bar)
            p = {"epsilon": eps, "k": k, "gamma": gamma}
            err = eps - k * jnp.exp(-gamma * d.X)
    for name, v in p.items():
        numpyro.deterministic(f"s2_{name}", v)
    positive = err > 0  # a draw with no error left at a fit run has zero density (as Eq. 5's)
    numpyro.factor("error_positive", jnp.where(jnp.all(positive), 0.0, -jnp.inf))
    sigma = numpyro.deterministic("sigma_2", _noise("sigma2", T, SIGMA2))
    obs = jnp.log(jnp.maximum(1.0 - d.A, 1e-3))
    numpyro.sample("ln_err", dist.Normal(jnp.log(jnp.where(positive, err, 1.0)), sigma), obs=obs)


def downstream_model(d: DownstreamData, step1: str = "eq3", step2: str = "sigmoid", anchor: str = "constraint"):
    """Both steps of every task (module docstring)."""
    _step1(d, step1)
    _step2(d, step2, anchor)


# What fit.json's "priors" says where a sampled coordinate's own distribution is not the prior in
# effect (``fit.describe_priors`` reads a model's ``prior_notes``): Eq. 3's slope coordinates (see
# ``chinchilla``), the anchor's truncated Normal, the pooled noise scales.
PRIOR_NOTES = {
    **CHINCHILLA_NOTES,
    "ln_g": "sampling coordinate of Eq. 4 (alpha = beta = exp(ln_g)/(1 - u_E)); its Normal base is cancelled by "
            "exponent_prior: alpha ~ Beta(2, 6)",
    "acc0": f"accuracy at loss 0 ~ Normal(ceiling, {ANCHOR_SD}) truncated to (chance, 1) (the anchor as a prior)",
    "v_mid": "Uniform(0, 1): v = sigmoid(k*(L0 - Lbar)), where the task's typical fit loss Lbar sits on the sigmoid",
    "ln_kappa": f"Normal({STEEPNESS[0]:.4g}, {STEEPNESS[1]:g}): k = exp(ln_kappa)/Lbar",
    "sigma1_mu": f"Normal({SIGMA1[0]:.4g}, {SIGMA1[1]:g}): the mean ln sigma of step 1 (ln loss), shared by the "
                 "intermediates",
    "sigma2_mu": f"Normal({SIGMA2[0]:.4g}, {SIGMA2[1]:g}): the mean ln sigma of step 2 (ln error), shared by the tasks",
}

STEP1_PARAMS = {"chinchilla": ("E", "A", "B", "alpha", "beta"), "overtrain": ("E", "a", "b", "eta")}


def _step1_params(samples: dict, k: int, law: str) -> dict[str, np.ndarray]:
    p = {n: samples[n][:, k] for n in ("E", "A", "B", "alpha", "beta")}
    if law == "chinchilla":
        return p
    from scaling_jax.laws.forms import chinchilla_to_overtrain

    return {n: np.asarray(v) for n, v in chinchilla_to_overtrain(p).items()}


def fit_bayes_downstream(points, route, lay, m1, m2, *, config=None, discrepancies=None):
    """NUTS on ``route`` (the ``paper`` route: ``fit``'s chained Eq. 4 → Eq. 5); returns a
    :class:`~scaling_jax.laws.downstream.DownstreamFit`."""
    from scaling_jax.laws.bayes.fit import describe_priors
    from scaling_jax.laws.downstream import DownstreamFit, Step1Draws, Step2Draws

    discrepancies = discrepancies or {}
    if route.name == "paper":
        return _fit_paper(points, route, lay, m1, m2, config, discrepancies)
    config = config or DOWNSTREAM_NUTS
    d = DownstreamData(points.N[m1], points.D[m1], lay.inter[m1], lay.inter[m2][:, lay.source], lay.acc[m2],
                       np.asarray(lay.chance, np.float64), np.asarray(lay.ceiling, np.float64))
    if len(d.N) < 2 or len(np.unique(d.D / d.N)) < 2:
        raise UserError(f"{route.label}: the Bayesian step 1 needs fit runs at two or more token multipliers")
    model = functools.partial(downstream_model, step1=route.step1, step2=route.step2, anchor=route.anchor)
    model.__module__ = __name__
    model.prior_notes = PRIOR_NOTES
    post = run_nuts(model, d, config=config)
    s = post.samples
    n = post.num_draws
    disc1 = (discrepancies.get("loss") or prior_discrepancy("loss", n, seed=0)).take(n)
    disc2 = (discrepancies.get("error") or prior_discrepancy("error", n, seed=1)).take(n)
    support1 = Support(log_cm(6.0 * d.N * d.D, d.D / d.N))
    step1 = [Step1Draws(name, route.law1, _step1_params(s, k, route.law1), s["sigma_1"][:, k], support1, disc1)
             for k, name in enumerate(lay.names)]
    names2 = ("a", "k", "L0") if route.step2 == "sigmoid" else ("epsilon", "k", "gamma")
    step2 = [Step2Draws(task, route.step2, {q: s[f"s2_{q}"][:, t] for q in names2}, s["sigma_2"][:, t], "log_error",
                        float(lay.chance[t]), float(lay.ceiling[t]), int(lay.source[t]),
                        Support(np.log(d.X[:, t])[:, None]), disc2) for t, task in enumerate(lay.outputs)]
    with jax.enable_x64(True):
        priors = describe_priors(model, d)
    info = {"priors": priors, "nuts": _nuts_json(config), "diagnostics": _diagnostics(post, n),
            "discrepancy": {"loss": disc1.summary(), "error": disc2.summary()}}
    return DownstreamFit(route, "bayes", step1, step2, info, post)


def _nuts_json(config: NutsConfig) -> dict:
    return {"num_warmup": config.num_warmup, "num_samples": config.num_samples, "num_chains": config.num_chains,
            "seed": config.seed, "target_accept_prob": config.target_accept_prob}


def _diagnostics(post, n_draws: int) -> dict:
    from scaling_jax.laws.fit_report import DIVERGENCE_FAIL, RHAT_FAIL

    d = post.diagnostics
    problems = [f"R-hat {v:.3f} > {RHAT_FAIL} for {k!r}" for k, v in d.rhat.items() if v > RHAT_FAIL]
    if d.divergences > DIVERGENCE_FAIL * n_draws:
        problems.append(f"{d.divergences} divergent transitions of {n_draws} draws (> {DIVERGENCE_FAIL:.0%})")
    return {**d.to_dict(), "rhat": d.rhat, "ess": d.ess, "converged": not problems, "problems": problems}


def _fit_paper(points, route, lay, m1, m2, config, discrepancies):
    """The paper's route as ``fit --estimator bayes`` fits it: Eq. 4 (or Eq. 3) on the loss, chained to
    Eq. 5 on the task-mean error, one NUTS run; its draws as step 1 and step 2 of the route."""
    from scaling_jax.laws.bayes import ChinchillaData, ErrorData, LossData
    from scaling_jax.laws.bayes.fit import fit_bayes
    from scaling_jax.laws.downstream import DownstreamFit, Step1Draws, Step2Draws

    if route.step2 != "eq5":
        raise UserError(f"{route.label}: the Bayesian paper route is Eq. 5 on the task mean "
                        f"(--forms {route.step1}/eq5)")
    N, D, L = points.N[m1], points.D[m1], points.loss[m1]
    loss = (LossData(C=6.0 * N * D, M=D / N, L=L) if route.law1 == "overtrain" else ChinchillaData(N=N, D=D, L=L))
    error = ErrorData(L=points.loss[m2], Err=points.mean_error[m2])
    fit = fit_bayes(route.law1, loss=loss, error=error, config=config or NutsConfig(),
                    loss_discrepancy=discrepancies.get("loss"), error_discrepancy=discrepancies.get("error"))
    ll, el = fit.loss_law, fit.error_law
    step1 = [Step1Draws("loss", route.law1, {k: np.asarray(getattr(ll, k)) for k in STEP1_PARAMS[route.law1]},
                        np.asarray(ll.sigma), ll.support, ll.discrepancy)]
    step2 = [Step2Draws(lay.outputs[0], "eq5", {k: np.asarray(getattr(el, k)) for k in ("epsilon", "k", "gamma")},
                        np.asarray(el.sigma), "log_error", float(lay.chance[0]), float(lay.ceiling[0]), 0, el.support,
                        el.discrepancy)]
    n = fit.posterior.num_draws
    info = {"priors": fit.priors, "nuts": _nuts_json(config or NutsConfig()),
            "diagnostics": _diagnostics(fit.posterior, n),
            "discrepancy": {"loss": ll.discrepancy.summary(), "error": el.discrepancy.summary()}}
    return DownstreamFit(route, "bayes", step1, step2, info, fit)
