import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import curve_fit

from scaling_jax.laws.fit import fit_law, predict
from scaling_jax.laws.starts import start_grid
from scaling_jax.paper import recipe


def _table1(testbed, ds="rpj"):
    runs = recipe.loss_fit_runs(testbed, ds)
    xs = {"C": np.array([r.C for r in runs]), "M": np.array([r.M for r in runs])}
    return xs, np.array([r.loss("c4_val") for r in runs])


def _scipy_reference(xs, y, starts):
    """The paper's procedure: curve_fit (LM) from every start, keep the lowest residual."""

    def f(x, E, a, b, eta):
        C, M = x
        return E + (a * M**eta + b * M ** (-eta)) * C ** (-eta)

    best = (np.inf, None)
    for p0 in starts:
        try:
            p, _ = curve_fit(f, (xs["C"], xs["M"]), y, p0=p0, maxfev=10000)
        except RuntimeError:
            continue
        rss = float(np.sum((f((xs["C"], xs["M"]), *p) - y) ** 2))
        if rss < best[0]:
            best = (rss, p)
    return best


@pytest.mark.parametrize("ds", ["rpj", "c4_original", "rw_original"])
def test_matches_scipy_curve_fit_on_table1(testbed, ds):
    xs, y = _table1(testbed, ds)
    starts = start_grid("overtrain")
    assert starts.shape == (128, 4)
    fit = fit_law("overtrain", xs, y)
    ref_rss, ref_p = _scipy_reference(xs, y, starts)
    assert fit.rss <= ref_rss * (1 + 1e-9)
    # Where the fit is well conditioned, the two optima agree.
    assert fit.identifiability["condition_number_scaled"] < 1e10
    np.testing.assert_allclose([fit.params[k] for k in ("E", "a", "b", "eta")], ref_p, rtol=1e-3)
    assert fit.converged and fit.n_converged > 100


def test_recovers_known_overtrain_parameters():
    true = {"E": 1.9, "a": 180.0, "b": 420.0, "eta": 0.14}
    N = np.array([1e7, 8e7, 1.5e8, 4e8, 1e7, 8e7, 1.5e8, 1e7])
    M = np.array([20, 20, 20, 20, 320, 80, 5, 640.0])
    C = 6 * N * N * M
    y = predict("overtrain", true, C=C, M=M)
    fit = fit_law("overtrain", {"C": C, "M": M}, y)
    for k, v in true.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6)
    assert fit.identifiability["warnings"] == []


def test_float64_stays_local():
    xs, y = {"C": [1e17, 1e18, 1e19, 1e20, 1e18], "M": [20, 20, 20, 20, 320]}, [4.0, 3.4, 3.0, 2.8, 3.6]
    fit_law("overtrain", xs, y)
    assert jnp.ones(2).dtype == jnp.float32


@pytest.mark.parametrize(
    "xs, y, match",
    [
        ({"C": [1e17, 1e18], "M": [20, 40]}, [4.0, 3.5], r"4 parameters but only 2 point"),
        ({"C": [1e17, 1e18, np.nan, 1e20, 1e18], "M": [20] * 4 + [320]}, [4, 3.5, 3, 2.8, 3.6],
         r"C has non-finite value nan at point 2"),
        ({"C": [1e17, 1e18, 1e19, 1e20, 1e18], "M": [20, 20, -1, 20, 320]}, [4, 3.5, 3, 2.8, 3.6],
         r"M must be positive; point 2"),
        ({"C": [1e17, 1e18, 1e19, 1e20, 1e18]}, [4, 3.5, 3, 2.8, 3.6], r"missing \['M'\]"),
        ({"C": [1e17, 1e18, 1e19], "M": [20, 20, 20, 20]}, [4, 3.5, 3, 2.8],
         r"input 'C' has 3 values but the target has 4"),
        ({"C": [1e18] * 5, "M": [20.0] * 5}, [3.1, 3.0, 3.2, 3.1, 3.0], r"only 1 distinct \(C, M\) value"),
    ],
)
def test_bad_points(xs, y, match):
    with pytest.raises(ValueError, match=match):
        fit_law("overtrain", xs, y)


def test_one_multiplier_warns_that_a_and_b_are_confounded(testbed):
    runs = testbed.select(dataset="rpj").runs
    runs = [r for r in runs if round(r.M) == 20]
    fit = fit_law("overtrain", {"C": [r.C for r in runs], "M": [r.M for r in runs]}, [r.loss("c4_val") for r in runs])
    joined = " ".join(fit.identifiability["warnings"])
    assert "same token multiplier M" in joined
    assert "near singular" in joined or "correlated" in joined


def test_chinchilla_on_one_ratio_warns(testbed):
    runs = [r for r in testbed.select(dataset="rpj") if round(r.M) == 20]
    fit = fit_law("chinchilla", {"N": [r.N for r in runs], "D": [r.D for r in runs]}, [r.loss("c4_val") for r in runs])
    assert any("D ∝ N" in w for w in fit.identifiability["warnings"])


def test_error_law_fit_and_json_shape(testbed):
    runs = recipe.error_fit_runs(testbed, "rpj")
    fit = fit_law("error", {"L": [r.loss("c4_val") for r in runs]}, [r.err_17 for r in runs])
    j = fit.to_json()
    assert set(j["params"]) == {"epsilon", "k", "gamma"}
    assert set(j["identifiability"]) >= {"condition_number", "correlations", "warnings"}
    assert j["law"] == "error" and j["estimator"] == "lm" and isinstance(j["converged"], bool)
    assert 0.5 < fit.params["epsilon"] < 1.0 and fit.params["k"] > 0 and fit.params["gamma"] > 0
