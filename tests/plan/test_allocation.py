"""Compute-optimal allocation over posterior draws (synthetic draws around a known law)."""

import numpy as np
import pytest

from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.plan.allocation import compute_optimal, m_star
from tests.conftest import SYNTHETIC_LOSS, synthetic_laws


@pytest.fixture(scope="module")
def laws():
    return synthetic_laws(2000)


def test_m_star_n_d_follow_the_law(laws):
    loss, error = laws
    C = 1e22
    co = compute_optimal(loss, error, C)
    true_M = float(forms.optimal_multiplier(SYNTHETIC_LOSS))
    assert co["M_star"]["lo95"] < true_M < co["M_star"]["hi95"]
    assert co["M_star"]["median"] == pytest.approx(np.median(m_star(loss)))
    # N·D = C/6 draw by draw, so the medians multiply to C/6 (N and D are monotone in M*)
    assert co["N"]["median"] * co["D"]["median"] == pytest.approx(C / 6, rel=1e-6)
    assert co["loss"]["lo95"] < co["loss"]["median"] < co["loss"]["hi95"]
    assert 0 < co["error"]["lo95"] < co["error"]["hi95"] < 1


def test_penalty_is_zero_at_the_optimum_and_grows_away(laws):
    loss, _ = laws
    pen = compute_optimal(loss, None, 1e22)["penalty"]
    med = np.array([r["median"] for r in pen])
    i = int(np.argmin(med))
    assert abs(med[i]) < 1e-3 and med[0] > med[i] and med[-1] > med[i]
    assert all(r["lo95"] >= -1e-12 for r in pen)  # never better than the draw's own optimum


@pytest.mark.parametrize("C", [0.0, -1e20, float("nan"), float("inf")])
def test_non_positive_budget_is_a_user_error(laws, C):
    with pytest.raises(UserError, match="--budget"):
        compute_optimal(laws[0], None, C)
