"""``backtest.json`` bodies and the error-vs-distance figure."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from scaling_jax import atomic
from scaling_jax.backtest.bands import ChosenFit
from scaling_jax.backtest.recipes import Recipe
from scaling_jax.backtest.score import CutResult, Sweep, above_cut, unfitted_errors
from scaling_jax.backtest.select import Choice

UNDER_TRAINED_M = 6.0  # "M = 5 excluded": runs below this multiplier
HELD_OUT_RULE = ("the runs above the final cut, the same runs for every recipe: no fit at the final cut used them "
                 "and no selection cut scored them")
IN_SAMPLE_RULE = ("not held out: runs at or below the final cut that this recipe did not fit; selection cuts scored "
                  "them and they lie inside the compute range fitted at the final cut")

# Extrapolation distance bins in log10(C/C₀): up to 3×, 10×, 30×, 100×, 300×, 1000×, beyond.
DISTANCE_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, np.inf)


def by_distance(scored: Sequence[dict]) -> list[dict]:
    """Mean and max relative error (%) of the scored runs per log10(C/C₀) bin (empty bins left out)."""
    d = np.array([r["log10_C_over_C0"] for r in scored])
    e = np.array([r["rel_err"] for r in scored])
    out = []
    for lo, hi in zip(DISTANCE_EDGES[:-1], DISTANCE_EDGES[1:]):
        m = (d > lo) & (d <= hi)
        if m.any():
            out.append({"log10_C_over_C0": [lo, None if np.isinf(hi) else hi], "n": int(m.sum()),
                        "mean_rel_err": float(e[m].mean()), "max_rel_err": float(e[m].max())})
    return out


def cut_body(c: CutResult, sweep: Sweep) -> dict:
    e = [r["rel_err"] for r in c.scored]
    return {"cut": c.cut, "axis": c.axis, "role": c.role, "status": c.status, "reason": c.reason or None,
            "n_fit": len(c.fit_idx),
            "fit_idx": list(c.fit_idx), "fit_runs": [sweep.labels[i] for i in c.fit_idx], "params": c.params,
            "n_scored": len(e), "mean_rel_err": float(np.mean(e)) if e else None,
            "by_distance": by_distance(c.scored), "scored": list(c.scored)}  # fmt: skip


def _mean_over(errs: Mapping[int, float], idx) -> dict:
    e = [errs[i] for i in idx if i in errs]
    return {"n": len(e), "mean_rel_err": float(np.mean(e)) if e else None}


def held_out_comparison(sweep: Sweep, finals: Mapping[str, CutResult], cut: float,
                        targets: Sequence[str] = ()) -> dict:
    """Per key of ``finals`` (e.g. ``chosen``, ``paper``: a recipe's fit at the final cut ``cut``)
    its relative errors (%) on the held-out runs, those above ``cut``: the same runs for every
    key, so the figures compare. The runs at or below ``cut`` it did not fit are reported apart,
    as ``in_sample``: a backtest's selection scored them and the final fit's range holds them.
    ``targets`` (run labels) are reported one by one, under ``in_sample`` when not above ``cut``."""
    above = [int(i) for i in above_cut(sweep, cut)]
    trained = set(np.flatnonzero(sweep.M >= UNDER_TRAINED_M * (1 - 1e-6)).tolist())
    index = {label: i for i, label in enumerate(sweep.labels)}
    out = {}
    for key, res in finals.items():
        errs = unfitted_errors(sweep, res)
        inside = sorted(set(errs) - set(above))
        tg = {t: errs.get(index[t]) for t in targets if t in index}
        out[key] = {
            "recipe": res.recipe.name, "status": res.status, "n_fit": len(res.fit_idx),
            "above_cut": {**_mean_over(errs, above), "runs": [sweep.labels[i] for i in above]},
            "targets": {t: e for t, e in tg.items() if index[t] in above},
            "in_sample": {
                "rule": IN_SAMPLE_RULE,
                "unfitted_below_cut": _mean_over(errs, inside),
                "every_unfitted_run": _mean_over(errs, sorted(errs)),  # the paper's Figure-5 average
                "every_unfitted_run_M_ge_6": _mean_over(errs, sorted(set(errs) & trained)),
                "targets": {t: e for t, e in tg.items() if index[t] not in above},
            },
        }
    return out


def sweep_body(sweep: Sweep, results: Sequence[CutResult], recipes: Sequence[Recipe], choice: Choice,
               chosen: ChosenFit, final_cut: float, cuts: Sequence[float], axis: str = "C") -> dict:
    mine = [c for c in results if c.sweep == sweep.name]
    recipes_body = {
        r.name: {"recipe": r.to_json(), "selection_score": choice.scores.get(r.name),
                 "ineligible": choice.ineligible.get(r.name),
                 "cuts": [cut_body(c, sweep) for c in mine if c.recipe == r]}
        for r in recipes
    }  # fmt: skip
    skipped = [{"recipe": c.recipe.name, "cut": c.cut, "status": c.status, "reason": c.reason}
               for c in mine if c.status != "ok"]
    return {
        "n_runs": len(sweep),
        "final_cut": final_cut,
        "selection_cuts": [float(c) for c in cuts],
        "cuts_by": {"C": "compute", "N": "size"}[axis],
        "selection_rule": f"distance-weighted ({'log10 C/C0' if axis == 'C' else 'log10 N/N0'}) mean relative error "
                          "over selection cuts; "
                          "scored runs lie at or below the final cut",
        "recipes": recipes_body,
        "skipped": skipped,
        "chosen": {"recipe": chosen.recipe.name, "why": choice.why, "params": chosen.params, "cut": chosen.cut,
                   "n_fit": len(chosen.fit_idx), "fit_runs": [sweep.labels[i] for i in chosen.fit_idx],
                   "predictions": chosen.predictions, "bootstrap": chosen.bootstrap or None},
    }


def error_vs_distance(results: Sequence[CutResult], chosen: dict[str, str], path: Path,
                      highlight: Sequence[str] = ()) -> Path:
    """Relative error against log10(C/C₀), one panel per training set, a line (bin means) per
    recipe; the chosen recipe bold, ``highlight`` recipes dashed."""
    from scaling_jax.laws.figures import pyplot

    plt = pyplot()
    sweeps = list(dict.fromkeys(c.sweep for c in results))
    names = list(dict.fromkeys(c.recipe.name for c in results))
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.5 * len(sweeps), 4.5), squeeze=False)
    cmap = plt.get_cmap("tab20")
    for ax, s in zip(axes[0], sweeps):
        for k, name in enumerate(names):
            scored = [r for c in results if c.sweep == s and c.recipe.name == name for r in c.scored]
            if not scored:
                continue
            bins = by_distance(scored)
            x = [b["log10_C_over_C0"][0] + 0.25 for b in bins]
            y = [b["mean_rel_err"] for b in bins]
            bold = name == chosen.get(s)
            ax.plot(x, y, color="k" if bold else cmap(k % 20), lw=2.5 if bold else 1,
                    ls="--" if name in highlight else "-", marker="o", ms=3,
                    label=f"{name}{' (chosen)' if bold else ''}")
        ax.set_xlabel("extrapolation distance log10(C / C0)")
        ax.set_ylabel("mean relative loss error (%)")
        ax.set_yscale("log")
        ax.set_title(s, fontsize=9)
        ax.legend(fontsize=5, ncol=2)
    fig.tight_layout()
    out = atomic.savefig(path, fig, dpi=110)
    plt.close(fig)
    return out
