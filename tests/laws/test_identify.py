import numpy as np
import pytest

from scaling_jax.laws.identify import identifiability

P = np.array([1.9, 180.0, 420.0, 0.14])  # E, a, b, eta


def _all_correlations(r):
    return [v for row in r["correlations"].values() for v in row.values()]


@pytest.mark.parametrize("C", [[1e17, 1e18, 1e19, 1e20], [3e16, 1e18, 2e19, 1e21], [1e17, 1e18, 1e19, 1e20, 1e21]])
def test_one_multiplier_leaves_a_and_b_unseparated(C):
    # Every run at M = 20: a·M^η and b·M^−η multiply the same C^−η, so JᵀJ is singular in (a, b).
    # The old inverse-with-clipping reported correlations of ±1e152 here.
    r = identifiability("overtrain", P, {"C": np.array(C), "M": np.full(len(C), 20.0)})
    assert all(v is None or -1.0 <= v <= 1.0 for v in _all_correlations(r))
    assert r["correlations"]["a"]["b"] is None and r["correlations"]["b"]["eta"] is None
    assert any(w.startswith("the design cannot separate") and "a, b" in w for w in r["warnings"])


def test_duplicated_points_leave_every_parameter_unseparated():
    C = np.array([1e17, 1e17, 1e18, 1e18, 1e19, 1e19])
    M = np.array([10.0, 10.0, 20.0, 20.0, 10.0, 10.0])  # 3 distinct points for 4 parameters
    r = identifiability("overtrain", P, {"C": C, "M": M})
    assert all(v is None or -1.0 <= v <= 1.0 for v in _all_correlations(r))
    assert "the design cannot separate E, a, b, eta: JᵀJ is singular along a combination of them, " \
           "so their correlations are undefined (null)" in r["warnings"]


def test_well_posed_design_keeps_its_correlations():
    N = np.repeat([1e7, 3e7, 8e7, 1.5e8], 3)
    M = np.tile([10.0, 40.0, 320.0], 4)
    C = 6 * N * N * M
    r = identifiability("overtrain", P, {"C": C, "M": M})
    corr = np.array([[r["correlations"][i][j] for j in ("E", "a", "b", "eta")] for i in ("E", "a", "b", "eta")])
    np.testing.assert_allclose(np.diag(corr), 1.0)
    assert np.all(np.abs(corr) <= 1.0) and np.abs(corr[0, 3]) > 0.5  # E and eta trade off, as usual
    assert not any("cannot separate" in w for w in r["warnings"])
    # Agrees with the textbook inverse where that is well defined.
    from scaling_jax.laws.identify import jacobian

    J = jacobian("overtrain", P, {"C": C, "M": M})
    cov = np.linalg.inv(J.T @ J)
    s = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(corr, cov / np.outer(s, s), atol=1e-6)
