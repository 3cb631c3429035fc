"""Downstream-error recipes, backtested on the same rolling cuts as the loss recipes.

Laws: ``eq5`` the paper's Err(L) = ε − k·exp(−γL); ``sigmoid`` the OLMo ladder's
Err(L) = b + a·σ(k(L − L0)). Aggregation: ``avg`` fits the task-averaged error (the paper's);
``per_task`` fits each task of the average on its own and averages the tasks' predictions (it
needs per-task errors: the testbed's 17 tasks). Every recipe fits every run at or below the cut
and is scored on the runs above it from their measured loss, so the error law is judged alone,
not through a loss law's miss. All rows of one law (sweeps × cuts × tasks) are one batched
Levenberg–Marquardt call: each row's points are its own block of one long (loss, error) array.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Mapping, Sequence

import numpy as np

from scaling_jax.backtest.cuts import below
from scaling_jax.backtest.fits import LM_MAX_ITER
from scaling_jax.backtest.recipes import check_choices, pick_by_name
from scaling_jax.backtest.score import CutResult, Sweep, cut_distances, cut_plan, scored_idx
from scaling_jax.laws import forms
from scaling_jax.laws.fit import fit_own_rows, predict

FORMS = {"eq5": "error", "sigmoid": "sigmoid"}  # recipe law -> laws.forms name
AGGREGATIONS = ("avg", "per_task")


@dataclasses.dataclass(frozen=True)
class ErrorRecipe:
    law: str  # "eq5" or "sigmoid"
    aggregation: str  # "avg" or "per_task"

    def __post_init__(self):
        check_choices("error recipe", (("law", self.law, FORMS), ("aggregation", self.aggregation, AGGREGATIONS)))

    @property
    def name(self) -> str:
        return f"{self.law}/{self.aggregation}"

    @property
    def form(self) -> str:
        return FORMS[self.law]

    @property
    def n_params(self) -> int:
        return len(forms.law(self.form)[1])

    def to_json(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}


PAPER_ERROR = ErrorRecipe("eq5", "avg")


def error_candidates() -> tuple[ErrorRecipe, ...]:
    return tuple(ErrorRecipe(law, agg) for law, agg in itertools.product(FORMS, AGGREGATIONS))


def _targets(sweep: Sweep, recipe: ErrorRecipe) -> list[tuple[str, np.ndarray]]:
    """(task, errors) blocks a recipe fits on ``sweep``: the average, or each task."""
    if recipe.aggregation == "avg":
        return [("average", sweep.pts["error"])]
    return [(t, sweep.pts["task_errors"][:, j]) for j, t in enumerate(sweep.tasks)]


def run_error_backtest(sweeps: Sequence[Sweep], recipes: Sequence[ErrorRecipe], cuts: Mapping[str, np.ndarray],
                       final_cuts: Mapping[str, float], axes: Mapping[str, str] | None = None) -> list[CutResult]:
    """Every (sweep with errors, recipe, cut) as a CutResult (``params``: the law's, or per task
    ``{task: params}``); a per-task recipe on a sweep without per-task errors is skipped. Cuts run
    along ``axes[sweep]`` (compute by default) as the loss recipes' do."""
    sweeps = [s for s in sweeps if "error" in s.pts]
    plan, skipped = [], []
    for s in sweeps:
        for recipe in recipes:
            for cut, role, axis in cut_plan(s, cuts, final_cuts, axes or {}):
                if recipe.aggregation == "per_task" and not s.tasks:
                    skipped.append((s, recipe, cut, role, axis))
                else:
                    plan.append((s, recipe, cut, role, axis))
    fitted = _fit(plan, final_cuts)
    out = [CutResult(s.name, r, cut, role, "skipped", "no per-task errors in these runs", (), None, (), axis=axis)
           for s, r, cut, role, axis in skipped]
    for (s, recipe, cut, role, axis), (status, reason, params) in zip(plan, fitted):
        fit_idx = tuple(int(i) for i in np.flatnonzero(fit_rows_of(s, cut, axis, final_cuts[s.name])))
        upto = final_cuts[s.name] if role == "selection" else np.inf
        scored = _score(s, recipe, params, cut, upto, axis, fit_idx) if params is not None else ()
        out.append(CutResult(s.name, recipe, cut, role, status, reason, fit_idx, params, scored, axis=axis))
    return out


