import numpy as np
import pytest

from scaling_jax.laws.bootstrap import bootstrap, resample_weights
from scaling_jax.laws.fit import fit_law, predict
from scaling_jax.paper import recipe


def test_weights_are_multiplicities():
    W = resample_weights(5, 100, seed=3)
    assert W.shape == (100, 5) and (W.sum(1) == 5).all()
    np.testing.assert_array_equal(W, resample_weights(5, 100, seed=3))


def test_table1_underdetermined_resamples_are_dropped_and_counted(testbed):
    runs = recipe.loss_fit_runs(testbed, "rpj")
    xs = {"C": [r.C for r in runs], "M": [r.M for r in runs]}
    y = [r.loss("c4_val") for r in runs]
    b = bootstrap("overtrain", xs, y, n_resamples=300, seed=0)
    W = resample_weights(5, 300, seed=0)
    # Every resample without the M = 320 point (index 4) or with < 4 distinct points is dropped.
    expected = int(np.sum((W[:, 4] == 0) | ((W > 0).sum(1) < 4)))
    assert b.n_underdetermined == expected > 150
    assert b.n_kept + b.n_underdetermined + b.n_unconverged == 300
    # The 6.9B run (M = 20, outside the fit points): the interval holds the LM point prediction
    # and the measured loss, and is neither degenerate nor unbounded (it is [2.19, 2.65] at seed 0).
    big = next(r for r in testbed.select(dataset="rpj").runs if r.N > 6e9 and r.M == 20.0)
    lo, hi = b.prediction_interval(0.95, C=[big.C], M=[big.M])
    point = fit_law("overtrain", xs, y).predict(C=[big.C], M=[big.M])
    assert lo[0] < point[0] < hi[0]
    assert lo[0] < big.loss("c4_val") < hi[0]
    assert 0.05 < (hi[0] - lo[0]) / point[0] < 0.3


def test_intervals_cover_truth_on_well_posed_data():
    rng = np.random.default_rng(0)
    true = {"E": 1.9, "a": 180.0, "b": 420.0, "eta": 0.14}
    N = np.repeat([1e7, 3e7, 8e7, 1.5e8, 4e8], 4)
    M = np.tile([10.0, 20.0, 80.0, 320.0], 5)
    C = 6 * N * N * M
    y = predict("overtrain", true, C=C, M=M) * (1 + 0.003 * rng.standard_normal(N.size))
    b = bootstrap("overtrain", {"C": C, "M": M}, y, n_resamples=200, seed=1)
    assert b.n_underdetermined == 0 and b.n_kept >= 190
    ci = b.param_intervals(0.95)
    # Every parameter's interval covers the truth and is informative: relative widths at this
    # seed are E 5 %, eta 6 %, a 26 %, b 32 %.
    max_rel_width = {"E": 0.1, "eta": 0.1, "a": 0.5, "b": 0.5}
    for k in ("E", "a", "b", "eta"):
        assert ci[k][0] < true[k] < ci[k][1], k
        assert (ci[k][1] - ci[k][0]) / true[k] < max_rel_width[k], k
    # Same seed, same answer.
    b2 = bootstrap("overtrain", {"C": C, "M": M}, y, n_resamples=200, seed=1)
    np.testing.assert_array_equal(b.params, b2.params)


def test_all_dropped_is_an_error_not_nonsense():
    b = bootstrap("overtrain", {"C": [1e17, 1e18, 1e19, 1e20], "M": [20.0] * 4}, [4.0, 3.4, 3.0, 2.8], n_resamples=20)
    assert b.n_underdetermined == 20 and b.n_kept == 0
    with pytest.raises(ValueError, match="no usable bootstrap resamples of 20"):
        b.param_intervals()
