"""Downstream-error recipes on simulated runs: the law the errors were drawn from wins its
backtest, per-task fits average back to the task mean, no fit sees a run above its cut, and a
sweep without per-task errors skips those recipes with the reason."""

import numpy as np
import pytest

from scaling_jax.backtest import cuts, error_recipes, score, select
from scaling_jax.backtest.error_recipes import ErrorRecipe
from scaling_jax.errors import UserError
from scaling_jax.laws.fit import fit_batch, fit_own_rows, predict
from tests.backtest.sim import simulated_points

# Per-task laws: tasks near chance for small models, leaving it at different losses.
TASKS = {"t0": {"a": 0.5, "b": 0.25, "k": 4.0, "L0": 3.0}, "t1": {"a": 0.4, "b": 0.2, "k": 2.5, "L0": 2.7},
         "t2": {"a": 0.6, "b": 0.15, "k": 3.0, "L0": 3.3}}


def _sweep(noise=0.002, seed=1):
    pts = simulated_points()
    rng = np.random.default_rng(seed)
    task_err = np.stack([predict("sigmoid", p, L=pts["loss"]) + noise * rng.standard_normal(pts["loss"].size)
                         for p in TASKS.values()], axis=1)  # fmt: skip
    pts = {**pts, "task_errors": task_err, "error": task_err.mean(axis=1)}
    return score.sweep_from_points("sim", pts, tasks=tuple(TASKS))


@pytest.fixture(scope="module")
def backtest():
    s = _sweep()
    final = float(np.sort(s.C)[-8])
    c = cuts.selection_cuts(s.C, final, n_cuts=4)
    recipes = error_recipes.error_candidates()
    return s, final, recipes, error_recipes.run_error_backtest([s], recipes, {"sim": c}, {"sim": final})


def test_the_generating_law_wins_and_per_task_fits_recover_the_tasks(backtest):
    s, final, recipes, results = backtest
    choice = select.choose(results, "sim", recipes)
    assert choice.recipe.law == "sigmoid" and choice.scores["sigmoid/avg"] < choice.scores["eq5/avg"], choice.scores
    # With the runs up to the final cut every task has left chance: per-task fits pin each task.
    per_task = ErrorRecipe("sigmoid", "per_task")
    fit = next(c for c in results if c.recipe == per_task and c.role == "final")
    for task, p in TASKS.items():
        assert fit.params[task]["L0"] == pytest.approx(p["L0"], abs=0.1)
    assert np.mean([r["abs_err"] for r in fit.scored]) < 0.5  # points
    # The averaged prediction is the mean of the tasks' predictions.
    L = s.pts["loss"][:4]
    want = np.mean([predict("sigmoid", fit.params[t], L=L) for t in TASKS], axis=0)
    np.testing.assert_allclose(error_recipes.predict_error(s, per_task, fit.params, L), want)


def test_no_error_fit_sees_a_run_above_its_cut(backtest):
    s, _, _, results = backtest
    assert results
    for c in results:
        assert np.all(s.C[list(c.fit_idx)] <= c.cut * (1 + 1e-9))
        assert all(r["C"] > c.cut for r in c.scored)
        if c.role == "selection":
            assert all(r["C"] <= max(s.C[np.argsort(s.C)[-8]], c.cut) * (1 + 1e-9) for r in c.scored)


def test_without_per_task_errors_those_recipes_are_skipped_with_the_reason():
    pts = simulated_points()
    s = score.sweep_from_points("csv", pts)
    final = float(np.sort(s.C)[-8])
    res = error_recipes.run_error_backtest([s], error_recipes.error_candidates(),
                                           {"csv": cuts.selection_cuts(s.C, final, 3)}, {"csv": final})
    per_task = [c for c in res if c.recipe.aggregation == "per_task"]
    assert per_task and all(c.status == "skipped" and "per-task" in c.reason for c in per_task)
    choice = select.choose(res, "csv", error_recipes.error_candidates())
    assert choice.recipe.aggregation == "avg" and "eq5/per_task" in choice.ineligible


def test_recipe_names_and_bad_names():
    assert [r.name for r in error_recipes.error_recipes_by_name("sigmoid/avg,eq5/avg")] == ["sigmoid/avg", "eq5/avg"]
    assert len(error_recipes.error_recipes_by_name("all")) == 4
    with pytest.raises(UserError, match="unknown recipe 'eq6/avg'"):
        error_recipes.error_recipes_by_name("eq6/avg")
    with pytest.raises(UserError, match="aggregation"):
        ErrorRecipe("eq5", "median")


def test_fit_own_rows_matches_fit_batch_on_shared_points():
    pts = simulated_points()
    L, y = pts["loss"], pts["error"]
    W = np.stack([(np.arange(L.size) % k != 0).astype(float) for k in (2, 3, 5)])
    a, _ = fit_batch("error", {"L": L}, y, W)
    for rows_per_step in (None, 2):  # every row in one loop; chunks of two, the last padded
        b, _ = fit_own_rows("error", {"L": np.tile(L, (3, 1))}, np.tile(y, (3, 1)), W, rows_per_step=rows_per_step)
        np.testing.assert_allclose(b.params, a.params, rtol=1e-6)
        np.testing.assert_allclose(b.rss, a.rss, rtol=1e-6)
