"""Choose a recipe from its backtest alone.

Only selection cuts count (they lie below the final cut and score runs up to it, never above).
A recipe's score is its mean relative error over every (selection cut, scored run) pair,
weighted by the extrapolation distance past the cut (log10 C/C₀, or log10 N/N₀ for size cuts):
the final prediction extrapolates further
than any selection cut can, so far misses weigh more. A recipe skipped or failed at any selection
cut is not eligible (it is not comparable on the same cuts); the reason is reported.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from scaling_jax.backtest.recipes import Recipe
from scaling_jax.backtest.score import CutResult
from scaling_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Choice:
    recipe: Recipe
    scores: dict[str, float]  # recipe name -> selection score (%), eligible recipes only
    ineligible: dict[str, str]  # recipe name -> why
    why: str


def selection_score(results: Sequence[CutResult]) -> float:
    """Distance-weighted mean relative error (%) over the scored runs of ``results``."""
    err = np.array([r["rel_err"] for c in results for r in c.scored])
    w = np.array([r.get("distance", r["log10_C_over_C0"]) for c in results for r in c.scored])
    return float(np.sum(w * err) / np.sum(w))


def choose(results: Sequence[CutResult], sweep: str, recipes: Sequence[Recipe]) -> Choice:
    sel = [c for c in results if c.sweep == sweep and c.role == "selection"]
    scores, ineligible = {}, {}
    for recipe in recipes:
        mine = [c for c in sel if c.recipe == recipe]
        bad = [c for c in mine if c.status != "ok"]
        if bad:
            ineligible[recipe.name] = f"{bad[0].status} at cut {bad[0].cut:.3g}: {bad[0].reason}"
        elif not any(c.scored for c in mine):
            ineligible[recipe.name] = "no selection cut with a run to score"
        else:
            scores[recipe.name] = selection_score(mine)
    if not scores:
        raise UserError(f"{sweep}: no recipe could be backtested on every selection cut: "
                        + "; ".join(f"{k}: {v}" for k, v in list(ineligible.items())[:3]))
    best = min(scores, key=scores.get)
    ranked = sorted(scores, key=scores.get)
    runner = f"; next {ranked[1]} at {scores[ranked[1]]:.3f} %" if len(ranked) > 1 else ""
    n_cuts = len({c.cut for c in sel})
    n_pairs = sum(len(c.scored) for c in sel if c.recipe.name == best)
    why = (f"lowest distance-weighted mean relative error on {n_cuts} selection cut(s) below the final cut "
           f"({scores[best]:.3f} % over {n_pairs} scored runs){runner}")
    return Choice(next(r for r in recipes if r.name == best), scores, ineligible, why)
