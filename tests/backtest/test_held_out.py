"""The testbed's ``held_out`` block: the chosen recipe and the paper's are scored on the same runs,
those above the final cut only; every other figure is labelled in-sample."""

import numpy as np
import pytest

from scaling_jax.backtest import error_recipes, recipes
from scaling_jax.paper.backtest import run_backtest, summary_lines

M10 = recipes.Recipe("overtrain", "lsq_log", "m10")


@pytest.fixture(scope="module")
def c4(testbed):
    return run_backtest(testbed.root, dataset="c4_original", recipes=(M10, recipes.PAPER), n_bootstrap=0,
                        error_law_recipes=(error_recipes.PAPER_ERROR,))


def test_chosen_and_paper_are_held_out_on_the_same_runs_above_the_final_cut(c4):
    (s,) = c4.sweeps
    d = c4.body["datasets"]["c4_original"]
    assert d["chosen"]["recipe"] == M10.name  # a recipe other than the paper's, fitted on other runs
    above = [s.labels[i] for i in np.flatnonzero(s.C > d["final_cut"] * (1 + 1e-9))]
    assert len(above) == 11
    for key in ("chosen", "paper"):
        h = d["held_out"][key]
        # Every figure outside ``in_sample`` covers the runs above the final cut and no other.
        for name, fig in h.items():
            if isinstance(fig, dict) and "n" in fig:
                assert name == "above_cut" and fig["n"] == len(above), (key, name, fig)
        assert h["above_cut"]["runs"] == above
        # The figure is the mean over the final fit's scored runs (all above its cut), computed apart.
        final = next(c for c in c4.results if c.role == "final" and c.recipe.name == h["recipe"])
        assert {r["run"] for r in final.scored} == set(above)
        assert h["above_cut"]["mean_rel_err"] == pytest.approx(np.mean([r["rel_err"] for r in final.scored]))
        ins = h["in_sample"]
        assert ins["unfitted_below_cut"]["n"] + len(above) == ins["every_unfitted_run"]["n"] == len(s) - h["n_fit"]
        assert set(h["targets"]) <= set(above) and not ins["targets"]
    assert d["held_out"]["chosen"]["n_fit"] != d["held_out"]["paper"]["n_fit"]
    text = "\n".join(summary_lines(c4))
    assert "held out (above the final cut), chosen eq4/lsq_log/m10: 1.66 % (n=11)" in text
    assert "held out (above the final cut), paper eq4/lsq/paper: 1.73 % (n=11)" in text
    assert text.count("in-sample (not held out)") == 2
