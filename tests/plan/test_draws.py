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


def _with_nonpositive_errors(n=2000, share=0.1):
    """Synthetic laws where a ``share`` of the Eq. 5 draws fall below zero at the loss floor E (k
    raised: Err(E) ≈ −0.13, yet positive at every fit loss); the others keep Err(E) ≈ 0.285."""
    import dataclasses

    loss, error = synthetic_laws(n, spread=0.002)
    k = error.k.copy()
    k[: int(share * n)] = 3.5
    return loss, dataclasses.replace(error, k=k)


def test_draws_whose_error_law_falls_below_zero_are_dropped_not_clipped():
    """Issue 36, item 2 (fails on 7cbb090, which clipped such draws to Err = 1e-6): no draw with a
    positive error at E is below 0.05 there, so the target is unreachable (p_reachable 0, not the
    10 % clipped), and P(Err <= 0.05) at a huge run is ~0 while the dropped share is reported."""
    from scaling_jax.plan.draws import p_reachable

    loss, error = _with_nonpositive_errors()
    dr = Draws.from_laws(loss, error)
    assert p_reachable(dr, 0.05, error=True) == 0.0
    C, M = forms.compute(1e13, 20 * 1e13), 20.0
    assert p_reach(dr, C, M, 0.05, error=True)[0] < 0.02  # 0.1 + when the dropped draws counted as reaching
    from scaling_jax.plan.draws import floor_nonpositive_share, nonpositive_share

    assert floor_nonpositive_share(dr) == pytest.approx(0.1)
    assert nonpositive_share(dr, C, M)[0] == pytest.approx(0.1, abs=0.02)
    # The exact probability is the sampled predictive's share among the draws that predict.
    from scaling_jax.laws.bayes.predict import chained_error_draws

    Cs, Ms = forms.compute(np.array([3e9, 3e10, 3e11]), 20 * np.array([3e9, 3e10, 3e11])), np.full(3, 20.0)
    sampled = chained_error_draws(loss, error, Cs, Ms, seed=5)
    defined = ~np.isnan(sampled)
    np.testing.assert_allclose(nonpositive_share(dr, Cs, Ms), 1 - defined.mean(axis=0), atol=0.01)
    share = np.sum(sampled <= 0.4, axis=0) / defined.sum(axis=0)
    np.testing.assert_allclose(p_reach(dr, Cs, Ms, 0.4, error=True), share, atol=0.03)


def test_float32_kernel_does_not_overflow_for_steep_laws(laws):
    """Issue 36, item 3 (fails on 7cbb090: b = b₀·e^(η(ln C₀ + ln M₀)) overflowed float32 for
    η ≳ 2 and P(reach) came out NaN). The same law at the fit centre with η = 2.5."""
    import dataclasses

    loss = laws[0]
    x0 = loss.support.x_FxK.mean(axis=0)
    u0, v0 = x0[1] - x0[0], x0[1] + x0[0]
    eta = np.full_like(loss.eta, 2.5)
    steep = dataclasses.replace(loss, eta=eta, a=loss.a * np.exp((loss.eta - eta) * u0),
                                b=loss.b * np.exp((eta - loss.eta) * v0))
    assert np.max(steep.b) > 1e40  # past float32's range
    dr = Draws.from_laws(steep)
    N = np.geomspace(1e7, 1e10, 100)
    i = int(np.argmin(np.abs(p_reach(dr, forms.compute(N, 20 * N), np.full(100, 20.0), 2.4, exact=True) - 0.5)))
    N = np.geomspace(N[i - 1], N[i + 1], 50)  # around where the law crosses the target
    C, M = forms.compute(N, 20 * N), np.full(50, 20.0)
    exact = p_reach(dr, C, M, 2.4, exact=True)
    assert np.sum((exact > 0.01) & (exact < 0.99)) >= 10
    np.testing.assert_allclose(p_reach(dr, C, M, 2.4), exact, atol=2e-5)


def test_error_bands_leave_out_and_count_draws_whose_law_falls_below_zero():
    """Issue 36, item 2 (fails on 7cbb090: the dropped draws sat at 1e-6, so the 95 % band began at
    1e-6): the band is over the draws that predict, and plan.json says what share did not."""
    from scaling_jax.laws.bayes.predict import Bands, chained_error_draws
    from scaling_jax.plan.candidates import candidate_table

    loss, error = _with_nonpositive_errors()
    row_small, row_big = candidate_table(loss, error, [1e9, 1e13], [20.0, 20.0])
    assert row_big["error"]["lo95"] > 0.1 and row_big["error"]["nonpositive_share"] == pytest.approx(0.1, abs=0.02)
    assert row_small["error"]["nonpositive_share"] == 0.0
    b = Bands.from_draws(chained_error_draws(loss, error, forms.compute(1e13, 2e14), 20.0))
    assert b.undefined[0] == pytest.approx(0.1, abs=0.02) and b.lo[95][0] > 0.1
