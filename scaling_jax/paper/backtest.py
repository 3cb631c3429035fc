"""The ``backtest`` workflow: read runs (the paper's testbed, a CSV or a sweep folder), backtest
every recipe on rolling cuts (compute cuts, or size cuts on a ladder too small for them: see
``backtest.cuts``), choose one per training set from its backtest alone, refit
it up to the final cut and predict; on the released testbed, score the chosen recipe and the
paper's own (Eq. 4 on the Table-1 five) on every held-out run.

The final cut is the compute of the largest run the final fit may use: ``max`` (every run
given), ``paper`` (the Table-1 fit runs' largest, 2.0e19 FLOPs on the testbed: the same
budget as the paper's recipe) or a number. ``auto`` is ``paper`` where a set has the
recipe's runs, else ``max``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from scaling_jax import atomic
from scaling_jax.backtest import cuts as cuts_mod
from scaling_jax.backtest import error_recipes, report, score, select
from scaling_jax.backtest import recipes as recipes_mod
from scaling_jax.backtest.bands import refit_and_predict
from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.paper import recipe as paper_recipe
from scaling_jax.testbed import TASKS_17, Testbed, load_testbed
from scaling_jax.testbed.points_io import read_points_csv, testbed_points
from scaling_jax.testbed.schema import check_full_suites


@dataclasses.dataclass
class Backtest:
    body: dict
    results: list
    sweeps: list


def load_sweeps(runs: str | Path, dataset: str | None = None, val_set: str | None = None,
                allow_partial_suites: bool = False) -> tuple[list[score.Sweep], Testbed | None]:
    """One Sweep per training set: a CSV is one; a testbed or sweep folder one per set (or ``dataset``).
    A set whose runs' err_17 averages only part of its tasks is refused, naming the runs and tasks,
    unless ``allow_partial_suites`` (then the sweep lists them)."""
    path = Path(runs)
    if path.is_file():
        return [score.sweep_from_points(path.name, read_points_csv(path))], None
    if not path.exists():
        raise InputNotFound(f"--runs {path}: no such file or folder")
    tb = load_testbed(path)
    sets = [dataset] if dataset else list(tb.datasets)
    out = []
    for ds in sets:
        pts = testbed_points(tb, val_set=val_set, dataset=ds)
        runs = tb.select(dataset=ds).runs
        partial = check_full_suites(runs, "err_17", allow_partial_suites, f"--runs {path} ({ds})") \
            if "error" in pts else {}
        tasks = ()
        if "error" in pts and all(all(t in r.accuracies for t in TASKS_17) for r in runs):
            # err_17 is the mean of these: the per-task error recipes fit each on its own.
            tasks = TASKS_17
            pts["task_errors"] = np.array([[1.0 - r.accuracies[t] for t in tasks] for r in runs])
        out.append(score.sweep_from_points(ds, pts, [r.name for r in runs], tasks, partial))
    return out, tb


def final_cut_of(sweep: score.Sweep, tb: Testbed | None, spec: str) -> float:
    has_paper = tb is not None and not paper_recipe.missing_runs(tb, sweep.name)
    if spec == "auto":
        spec = "paper" if has_paper else "max"
    if spec == "max":
        return float(sweep.C.max())
    if spec == "paper":
        if not has_paper:
            raise UserError(f"--final-cut paper: {sweep.name} lacks the paper recipe's runs "
                            f"{paper_recipe.missing_runs(tb, sweep.name) if tb is not None else 'in a CSV'}")
        return float(max(r.C for r in paper_recipe.loss_fit_runs(tb, sweep.name)))
    return cuts_mod.parse_cut(spec)


def _paper_comparison(sweep: score.Sweep, tb: Testbed, results: list, chosen: recipes_mod.Recipe,
                      cut: float) -> dict:
    """The chosen recipe and the paper's, each fitted at the final cut ``cut``, on the same held-out
    runs (those above it) and, labelled in-sample, on the unfitted runs below it."""
    final = {c.recipe: c for c in results if c.sweep == sweep.name and c.role == "final"}
    picks = {key: final[r] for key, r in (("chosen", chosen), ("paper", recipes_mod.PAPER)) if r in final}
    return report.held_out_comparison(sweep, picks, cut, [t.name for t in paper_recipe.targets(tb, sweep.name)])


def run_backtest(runs: str | Path, *, dataset: str | None = None, val_set: str | None = None,
                 recipes: Sequence[recipes_mod.Recipe] | None = None, n_cuts: int = 5, final_cut: str = "auto",
                 targets: Sequence[dict] = (), n_bootstrap: int = 200, seed: int = 0,
                 error_law_recipes: Sequence[error_recipes.ErrorRecipe] | None = None,
                 allow_partial_suites: bool = False, cuts_by: str = "auto", calibrate: str | None = None) -> Backtest:
    recipes = tuple(recipes or recipes_mod.candidates())
    err_recipes = tuple(error_law_recipes or error_recipes.error_candidates())
    sweeps, tb = load_sweeps(runs, dataset, val_set, allow_partial_suites)
    finals = {s.name: final_cut_of(s, tb, final_cut) for s in sweeps}
    cuts, axes = {}, {}
    for s in sweeps:
        if finals[s.name] < s.C.min():
            raise UserError(f"--final-cut {finals[s.name]:.3g}: below every run of {s.name} "
                            f"(smallest C = {s.C.min():.3g})")
        try:
            axes[s.name], cuts[s.name] = cuts_mod.choose_cuts(s.pts["N"], s.C, finals[s.name], cuts_by, n_cuts)
        except UserError as e:
            raise UserError(f"{s.name}: {e}") from None
    results = score.run_backtest(sweeps, recipes, cuts, finals, axes)
    body = {"recipes_tried": [r.name for r in recipes], "datasets": {}}
    for s in sweeps:
        choice = select.choose(results, s.name, recipes)
        final = next(c for c in results if c.sweep == s.name and c.role == "final" and c.recipe == choice.recipe)
        disc, cal = _self_calibration(s, choice.recipe, finals[s.name], axes[s.name], calibrate, seed) \
            if targets else (None, None)
        chosen = refit_and_predict(s, choice.recipe, finals[s.name], targets, n_bootstrap=n_bootstrap, seed=seed,
                                   params=final.params, reason=final.reason or "not fitted", bayes_fit=final.fit,
                                   discrepancy=disc)
        b = report.sweep_body(s, results, recipes, choice, chosen, finals[s.name], cuts[s.name], axes[s.name])
        b["chosen"]["calibration"] = cal or {"method": "none" if choice.recipe.estimator != "bayes" else "prior"}
        if tb is not None and not paper_recipe.missing_runs(tb, s.name):
            b["held_out_rule"] = report.HELD_OUT_RULE
            b["held_out"] = _paper_comparison(s, tb, results, choice.recipe, finals[s.name])
        body["datasets"][s.name] = b
    err_results = error_recipes.run_error_backtest(sweeps, err_recipes, cuts, finals, axes)
    for s in sweeps:
        if any(c.sweep == s.name for c in err_results):
            body["datasets"][s.name]["error_law"] = _error_body(s, err_results, err_recipes)
    if len(sweeps) == 1:
        # One training set: its recipes and choice at the top level too (``chosen.recipe`` etc.).
        body.update({k: v for k, v in body["datasets"][sweeps[0].name].items()})
    return Backtest(body, results, sweeps)


def _self_calibration(sweep: score.Sweep, recipe: recipes_mod.Recipe, final_cut: float, axis: str,
                      calibrate: str | None, seed: int) -> tuple:
    """``--calibrate self``: the chosen recipe's law calibrated on the sweep's own runs up to the final
    cut, cut along the backtest's axis; (None, None) without it."""
    if calibrate is None:
        return None, None
    from scaling_jax.backtest.self_calibration import self_calibrate
    from scaling_jax.laws.bayes.calibration_file import load_calibration, parse_calibrate

    _, cal_file = parse_calibrate(calibrate, ("self",))
    keep = sweep.C <= final_cut * (1 + 1e-9)
    pts = {k: np.asarray(sweep.pts[k])[keep] for k in ("N", "D", "loss")}
    prior = load_calibration(cal_file, "loss") if cal_file else None
    sc = self_calibrate(recipe.law, pts, cuts_by={"C": "compute", "N": "size"}[axis], prior_loss=prior, seed=seed)
    return sc.loss, {"method": "self", "prior": cal_file or "the weakly informative prior", **sc.info}


