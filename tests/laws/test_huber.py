import numpy as np
import pytest

from scaling_jax.laws.fit import fit_law, predict
from scaling_jax.laws.huber import DELTA, fit_huber

SMALL_GRID = np.array([[0.0, 5.0, 5.0, 0.1], [0.5, 4.0, 6.0, 0.2], [1.0, 6.0, 4.0, 0.05]])


def _points():
    true = {"E": 1.9, "a": 180.0, "b": 420.0, "eta": 0.14}
    N = np.repeat([1e7, 3e7, 8e7, 1.5e8], 3)
    M = np.tile([10.0, 40.0, 320.0], 4)
    C = 6 * N * N * M
    return true, {"C": C, "M": M}, predict("overtrain", true, C=C, M=M)


def test_recovers_noiseless_parameters():
    true, xs, y = _points()
    fit = fit_huber("overtrain", xs, y, starts=SMALL_GRID)
    for k, v in true.items():
        assert fit.params[k] == pytest.approx(v, rel=2e-3)
    assert fit.rss < 1e-8 and fit.converged


def test_robust_to_an_outlier_where_least_squares_is_not():
    true, xs, y = _points()
    y = y.copy()
    y[5] *= 1.5
    hub = fit_huber("overtrain", xs, y, starts=SMALL_GRID)
    lsq = fit_law("overtrain", xs, y)
    assert abs(hub.params["eta"] / true["eta"] - 1) < abs(lsq.params["eta"] / true["eta"] - 1)
    assert abs(hub.params["eta"] / true["eta"] - 1) < 0.02


def test_unsupported_law():
    with pytest.raises(ValueError, match="supports laws"):
        fit_huber("error", {"L": [3.0, 2.5, 2.0, 1.5]}, [0.8, 0.7, 0.6, 0.5])


@pytest.mark.slow
def test_bootstrap_refits_with_huber():
    from scaling_jax.laws.bootstrap import bootstrap
    from scaling_jax.laws.huber import bootstrap_starts

    true, xs, y = _points()
    rng = np.random.default_rng(0)
    y = y * (1 + 0.003 * rng.standard_normal(y.size))
    y[5] *= 1.5  # an outlier: LM refits chase it, Huber refits do not
    point = fit_huber("overtrain", xs, y, starts=SMALL_GRID)
    b = bootstrap("overtrain", xs, y, n_resamples=60, seed=0, estimator="huber",
                  starts=bootstrap_starts("overtrain", point.params))
    assert b.estimator == "huber" and b.summary()["estimator"] == "huber" and b.n_kept >= 50
    ci = b.param_intervals(0.95)
    for k, v in point.params.items():
        assert ci[k][0] <= v <= ci[k][1], k
    assert ci["E"][0] > 0
    # Log-space refits keep every resample's E, a, b positive.
    assert (b.params[:, :3] > 0).all()


def test_bootstrap_starts_put_the_point_estimate_first():
    from scaling_jax.laws.huber import BOOTSTRAP_GRID, bootstrap_starts

    s = bootstrap_starts("overtrain", {"E": 2.0, "a": 100.0, "b": 300.0, "eta": 0.1})
    np.testing.assert_allclose(s[0], [np.log(2.0), np.log(100.0), np.log(300.0), 0.1])
    assert len(s) == 1 + len(BOOTSTRAP_GRID["overtrain"])


def test_bootstrap_rejects_unknown_estimator():
    from scaling_jax.errors import UserError
    from scaling_jax.laws.bootstrap import bootstrap

    _, xs, y = _points()
    with pytest.raises(UserError, match="'ols'"):
        bootstrap("overtrain", xs, y, n_resamples=5, estimator="ols")


def test_rows_with_their_own_points_fit_as_each_alone():
    """fit_huber_batch with (R, n) points, short rows padded with weight 0, gives each row's own fit."""
    from scaling_jax.laws.huber import fit_huber_batch

    true, xs, y = _points()
    rows = [np.arange(12), np.arange(2, 11)]
    take = np.stack([np.r_[r, np.full(12 - len(r), r[0])] for r in rows])
    W = (np.arange(12) < np.array([len(r) for r in rows])[:, None]).astype(float)
    y2 = y * np.array([[1.0], [1.01]])  # the second row's losses differ: its fit must use its own
    own = {k: v[take] for k, v in xs.items()}
    params, obj, conv = fit_huber_batch("overtrain", own, np.take_along_axis(y2, take, 1), W, SMALL_GRID)
    for j, r in enumerate(rows):
        alone = fit_huber("overtrain", {k: v[r] for k, v in xs.items()}, y2[j, r], starts=SMALL_GRID)
        np.testing.assert_allclose(params[j], list(alone.params.values()), rtol=1e-6)
        assert obj[j] == pytest.approx(alone.rss, rel=1e-6, abs=1e-14) and conv[j]


def test_levenberg_marquardt_rows_reach_the_l_bfgs_optimum():
    """fit_huber_rows (LM on square-root Huber residuals) minimises the same objective as the
    L-BFGS fit: per row an objective no higher, at the same parameters; outliers stay down-weighted."""
    from scaling_jax.laws.huber import _sqrt_huber, fit_huber_batch, fit_huber_rows

    r = np.array([-0.5, -DELTA, -1e-4, 0.0, 3e-4, DELTA, 0.02])
    huber_r = np.where(np.abs(r) <= DELTA, r**2 / 2, DELTA * (np.abs(r) - DELTA / 2))
    np.testing.assert_allclose(np.asarray(_sqrt_huber(r)) ** 2 / 2, huber_r, rtol=1e-6)
    true, xs, y = _points()
    y_out = y.copy()
    y_out[3] *= 1.05  # one outlier: Huber's linear regime
    Y = np.stack([y, y_out, y * 1.01])
    W = np.ones_like(Y)
    W[2, :3] = 0.0  # a row that drops three points
    X = {k: np.broadcast_to(v, Y.shape) for k, v in xs.items()}
    p_lm, obj_lm, conv_lm = fit_huber_rows("overtrain", X, Y, W, SMALL_GRID)
    p_bf, obj_bf, _ = fit_huber_batch("overtrain", X, Y, W, SMALL_GRID)
    assert conv_lm.all()
    assert np.all(obj_lm <= obj_bf * (1 + 1e-9) + 1e-15), (obj_lm, obj_bf)
    np.testing.assert_allclose(p_lm, p_bf, rtol=1e-4)
    np.testing.assert_allclose(p_lm[1], list(true.values()), rtol=0.05)  # the outlier does not drag the fit