def fit_rows_of(s: Sweep, cut: float, axis: str, final_cut: float) -> np.ndarray:
    """Runs an error recipe fits at ``cut``: at or below it along ``axis`` and never above the final
    compute cut (a size cut would otherwise reach the held-out runs of its kept sizes)."""
    return below(axis, s.pts["N"], s.pts["D"], cut) & below("C", s.pts["N"], s.pts["D"], final_cut)


def _fit(plan: list, final_cuts: Mapping[str, float]) -> list[tuple[str, str, dict | None]]:
    """(status, reason, params) per plan row; one LM call per law form over every (row, task),
    each with its own points (padded with weight 0 to the largest sweep)."""
    results: list = [None] * len(plan)
    n_max = max(len(s) for s, *_ in plan) if plan else 0
    for form in dict.fromkeys(r.form for _, r, *_ in plan):
        owner, L, y, W = [], [], [], []
        for i, (s, r, cut, _, axis) in enumerate(plan):
            if r.form != form:
                continue
            pad = n_max - len(s)
            for task, err in _targets(s, r):
                owner.append((i, task))
                L.append(np.pad(s.pts["loss"], (0, pad), constant_values=1.0))
                y.append(np.pad(err, (0, pad), constant_values=0.5))
                W.append(np.pad(fit_rows_of(s, cut, axis, final_cuts[s.name]).astype(np.float64), (0, pad)))
        best, _ = fit_own_rows(form, {"L": np.array(L)}, np.array(y), np.array(W), max_iter=LM_MAX_ITER)
        names = forms.law(form)[1]
        fitted: dict[int, dict] = {}  # row -> task -> params
        bad: dict[int, list] = {}  # row -> [(task, status, why)]
        # A finite optimum counts (as for the Huber rows): a task near chance is flat in loss, and
        # LM's tolerance is then never met while the fit has long settled on a constant.
        for (i, task), p, rss, w in zip(owner, best.params, best.rss, W):
            n_fit = int(w.sum())
            if n_fit < len(names):
                bad.setdefault(i, []).append((task, "skipped", f"{n_fit} fit run(s) for {len(names)} parameters"))
            elif np.isfinite(rss) and np.all(np.isfinite(p)):
                fitted.setdefault(i, {})[task] = {k: float(v) for k, v in zip(names, p)}
            else:
                bad.setdefault(i, []).append((task, "failed", "no start reached a finite optimum"))
        for i in {i for i, _ in owner}:
            if i in bad:
                (t, status, why), n_more = bad[i][0], len(bad[i]) - 1
                results[i] = (status, f"{t}: {why}" + (f" (and {n_more} more task(s))" if n_more else ""), None)
            else:
                got = fitted[i]
                results[i] = ("ok", "", got["average"] if plan[i][1].aggregation == "avg" else got)
    return results


def predict_error(sweep: Sweep, recipe: ErrorRecipe, params: dict, L: np.ndarray) -> np.ndarray:
    """The task-averaged error a recipe predicts at losses ``L``."""
    if recipe.aggregation == "avg":
        return np.atleast_1d(predict(recipe.form, params, L=L))
    return np.mean([np.atleast_1d(predict(recipe.form, params[t], L=L)) for t in sweep.tasks], axis=0)


def _score(sweep: Sweep, recipe: ErrorRecipe, params: dict, cut: float, upto: float, axis: str = "C",
           fit_idx=()) -> tuple:
    C, M = sweep.C, sweep.M
    idx = scored_idx(sweep, cut, upto, axis)
    if not idx.size:
        return ()
    pred = predict_error(sweep, recipe, params, sweep.pts["loss"][idx])
    true = sweep.pts["error"][idx]
    dist = cut_distances(sweep, idx, cut, axis, fit_idx)
    return tuple({"run": sweep.labels[i], "C": float(C[i]), "M": float(M[i]), "loss": float(sweep.pts["loss"][i]),
                  "error": float(t), "pred": float(q), "rel_err": abs(float(q) - float(t)) / float(t) * 100.0,
                  "abs_err": abs(float(q) - float(t)) * 100.0, "log10_C_over_C0": float(dist["log10_C_over_C0"][j]),
                  "distance": float(dist["distance"][j])}
                 for j, (i, q, t) in enumerate(zip(idx, pred, true)))  # fmt: skip


def error_recipes_by_name(names: str) -> tuple[ErrorRecipe, ...]:
    """``--error-recipes``: comma-separated ``law/aggregation`` names (``all`` for every candidate)."""
    return pick_by_name(names, "--error-recipes", {"all": error_candidates()},
                        f"one of {[r.name for r in error_candidates()]}")