def _final_summary(c) -> dict:
    e = [r["rel_err"] for r in c.scored]
    a = [r["abs_err"] for r in c.scored]
    mean = lambda v: float(np.mean(v)) if v else None  # noqa: E731
    return {"recipe": c.recipe.name, "cut": c.cut, "n_scored": len(e), "mean_rel_err": mean(e),
            "mean_abs_err_points": mean(a), "max_abs_err_points": float(np.max(a)) if a else None}


def _error_body(sweep: score.Sweep, results: list, recipes: Sequence[error_recipes.ErrorRecipe]) -> dict:
    """The ``error_law`` block: every error recipe by cut, the one chosen on selection cuts alone,
    and the chosen and the paper's (Eq. 5 on the average) scored above the final cut."""
    mine = [c for c in results if c.sweep == sweep.name]
    body = {"scored_from": "the measured loss of the runs above each cut (the error law alone)",
            "tasks": list(sweep.tasks) or None,
            "partial_suites": {k: list(v) for k, v in sweep.partial_suites.items()} or None,
            "recipes": {r.name: {"recipe": r.to_json(), "cuts": [report.cut_body(c, sweep) for c in mine
                                                                if c.recipe == r]} for r in recipes}}  # fmt: skip
    try:
        choice = select.choose(results, sweep.name, recipes)
    except UserError as e:
        body["chosen"] = {"recipe": None, "why": str(e)}
        return body
    for name, v in body["recipes"].items():
        v["selection_score"], v["ineligible"] = choice.scores.get(name), choice.ineligible.get(name)
    final = {c.recipe: c for c in mine if c.role == "final"}
    body["chosen"] = {"recipe": choice.recipe.name, "why": choice.why, "params": final[choice.recipe].params,
                      "final": _final_summary(final[choice.recipe])}
    if error_recipes.PAPER_ERROR in final:
        body["paper"] = {"final": _final_summary(final[error_recipes.PAPER_ERROR])}
    return body


