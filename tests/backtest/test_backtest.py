"""Backtest machinery on a simulated law with known parameters: the right form wins, errors
shrink with more fit points, no recipe sees a run above its cut, and bad input is refused or
reported."""

import numpy as np
import pytest

from scaling_jax.backtest import bands, cuts, recipes, score, select
from scaling_jax.backtest.recipes import Recipe
from scaling_jax.errors import UserError
from tests.backtest.sim import simulated_points

EQ3 = Recipe("chinchilla", "lsq", "all")
EQ4 = Recipe("overtrain", "lsq", "all")
EQ3_PAPER = Recipe("chinchilla", "lsq", "paper")
RECIPES = (EQ3, EQ4, EQ3_PAPER)


@pytest.fixture(scope="module")
def sim():
    s = score.sweep_from_points("sim", simulated_points())
    final = float(np.sort(s.C)[-8])  # hold out the 7 largest-compute runs
    c = cuts.selection_cuts(s.C, final, n_cuts=4, min_fit_runs=10)  # a low first cut: more points must help
    return s, final, c, score.run_backtest([s], RECIPES, {"sim": c}, {"sim": final})


def _final(results, recipe):
    return next(r for r in results if r.recipe == recipe and r.role == "final")


def test_the_right_form_wins_and_more_fit_points_help(sim):
    s, final, c, results = sim
    choice = select.choose(results, "sim", RECIPES)
    assert choice.recipe == EQ3, choice.scores
    assert choice.scores["eq3/lsq/all"] < choice.scores["eq4/lsq/all"]
    # Eq. 3 on every run below the final cut recovers the exponents it was simulated with ...
    p = _final(results, EQ3).params
    assert p["alpha"] == pytest.approx(0.34, abs=0.03) and p["beta"] == pytest.approx(0.28, abs=0.03)
    # ... and extrapolates better than the same law on the paper's five-to-six-point design.
    err = lambda r: np.mean([x["rel_err"] for x in _final(results, r).scored])  # noqa: E731
    assert err(EQ3) < err(EQ3_PAPER)
    assert len(_final(results, EQ3).fit_idx) > len(_final(results, EQ3_PAPER).fit_idx)
    # More fit points (a later cut) → smaller error at the same target runs.
    sel = sorted((r for r in results if r.recipe == EQ3 and r.role == "selection"), key=lambda r: r.cut)
    far = lambda r: np.mean([x["rel_err"] for x in r.scored if x["C"] > sel[-1].cut])  # noqa: E731
    assert far(sel[-1]) < far(sel[0])


def test_no_recipe_sees_a_run_above_its_cut(sim):
    s, final, c, results = sim
    for r in results:
        assert r.fit_idx, r
        assert np.all(s.C[list(r.fit_idx)] <= r.cut * (1 + 1e-9)), (r.recipe.name, r.cut)
        assert all(x["C"] > r.cut for x in r.scored)
        if r.role == "selection":  # selection never scores a run above the final cut
            assert all(x["C"] <= final * (1 + 1e-9) for x in r.scored)
    # Garbage above a cut changes nothing fitted at that cut (same shapes: no new compilation).
    cut = float(c[1])
    pts = dict(s.pts)
    pts["loss"] = np.where(s.C > cut, 99.0, s.pts["loss"])
    again = score.run_backtest([score.Sweep("sim", pts, s.labels)], RECIPES, {"sim": c}, {"sim": final})
    compared = 0
    for before, after in zip(results, again):
        assert (before.recipe, before.cut) == (after.recipe, after.cut)
        if before.cut <= cut and before.params is not None:
            assert after.fit_idx == before.fit_idx
            for k, v in before.params.items():
                assert after.params[k] == pytest.approx(v, rel=1e-9)
            compared += 1
    assert compared >= 4


