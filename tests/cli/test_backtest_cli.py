"""``scaling-jax backtest`` on a CSV of simulated runs: the printed choice, backtest.json's
contract (errors by distance per recipe and cut; ``chosen: {recipe, params, predictions}``)
and the figures. The recipes, cuts and points match tests/backtest's fixture, so the compiled
fits are shared."""

import json

import numpy as np
import pytest

from scaling_jax.cli import main
from tests.backtest.sim import simulated_points, write_csv

RECIPES = "eq3/lsq/all,eq4/lsq/all,eq3/lsq/paper"


@pytest.fixture(scope="module")
def backtest_out(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backtest")
    pts = simulated_points()
    final = float(np.sort(6 * pts["N"] * pts["D"])[-8])
    argv = ["backtest", "--runs", write_csv(tmp / "runs.csv", pts), "--recipes", RECIPES, "--cuts", "4",
            "--final-cut", f"{final:.6e}", "--predict", "3e9,6e10", "--predict", "N=5e9,M=20", "--bootstrap", "20",
            "--out", str(tmp / "out")]
    return main(argv), tmp / "out"


def test_backtest_cli_writes_the_contract(backtest_out, capsys):
    rc, out = backtest_out
    assert rc == 0
    body = json.loads((out / "backtest.json").read_text())
    assert body["chosen"]["recipe"] == "eq3/lsq/all"
    assert set(body["chosen"]["params"]) == {"E", "A", "B", "alpha", "beta"}
    preds = body["chosen"]["predictions"]
    assert [p["N"] for p in preds] == [3e9, 5e9]
    for p in preds:
        assert p["loss"]["lo95"] < p["loss"]["median"] < p["loss"]["hi95"]
    rec = body["recipes"]["eq4/lsq/all"]
    assert len(rec["cuts"]) == len(body["selection_cuts"]) + 1
    for c in rec["cuts"]:
        assert c["status"] == "ok" and c["by_distance"] and c["by_distance"][0]["n"] >= 1
    paper = body["recipes"]["eq3/lsq/paper"]
    assert paper["ineligible"] and any(s["recipe"] == "eq3/lsq/paper" for s in body["skipped"])
    # Eq. 5 on the same cuts, from the CSV's error column: recovers the simulated law.
    el = body["error_law"]
    err = el["recipes"]["eq5/avg"]["cuts"]
    assert [c["role"] for c in err] == ["selection"] * len(body["selection_cuts"]) + ["final"]
    assert err[-1]["params"]["gamma"] == pytest.approx(0.7, rel=0.1) and err[-1]["mean_rel_err"] < 1.0
    # A CSV has no per-task errors: those recipes are reported skipped; the choice is among the rest.
    assert el["recipes"]["eq5/per_task"]["ineligible"].startswith("skipped")
    assert el["chosen"]["recipe"] in ("eq5/avg", "sigmoid/avg") and el["paper"]["final"]["mean_rel_err"] < 1.0
    assert (out / "error_vs_distance.png").is_file()
    assert (out / "figure5" / "eq3_lsq_all.png").is_file()