def figure5_grids(bt: Backtest, out: Path) -> list[Path]:
    """The Figure-5 grid (relative error of every run not fitted, at the final cut) per recipe."""
    from scaling_jax.paper import plots

    written = []
    for name in bt.body["recipes_tried"]:
        grid = []
        for s in bt.sweeps:
            final = next(c for c in bt.results if c.sweep == s.name and c.role == "final" and c.recipe.name == name)
            for i, e in score.unfitted_errors(s, final).items():
                grid.append({"dataset": s.name, "N": float(s.pts["N"][i]), "M": round(float(s.M[i]), 6),
                             "loss_rel_err": e, "error_rel_err": None})
        if grid:
            written.append(plots.figure5(grid, Path(out) / "figure5" / f"{name.replace('/', '_')}.png"))
    return written


def write_backtest(bt: Backtest, out: Path, plots: bool = True) -> list[Path]:
    out = Path(out)
    written = [atomic.write_json(out / "backtest.json", bt.body)]
    if plots:
        chosen = {s: d["chosen"]["recipe"] for s, d in bt.body["datasets"].items()}
        written.append(report.error_vs_distance(bt.results, chosen, out / "error_vs_distance.png",
                                                highlight=[recipes_mod.PAPER.name]))
        written += figure5_grids(bt, out)
    return written


def _pct(m: dict) -> str:
    return f"{m['mean_rel_err']:.2f} % (n={m['n']})" if m["mean_rel_err"] is not None else f"- (n={m['n']})"


def summary_lines(bt: Backtest) -> list[str]:
    lines = []
    for ds, d in bt.body["datasets"].items():
        ch = d["chosen"]
        unit = "FLOPs" if d["cuts_by"] == "compute" else "parameters (size cuts)"
        lines.append(f"{ds}: {d['n_runs']} runs, final cut {d['final_cut']:.3g} FLOPs, selection cuts "
                     + ", ".join(f"{c:.3g}" for c in d["selection_cuts"]) + f" {unit}")
        ranked = sorted(((v["selection_score"], k) for k, v in d["recipes"].items()
                         if v["selection_score"] is not None))
        for sc, k in ranked[:5]:
            lines.append(f"  {k:<20} backtest {sc:7.3f} %")
        n_inel = sum(v["ineligible"] is not None for v in d["recipes"].values())
        if n_inel:
            lines.append(f"  ({n_inel} recipe(s) not eligible: skipped or failed at a selection cut; "
                         "see backtest.json)")
        lines.append(f"  chosen: {ch['recipe']} ({ch['why']})")
        for key, h in d.get("held_out", {}).items():
            tg = ", ".join(f"{t} {v:.2f} %" for t, v in h["targets"].items() if v is not None)
            ins = h["in_sample"]
            lines.append(f"  held out (above the final cut), {key} {h['recipe']}: {_pct(h['above_cut'])}; "
                         f"targets: {tg or 'none'}")
            lines.append(f"    in-sample (not held out): unfitted runs below the cut "
                         f"{_pct(ins['unfitted_below_cut'])}, "
                         f"every unfitted run {_pct(ins['every_unfitted_run'])}, "
                         f"M>=6 {_pct(ins['every_unfitted_run_M_ge_6'])}")
        el = d.get("error_law", {})
        if el.get("partial_suites"):
            lines.append("  error law fitted with partial task suites (--allow-partial-suites): "
                         + "; ".join(f"{r} lacks {', '.join(t)}" for r, t in el["partial_suites"].items()))
        if el.get("chosen", {}).get("recipe"):
            for key in ("chosen", "paper"):
                f = el[key]["final"] if key in el else None
                if f and f["mean_rel_err"] is not None:
                    lines.append(f"  error law, {key} {f['recipe']}: {f['mean_abs_err_points']:.2f} points mean "
                                 f"({f['mean_rel_err']:.2f} % relative) on {f['n_scored']} runs above the final cut")
        for p in ch["predictions"]:
            lo, hi = p["loss"]["lo95"], p["loss"]["hi95"]
            lines.append(f"  predict N={p['N']:.4g} D={p['D']:.4g}: loss {p['loss']['median']:.4f} "
                         f"95% [{lo:.4f}, {hi:.4f}]")
    return lines
