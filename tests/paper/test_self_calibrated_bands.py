"""``--calibrate self`` end to end: the testbed's ladder stops at the fit's compute (no target in a
calibration cut), ``fit`` writes what it learned into fit.json and widens lm bands by it, and
``plan`` and ``posterior`` take the flag."""

import dataclasses
import json

import numpy as np
import pytest

from scaling_jax.cli import main
from scaling_jax.laws.fit import predict
from scaling_jax.paper import recipe
from scaling_jax.paper.posterior_check import ladder_points
from tests.backtest.sim import write_csv
from tests.backtest.test_self_calibration import ladder


def test_the_testbed_ladder_holds_no_run_above_the_fit_and_no_target(testbed):
    for ds in testbed.datasets:
        fit = recipe.loss_fit_runs(testbed, ds)
        pts = ladder_points(testbed, ds, fit)
        cut = max(r.C for r in fit)
        assert np.all(6 * pts["N"] * pts["D"] <= cut * (1 + 1e-9)) and len(pts["N"]) == 23
        for t in recipe.targets(testbed, ds):  # the Table-1 targets lie beyond every calibration cut
            assert t.C > cut and not np.any(np.isclose(pts["N"], t.N) & np.isclose(pts["D"], t.D))
        err = ladder_points(testbed, ds, recipe.error_fit_runs(testbed, ds), error=True)
        assert "error" in err and np.all(6 * err["N"] * err["D"] <= max(r.C for r in recipe.error_fit_runs(
            testbed, ds)) * (1 + 1e-9))


@pytest.mark.slow
def test_fit_calibrate_self_records_the_calibration_and_widens_lm_bands(tmp_path, capsys):
    pts = ladder()
    pts["error"] = predict("error", {"epsilon": 0.8, "k": 3.0, "gamma": 0.6}, L=pts["loss"])  # Eq. 5 beside it
    csv = write_csv(tmp_path / "ladder.csv", pts)
    common = ["fit", "--runs", csv, "--law", "overtrain", "--predict", "2.33e9,4.66e10", "--bootstrap", "50"]
    assert main(common + ["--out", str(tmp_path / "none")]) == 0
    assert main(common + ["--calibrate", "self", "--out", str(tmp_path / "self")]) == 0
    assert "calibrated on the runs' own size cuts" in capsys.readouterr().out
    none, own = (json.loads((tmp_path / k / "fit.json").read_text()) for k in ("none", "self"))
    assert none["calibration"] == {"method": "none"}
    cal = own["calibration"]
    assert cal["method"] == "self" and cal["loss"]["cuts_by"] == "size" and cal["loss"]["n_residuals"] == 12
    assert cal["error"]["n_residuals"] == 12
    width = lambda f: f["predictions"][0]["loss"]["hi95"] - f["predictions"][0]["loss"]["lo95"]  # noqa: E731
    assert width(own) > width(none)
    assert "discrepancy" in own["prediction_method"]["loss"]
    assert main(common + ["--calibrate", "selff"]) == 2
    assert main(common + ["--calibration", "x.json"]) == 2  # a file alone is the Bayesian estimator's


TINY = ["--chains", "1", "--num-warmup", "60", "--num-samples", "60"]


@pytest.mark.slow
def test_posterior_plan_and_backtest_take_calibrate_self(testbed_dir, tmp_path):
    """posterior --calibrate self scores beyond its ladder apart; plan --testbed --calibrate
    self+FILE updates the file's discrepancy and says so in plan.json; backtest --calibrate self
    widens the chosen recipe's bands and records the calibration."""
    from scaling_jax.laws.bayes import save_calibration
    from scaling_jax.laws.bayes.discrepancy import prior_discrepancy

    assert main(["posterior", "--testbed", str(testbed_dir), "--datasets", "rpj", "--calibrate", "self",
                 "--no-pooling", "--no-plots", "--bootstrap", "20", "--out", str(tmp_path / "post"), *TINY]) == 0
    rpj = json.loads((tmp_path / "post" / "posterior.json").read_text())["datasets"]["rpj"]
    assert rpj["self_calibration"]["loss"]["n_residuals"] > 0 and "out of sample" in rpj["self_calibration"]["scoring"]
    assert rpj["loss"]["beyond_ladder"]["n_heldout"] == 12 and rpj["error"]["beyond_ladder"]["n_heldout"] >= 1
    named = lambda kind: dataclasses.replace(prior_discrepancy(kind, 200), source="test prior")  # noqa: E731
    cal = save_calibration(tmp_path / "cal.json", loss=named("loss"), error=named("error"), source="test prior")
    assert main(["plan", "--testbed", str(testbed_dir), "--dataset", "rpj", "--calibrate", f"self+{cal}",
                 "--budget", "5.7e21", "--out", str(tmp_path / "plan"), "--no-plots", *TINY]) == 0
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    used = plan["posterior"]["calibration"]
    assert used["method"] == "self" and used["prior"] == str(cal)
    assert "prior test prior" in plan["posterior"]["discrepancy"]["loss"]
    csv = write_csv(tmp_path / "ladder.csv", ladder() | {"error": 0.9 - ladder()["loss"] / 10})  # Eq. 5 unfittable
    assert main(["backtest", "--runs", csv, "--recipes", "eq4/lsq/all", "--predict", "2.33e9,4.66e10",
                 "--calibrate", "self", "--bootstrap", "50", "--no-plots", "--out", str(tmp_path / "bt")]) == 0
    bt = json.loads((tmp_path / "bt" / "backtest.json").read_text())
    assert bt["chosen"]["calibration"]["method"] == "self" and "discrepancy" in bt["chosen"]["bootstrap"]
