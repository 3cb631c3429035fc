"""plan.draws: the probability of reaching a target, float32 against float64 and sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling_jax.laws import forms
from scaling_jax.laws.bayes.predict import loss_draws
from scaling_jax.plan.draws import Draws, mixture_quantiles, p_reach
from tests.conftest import synthetic_laws


@pytest.fixture(scope="module")
def laws():
    return synthetic_laws(2000)


@pytest.fixture(scope="module")
def grid():
    rng = np.random.default_rng(1)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e11), 500))
    M = np.exp(rng.uniform(np.log(5.0), np.log(2000.0), 500))
    return forms.compute(N, M * N), M


@pytest.mark.parametrize("target", [2.0, 2.4, 2.9])
def test_float32_kernel_agrees_with_float64(laws, grid, target):
    dr = Draws.from_laws(*laws)
    fast, exact = p_reach(dr, *grid, target), p_reach(dr, *grid, target, exact=True)
    assert fast.dtype == np.float64 and fast.shape == exact.shape == (500,)
    assert 0.05 < np.mean((exact > 0.01) & (exact < 0.99))  # the grid crosses the target
    np.testing.assert_allclose(fast, exact, atol=2e-5)


def test_probability_matches_sampled_predictive(laws, grid):
    """P(L ≤ L*) is the share of predictive draws (noise and discrepancy included) at or below L*."""
    C, M = grid[0][:40], grid[1][:40]
    dr = Draws.from_laws(*laws)
    sampled = np.mean(loss_draws(laws[0], C, M, seed=3) <= 2.4, axis=0)
    np.testing.assert_allclose(p_reach(dr, C, M, 2.4), sampled, atol=0.035)


def test_mixture_quantiles_in_float32_match_float64():
    rng = np.random.default_rng(0)
    mu, s, w = rng.normal(0.9, 0.05, 3000), rng.uniform(0.01, 0.04, 3000), rng.uniform(size=3000)
    w = w / w.sum()
    with jax.enable_x64(True):
        q64 = np.asarray(mixture_quantiles(jnp.asarray(mu), jnp.asarray(s), jnp.asarray(w), jnp.array([0.025, 0.975])))
    q32 = np.asarray(mixture_quantiles(*(jnp.asarray(x, jnp.float32) for x in (mu, s, w)),
                                       jnp.array([0.025, 0.975], jnp.float32), 30))  # fmt: skip
    np.testing.assert_allclose(q32, q64, atol=2e-6)
    z = rng.choice(3000, size=400_000, p=w)
    sample = rng.normal(mu[z], s[z])
    np.testing.assert_allclose(np.quantile(sample, [0.025, 0.975]), q64, atol=2e-3)
