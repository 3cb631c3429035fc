"""plan.next_run: preposterior ranking of the next cheap run."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling_jax.errors import UserError
from scaling_jax.plan import next_run
from scaling_jax.plan.draws import Draws, mixture_quantiles
from tests.conftest import synthetic_laws

TARGET = {"N": 6.9e9, "M": 20.0}


@pytest.fixture(scope="module")
def dr():
    return Draws.from_laws(*synthetic_laws(1000, spread=0.03))


def test_band_width_in_float32_matches_float64():
    rng = np.random.default_rng(2)
    mu, s, w = rng.normal(0.8, 0.03, 1000), rng.uniform(0.01, 0.03, 1000), rng.dirichlet(np.ones(1000))
    with jax.enable_x64(True):
        args = jnp.asarray(mu), jnp.asarray(s), jnp.asarray(w)
        lo, hi = np.exp(np.asarray(mixture_quantiles(*args, jnp.asarray(next_run.LEVEL), 60)))
        width = float(next_run._width(*args))
    assert width == pytest.approx(hi - lo, rel=1e-5)


def test_the_run_nearest_the_target_is_ranked_first(dr):
    N = np.array([1e7, 1e8, 1e9])
    M = np.array([20.0, 20.0, 20.0])
    out = next_run.rank_next_runs(dr, N, M, TARGET, n_outcomes=16)
    widths = [r["expected_width_95"] for r in out["ranked"]]
    assert [r["N"] for r in out["ranked"]] == [1e9, 1e8, 1e7]
    assert widths == sorted(widths) and widths[0] < out["current_width_95"]
    assert all(r["min_ess"] >= 1.0 for r in out["ranked"])


def test_a_plausible_measured_outcome_narrows_the_band(dr):
    """width_after applies the same update with real values: a plausible outcome narrows the band."""
    N, M = np.array([1e9]), np.array([20.0])
    C = 6.0 * N * N * M
    with jax.enable_x64(True):
        median = float(np.exp(np.median(np.asarray(next_run.log_loss(dr, jnp.asarray(C), jnp.asarray(M))))))
    after = next_run.width_after(dr, N, M, [median], TARGET)
    now = next_run.rank_next_runs(dr, N, M, TARGET, n_outcomes=4)["current_width_95"]
    assert after.shape == (1,) and after[0] < now


def test_affordable_grid_respects_the_budget_and_rejects_an_empty_one():
    N, M = next_run.affordable_grid(1e18)
    assert len(N) > 5 and np.all(6.0 * N * N * M <= 1e18 * (1 + 1e-9)) and N.min() == pytest.approx(1e7)
    with pytest.raises(UserError, match="empty under the budget"):
        next_run.affordable_grid(1e14)
    with pytest.raises(UserError, match="no candidate runs"):
        next_run.rank_next_runs(Draws.from_laws(*synthetic_laws(10)), [], [], TARGET)
