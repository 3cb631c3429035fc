"""The Bayesian two-step (issue 30): one NUTS run over both steps of every task recovers the laws a
ladder was drawn from and its bands cover targets beyond it; the sigmoid's ceiling as a constraint
(accuracy exactly the ceiling at loss 0 in every draw) and as a prior (near it, not pinned)."""

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


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:NUTS")
def test_the_ceiling_as_a_prior_leaves_the_accuracy_at_zero_loss_free_near_it():
    p, f = _fit("prior", seed=201)
    for t in range(2):
        s = f.step2[t]
        at0 = step2_accuracy("sigmoid", s.params, 0.0, CHANCE[t])
        assert np.std(at0) > 1e-3  # not pinned
        assert np.all(at0 <= 1.0 + 1e-12) and abs(np.median(at0) - CEILING[t]) < 0.08
    assert "Normal(ceiling, 0.05) truncated" in f.info["priors"]["acc0"]
    med = np.median(f.draws(p.N[16:], p.D[16:])["mean_accuracy"], axis=0)
    assert med == pytest.approx(p.acc[16:].mean(1), abs=0.02)
