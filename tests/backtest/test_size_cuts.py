"""Backtests by model size: a 4-size x 4-multiplier ladder (16 runs: too few for compute cuts)
is cut by size, no fit sees a larger size than its cut, and the workflow runs, chooses and
predicts on it."""

import numpy as np
import pytest

from scaling_jax.backtest import cuts, score, select
from scaling_jax.backtest.recipes import Recipe
from scaling_jax.errors import UserError
from scaling_jax.paper.backtest import run_backtest
from tests.backtest.sim import simulated_points, write_csv

SIZES4 = (1e7, 3e7, 8e7, 2e8)
MULTS4 = (10.0, 20.0, 40.0, 80.0)


def ladder(sizes=SIZES4, mults=MULTS4, seed=0) -> dict[str, np.ndarray]:
    pts = simulated_points(seed=seed)
    keep = np.isin(pts["N"], sizes) & np.isin(np.round(pts["D"] / pts["N"]), mults)
    return {k: v[keep] for k, v in pts.items()}


def test_a_4x4_ladder_is_cut_by_size_at_2_and_3_sizes():
    s = score.sweep_from_points("ladder", ladder())
    assert len(s) == 16
    # compute cuts: at most the one just below the largest run (15 runs at or below it) ...
    assert len(cuts.selection_cuts(s.C, float(s.C.max()))) <= 1
    with pytest.raises(UserError, match="too few to backtest"):
        cuts.selection_cuts(s.C, float(np.sort(s.C)[-2]))
    # ... so auto cuts by size
    axis, c = cuts.choose_cuts(s.pts["N"], s.C, float(s.C.max()), "auto")
    assert axis == "N" and list(c) == [3e7, 8e7]
    # five sizes: cuts keeping 3 and 4 of them (2 only when fewer than two such cuts exist)
    s5 = score.sweep_from_points("five", ladder(sizes=SIZES4 + (5e8,)))
    assert list(cuts.size_cuts(s5.pts["N"], s5.C, float(s5.C.max()))) == [8e7, 2e8]
    # a large sweep keeps its compute cuts under auto; size cuts when asked
    big = score.sweep_from_points("big", simulated_points())
    assert cuts.choose_cuts(big.pts["N"], big.C, float(big.C.max()), "auto")[0] == "C"
    assert cuts.choose_cuts(big.pts["N"], big.C, float(big.C.max()), "size")[0] == "N"


def test_size_cuts_need_three_sizes():
    s = score.sweep_from_points("two", ladder(sizes=SIZES4[:2]))
    with pytest.raises(UserError, match="3 or more sizes"):
        cuts.choose_cuts(s.pts["N"], s.C, float(s.C.max()), "size")
    with pytest.raises(UserError, match="--cuts-by"):
        cuts.choose_cuts(s.pts["N"], s.C, float(s.C.max()), "width")


def test_no_fit_sees_a_size_above_its_cut_and_every_larger_size_is_scored():
    s = score.sweep_from_points("ladder", ladder())
    axis, c = cuts.choose_cuts(s.pts["N"], s.C, float(s.C.max()), "size")
    recipes = (Recipe("overtrain", "lsq", "all"), Recipe("overtrain", "lsq", "paper"))
    results = score.run_backtest([s], recipes, {"ladder": c}, {"ladder": float(s.C.max())}, {"ladder": axis})
    sel = [r for r in results if r.role == "selection"]
    assert {r.axis for r in sel} == {"N"} and len(sel) == 4
    for r in sel:
        fitted = s.pts["N"][list(r.fit_idx)]
        assert np.all(fitted <= r.cut) and len(fitted) == (0 if r.status != "ok" and not r.fit_idx else len(fitted))
        if r.status == "ok":
            scored = {x["run"] for x in r.scored}
            assert scored == {s.labels[i] for i in np.flatnonzero(s.pts["N"] > r.cut)}
            assert all(x["distance"] == pytest.approx(np.log10(x["N"] / r.cut)) for x in r.scored)
    # every multiplier of the kept sizes is fitted by the "all" design
    r3 = next(r for r in sel if r.recipe.design == "all" and r.cut == 8e7)
    assert len(r3.fit_idx) == 12
    # the paper design cannot be fitted on two sizes (2 runs for 4 parameters): not eligible
    choice = select.choose(results, "ladder", recipes)
    assert choice.recipe.design == "all" and "eq4/lsq/paper" in choice.ineligible


def test_the_backtest_workflow_runs_chooses_and_predicts_on_a_16_run_ladder(tmp_path):
    csv = write_csv(tmp_path / "ladder.csv", ladder())
    target = {"N": 1e9, "D": 2e10}  # 5x beyond the largest size
    bt = run_backtest(csv, recipes=(Recipe("overtrain", "lsq", "all"), Recipe("chinchilla", "lsq", "all")),
                      targets=[target], n_bootstrap=50)
    assert bt.body["cuts_by"] == "size" and bt.body["selection_cuts"] == [3e7, 8e7]
    assert bt.body["chosen"]["recipe"] in ("eq4/lsq/all", "eq3/lsq/all")
    (p,) = bt.body["chosen"]["predictions"]
    assert p["loss"]["lo95"] < p["loss"]["median"] < p["loss"]["hi95"]
    assert "error_law" in bt.body and bt.body["error_law"]["chosen"]["recipe"] is not None
    assert all(c["axis"] == "N" for c in bt.body["error_law"]["recipes"]["eq5/avg"]["cuts"][:2])


def test_size_cuts_never_fit_a_run_above_the_final_cut():
    """A size cut keeps every multiplier of its sizes, but not those above the final compute cut:
    they are the held-out runs (the loss and the error recipes alike)."""
    from scaling_jax.backtest import error_recipes

    s = score.sweep_from_points("sim", simulated_points())
    final = float(np.sort(s.C)[-12])
    axis, c = cuts.choose_cuts(s.pts["N"], s.C, final, "size")
    results = score.run_backtest([s], (Recipe("overtrain", "lsq", "all"),), {"sim": c}, {"sim": final}, {"sim": axis})
    results += error_recipes.run_error_backtest([s], (error_recipes.PAPER_ERROR,), {"sim": c}, {"sim": final},
                                                {"sim": axis})
    assert axis == "N" and len(results) == 2 * (len(c) + 1)
    for r in results:
        assert r.fit_idx and np.all(s.C[list(r.fit_idx)] <= final * (1 + 1e-9)), (r.recipe.name, r.cut)
        assert np.all(s.pts["N"][list(r.fit_idx)] <= r.cut * (1 + 1e-9) if r.axis == "N" else True)