def test_a_cut_with_too_few_runs_is_skipped_and_reported(sim):
    from scaling_jax.backtest.fits import fit_rows

    s = sim[0]
    low = float(np.sort(s.C)[2])  # three runs at or below: fewer than Eq. 3's five parameters
    W = EQ3.fit_mask(s.pts["N"], s.pts["D"], low)[None].astype(float)
    fits = fit_rows(s.pts, [EQ3], W)
    assert fits.status == ["skipped"] and "3 fit run(s) for 5 parameters" in fits.reasons[0]
    skipped = score.CutResult("sim", EQ3, low, "selection", "skipped", fits.reasons[0], (0, 1, 2), None, ())
    with pytest.raises(UserError, match="no recipe could be backtested.*3 fit run"):
        select.choose([skipped], "sim", (EQ3,))


def test_bad_points_are_refused():
    pts = simulated_points()
    bad = dict(pts, loss=np.where(np.arange(pts["loss"].size) == 3, np.nan, pts["loss"]))
    with pytest.raises(UserError, match="run 3 has loss = nan"):
        score.sweep_from_points("sim", bad)
    one_M = {k: v[:6] for k, v in pts.items()}
    one_M["D"] = one_M["N"] * 20.0
    with pytest.raises(UserError, match="same token multiplier"):
        score.sweep_from_points("sim", one_M)
    with pytest.raises(UserError, match="too few to backtest"):
        cuts.selection_cuts(np.array([1e17, 2e17, 3e17]), 3e17)
    with pytest.raises(UserError, match="unknown recipe"):
        recipes.by_name("eq4/lsq/everything")


def test_paper_design_on_the_testbed_is_the_table_1_five(testbed):
    from scaling_jax.paper import recipe as paper
    from scaling_jax.paper.backtest import final_cut_of, load_sweeps

    (s,), tb = load_sweeps(testbed.root, dataset="rpj")
    mask = recipes.PAPER.fit_mask(s.pts["N"], s.pts["D"], final_cut_of(s, tb, "auto"))
    assert {s.labels[i] for i in np.flatnonzero(mask)} == {r.name for r in paper.loss_fit_runs(testbed, "rpj")}


@pytest.mark.slow
def test_bayesian_recipe_predicts_the_posterior_median_without_leakage(monkeypatch):
    """eq4/bayes/all: NUTS on the runs at or below the cut; its prediction is the median over the
    posterior's draws of the law, near the least-squares fit of the same law on the same runs.
    (One short chain: what is checked is the wiring, not the sampler.)"""
    from scaling_jax.backtest import fits

    monkeypatch.setattr(fits, "BAYES_NUTS", {"num_warmup": 150, "num_samples": 150, "num_chains": 1})
    s = score.sweep_from_points("sim", simulated_points())
    final = float(np.sort(s.C)[-8])
    bayes = Recipe("overtrain", "bayes", "all")
    (res_b, res_l) = (next(r for r in score.run_backtest([s], [rec], {}, {"sim": final})) for rec in (bayes, EQ4))
    assert res_b.status == "ok" and np.all(s.C[list(res_b.fit_idx)] <= final * (1 + 1e-9))
    assert res_b.fit_idx == res_l.fit_idx and len(res_b.scored) == 7
    law = res_b.fit.loss_law
    i = int(np.argmax(s.C))
    C, M = s.C[i], s.M[i]
    want = np.median(law.E + (law.a * M**law.eta + law.b * M**-law.eta) * C**-law.eta)
    got = next(r["pred"] for r in res_b.scored if r["C"] == C)
    assert got == pytest.approx(want, rel=1e-9)
    lsq = next(r["pred"] for r in res_l.scored if r["C"] == C)
    assert got == pytest.approx(lsq, rel=0.02)
    assert set(res_b.params) == {"E", "a", "b", "eta"}
    # Chosen with --predict: bands from the posterior predictive of the same fit (no refit).
    chosen = bands.refit_and_predict(s, bayes, final, [{"N": s.pts["N"][i], "D": s.pts["D"][i]}],
                                     params=res_b.params, bayes_fit=res_b.fit)
    band = chosen.predictions[0]["loss"]
    assert band["lo95"] < band["median"] < band["hi95"] and band["median"] == pytest.approx(got, rel=0.01)
    assert chosen.bootstrap["posterior_draws"] == len(law.E)
    assert len(recipes.by_name("all")) == 18 and len(recipes.by_name("all+bayes")) == 24
    assert recipes.by_name("eq4/bayes/paper")[0].estimator == "bayes"
