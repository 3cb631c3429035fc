"""The ``paper`` design picks runs by a rule (nearest M = 20 within a factor 2, ties to the larger M),
never by floating-point rounding at the edge of the factor."""

import numpy as np

from scaling_jax.backtest import recipes

PAPER = recipes.Recipe("overtrain", "lsq", "paper")


def _design(N, D, cut=np.inf):
    return np.flatnonzero(PAPER.fit_mask(np.asarray(N, float), np.asarray(D, float), cut))


def test_a_multiplier_one_ulp_below_10_counts_as_10():
    """Four sizes at M = 20 and a fifth whose only run is at M = 10 (one ulp low) or exactly 10: the
    same five runs are fitted, four parameters from five points either way."""
    N = np.array([1e8, 2e8, 4e8, 8e8, 1.6e9])
    for d_last in (10.0 * 1.6e9, np.nextafter(10.0 * 1.6e9, 0.0)):
        D = np.array([20 * 1e8, 20 * 2e8, 20 * 4e8, 20 * 8e8, d_last])
        assert list(_design(N, D)) == [0, 1, 2, 3, 4], D[-1] / N[-1]
    assert np.nextafter(10.0 * 1.6e9, 0.0) / 1.6e9 < 10.0  # the ratio fit_mask saw really was below 10
    M = np.array([20.0, 20.0, np.nextafter(10.0, 0.0), np.nextafter(40.0, 99.0)])
    N2 = np.array([1e8, 2e8, 4e8, 8e8])
    keep = recipes._paper_design(N2, M, np.ones(4, bool))
    assert keep.tolist() == [True, True, True, True]
    # Past the factor by more than rounding: left out.
    assert not recipes._paper_design(np.array([1e8]), np.array([9.9]), np.ones(1, bool)).any()


def test_equally_near_runs_are_broken_to_the_larger_multiplier_in_any_order():
    """One size at M = 10 and 40 (equally near 20 in log M): the M = 40 run, whatever the file order."""
    for order in ([0, 1], [1, 0]):
        N = np.array([1e8, 1e8])[order]
        D = np.array([10 * 1e8, 40 * 1e8])[order]
        (i,) = _design(N, D)
        assert D[i] / N[i] == 40.0, order
