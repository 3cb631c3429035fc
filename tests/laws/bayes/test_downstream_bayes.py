"""The Bayesian two-step (issue 30): one NUTS run over both steps of every task recovers the laws a
ladder was drawn from and its bands cover targets beyond it; the sigmoid's ceiling as a constraint
(accuracy exactly the ceiling at loss 0 in every draw), as a prior (near it, not pinned) or none, read
from the model's own prior draws (and the constraint's from the posterior too)."""

import numpy as np
import pytest

from scaling_jax.laws.bayes.infer import NutsConfig
from scaling_jax.laws.downstream import Route, fit_downstream, step2_accuracy
from tests.laws.downstream_sim import CEILING, CHANCE, SIGMOID_TL, TARGETS, ladder

SMALL = NutsConfig(num_warmup=200, num_samples=200, num_chains=2, target_accept_prob=0.9, dense_mass=False)


def _fit(anchor: str, seed: int):
    p = ladder("two-step", seed=seed, extra=TARGETS)
    return p, fit_downstream(p.subset(np.arange(16)), Route.make("two-step", anchor=anchor), "bayes", config=SMALL)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:NUTS")
def test_bayes_two_step_recovers_the_laws_and_covers_targets_with_the_ceiling_as_a_constraint():
    p, f = _fit("constraint", seed=200)
    assert f.info["diagnostics"]["max_rhat"] < 1.05 and f.info["diagnostics"]["divergences"] <= 6
    for t, sig in enumerate(SIGMOID_TL):
        s = f.step2[t]
        assert np.median(s.params["k"]) == pytest.approx(sig["k"], rel=0.15)
        assert np.median(s.params["L0"]) == pytest.approx(sig["L0"], rel=0.08)
        # the constraint: every draw's accuracy at loss 0 is the ceiling
        np.testing.assert_allclose(step2_accuracy("sigmoid", s.params, 0.0, CHANCE[t]), CEILING[t], rtol=1e-9)
    d = f.draws(p.N[16:], p.D[16:])
    lo, hi = np.percentile(d["accuracy"], [2.5, 97.5], axis=0)
    assert np.all((lo <= p.acc[16:]) & (p.acc[16:] <= hi))  # 4 (target, task) pairs 8-12x beyond
    lo, hi = np.percentile(d["mean_accuracy"], [2.5, 97.5], axis=0)
    assert np.all((lo <= p.acc[16:].mean(1)) & (p.acc[16:].mean(1) <= hi))
    assert set(f.info["priors"]) >= {"ln_kappa", "v_mid", "u_E", "ln_g_N", "sigma1_mu", "sigma2_mu"}


def _prior_draws(anchor: str, n: int = 400):
    """Draws of the two-step model's prior (no data): its deterministic step-2 parameters."""
    import functools

    import jax
    from numpyro.infer import Predictive

    from scaling_jax.laws.bayes.downstream import DownstreamData, downstream_model
    from scaling_jax.laws.downstream import layout

    p = ladder("two-step", seed=201)
    lay = layout(p, Route.make("two-step"))
    d = DownstreamData(p.N, p.D, lay.inter, lay.inter, lay.acc, lay.chance, lay.ceiling)
    model = functools.partial(downstream_model, anchor=anchor)
    with jax.enable_x64(True):
        return Predictive(model, num_samples=n)(jax.random.PRNGKey(0), d)


@pytest.mark.parametrize("anchor", ["constraint", "prior", "none"])
def test_the_ceiling_as_a_constraint_or_a_prior_in_the_model(anchor):
    """acc(0), the accuracy at loss 0, in the model's own prior draws: exactly the ceiling (constraint),
    near it but free (prior: Normal(ceiling, 0.05) truncated to (chance, 1)), unanchored (none)."""
    s = _prior_draws(anchor)
    at0 = CHANCE + np.asarray(s["s2_a"]) / (1 + np.exp(-np.asarray(s["s2_k"]) * np.asarray(s["s2_L0"])))
    assert np.all(at0 <= 1.0 + 1e-9) and np.all(at0 > CHANCE)
    if anchor == "constraint":
        np.testing.assert_allclose(at0, np.broadcast_to(CEILING, at0.shape), rtol=1e-9)
    elif anchor == "prior":
        assert np.all(np.std(at0, axis=0) > 0.01) and np.all(np.abs(np.median(at0, axis=0) - CEILING) < 0.06)
    else:
        assert np.all(np.std(at0, axis=0) > 0.05)
