"""Downstream recipes backtested on a ladder's own cuts (issue 30): which route to trust.

A recipe is a route with its forms (``two-step:eq3/sigmoid``, ``paper:eq4/eq5``, ...; see
``laws.downstream``). At each selection cut (by compute, or by model size on a small ladder:
:func:`scaling_jax.backtest.cuts.choose_cuts`) it is fitted on the runs at or below the cut only
(their weights; every other run weighs nothing) and forecasts, chained from (N, D) as a user's
forecast would be, the task-mean error of every run above the cut up to the final cut. Its score is
the relative error of those forecasts weighted by the distance past the cut (``select``'s rule);
a recipe that cannot be fitted at some cut is not eligible. The lowest score is chosen. Runs above
the final cut (none by default: every run given is the ladder) are scored by every recipe's fit at
the final cut, as held out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from scaling_jax.backtest.cuts import below, choose_cuts, distance
from scaling_jax.errors import UserError
from scaling_jax.laws.downstream import Route, fit_downstream
from scaling_jax.testbed.task_points import TaskPoints

# The candidates: each route with its default forms, and the other step-1 form
CANDIDATES = ("paper:eq4/eq5", "paper:eq3/eq5", "per-task:eq4/sigmoid", "per-task:eq4/eq5", "two-step:eq3/sigmoid",
              "two-step:eq4/sigmoid")
N_BOOTSTRAP = 0  # the scores read point forecasts: no bootstrap


def recipe_route(name: str, anchor: str = "constraint") -> Route:
    """``ROUTE:STEP1/STEP2`` → :class:`Route`."""
    route, _, forms_ = name.partition(":")
    return Route.make(route.strip(), forms_.strip() or None, anchor)


def recipes_by_name(names: str | Sequence[str] | None, points: TaskPoints) -> list[str]:
    """``all`` or None: every candidate the points allow (two-step needs task losses); else the names."""
    if names is None or names == "all":
        return [r for r in CANDIDATES if points.task_loss is not None or not r.startswith("two-step")]
    out = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    for n in out:
        recipe_route(n)  # a bad name is a UserError naming it
    return out


def point_forecast(fit, N, D) -> np.ndarray:
    """The task-mean accuracy of the fit's point laws (lm/huber estimates; Bayesian medians) at (N, D)."""
    from scaling_jax.laws.downstream import step1_predict, step2_accuracy

    pp = fit.point_params()
    x = np.stack([step1_predict(s.law, {k: np.array([v]) for k, v in pp["step1"][s.name].items()}, N, D)[0]
                  for s in fit.step1], axis=-1)
    acc = [step2_accuracy(s.form, pp["step2"][s.task], x[:, s.source], s.chance) for s in fit.step2]
    return np.clip(np.mean(acc, axis=0), 0.0, 1.0)


def _score(points: TaskPoints, fit, idx: np.ndarray, axis: str, cut: float) -> list[dict]:
    if not idx.size:
        return []
    pred_err = 1.0 - point_forecast(fit, points.N[idx], points.D[idx])
    true = points.mean_error[idx]
    dist = distance(axis, points.N[idx], points.D[idx], cut)
    return [{"run": points.labels[i], "N": float(points.N[i]), "D": float(points.D[i]), "error": float(t),
             "pred": float(q), "rel_err": abs(float(q) - float(t)) / float(t) * 100.0, "distance": float(d)}
            for i, q, t, d in zip(idx, pred_err, true, dist)]


def backtest_downstream(points: TaskPoints, recipes: Sequence[str] | str | None = None, *, cuts_by: str = "auto",
                        final_cut: float | None = None, estimator: str = "lm", anchor: str = "constraint",
                        seed: int = 0) -> dict:
    """The ``downstream`` block of backtest.json: every recipe on every selection cut, the choice."""
    if estimator not in ("lm", "huber"):
        raise UserError(f"downstream backtest: estimator {estimator!r}; the recipes are scored with lm or huber fits")
    names = recipes_by_name(recipes, points)
    C = points.C
    final = float(C.max()) if final_cut is None else float(final_cut)
    axis, cuts = choose_cuts(points.N, C, final, cuts_by)
    upto = below("C", points.N, points.D, final)
    body = {"estimator": estimator, "cuts_by": {"C": "compute", "N": "size"}[axis], "selection_cuts": list(map(float,
            cuts)), "final_cut": final, "scored": "the task-mean error, forecast from (N, D) through both steps",
            "selection_rule": "distance-weighted mean relative error of the task-mean error over the selection cuts",
            "recipes": {}}  # fmt: skip
    scores = {}
    for name in names:
        route = recipe_route(name, anchor)
        rows, why = [], None
        for cut in cuts:
            m = below(axis, points.N, points.D, cut)
            try:
                fit = fit_downstream(points, route, estimator, n_bootstrap=N_BOOTSTRAP, seed=seed, step1_mask=m & upto)
            except UserError as e:
                why = f"not fitted at cut {cut:.3g}: {e}"
                break
            rows.append({"cut": float(cut), "n_fit": int((m & upto).sum()),
                         "scored": _score(points, fit, np.flatnonzero(~m & upto), axis, cut)})
        entry = {"route": route.to_json(), "cuts": rows, "ineligible": why}
        scored = [r for c in rows for r in c["scored"]]
        if why is None and scored:
            w = np.array([r["distance"] for r in scored])
            e = np.array([r["rel_err"] for r in scored])
            scores[name] = entry["selection_score"] = float(np.sum(w * e) / np.sum(w))
        elif why is None:
            entry["ineligible"] = "no selection cut with a run to score"
        if (~upto).any() and why is None:
            fit = fit_downstream(points, route, estimator, n_bootstrap=N_BOOTSTRAP, seed=seed, step1_mask=upto)
            held = _score(points, fit, np.flatnonzero(~upto), "C", final)
            entry["held_out"] = {"n": len(held), "mean_rel_err": float(np.mean([r["rel_err"] for r in held])),
                                 "runs": held}
        body["recipes"][name] = entry
    if not scores:
        raise UserError("downstream backtest: no recipe could be fitted and scored on every selection cut: "
                        + "; ".join(f"{k}: {v['ineligible']}" for k, v in body["recipes"].items()))
    ranked = sorted(scores, key=scores.get)
    best = ranked[0]
    runner = f"; next {ranked[1]} at {scores[ranked[1]]:.3f} %" if len(ranked) > 1 else ""
    body["chosen"] = {"recipe": best, "route": recipe_route(best, anchor).to_json(),
                      "why": f"lowest distance-weighted mean relative error of the task-mean error on {len(cuts)} "
                             f"selection cut(s) ({scores[best]:.3f} %){runner}"}
    return body


def summary_lines(body: dict) -> list[str]:
    lines = [f"downstream routes ({body['estimator']} fits, {body['cuts_by']} cuts "
             + ", ".join(f"{c:.3g}" for c in body["selection_cuts"]) + "):"]
    for name, r in sorted(body["recipes"].items(), key=lambda kv: kv[1].get("selection_score", np.inf)):
        s = r.get("selection_score")
        held = f", held out {r['held_out']['mean_rel_err']:.2f} % (n={r['held_out']['n']})" if "held_out" in r else ""
        lines.append(f"  {name:<24} " + (f"backtest {s:7.3f} %{held}" if s is not None else f"({r['ineligible']})"))
    lines.append(f"  chosen: {body['chosen']['recipe']} ({body['chosen']['why']})")
    return lines
