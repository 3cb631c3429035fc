"""The paper's default recipe on a testbed: fit Eq. 4 and Eq. 5 per training set, predict the
held-out targets, and score every model of the testbed (the paper's Figure 5 grid)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from scaling_jax import atomic
from scaling_jax.laws.fit import FitResult, fit_law
from scaling_jax.paper import recipe
from scaling_jax.testbed import RunRecord, Testbed

VAL = recipe.LOSS_VAL_SET


def _loss_inputs(runs) -> dict:
    return {"C": [r.C for r in runs], "M": [r.M for r in runs]}


def fit_dataset(tb: Testbed, dataset: str) -> tuple[FitResult, FitResult]:
    """Eq. 4 on the Table-1 points (C4-eval loss), Eq. 5 on those plus 1.4B M=20 (17-task error)."""
    lr = recipe.loss_fit_runs(tb, dataset)
    loss_fit = fit_law("overtrain", _loss_inputs(lr), [r.loss(VAL) for r in lr])
    er = recipe.error_fit_runs(tb, dataset)
    error_fit = fit_law("error", {"L": [r.loss(VAL) for r in er]}, [r.err_17 for r in er])
    return loss_fit, error_fit


def score(run: RunRecord, loss_fit: FitResult, error_fit: FitResult) -> dict:
    """True and predicted loss and 17-task error of one run; relative errors in percent of truth."""
    loss_pred = float(loss_fit.predict(C=run.C, M=run.M))
    error_pred = float(error_fit.predict(L=loss_pred))
    loss_true, error_true = run.loss(VAL), run.err_17
    return {
        "model": run.model,
        "N": run.N,
        "M": round(run.M, 6),
        "loss_true": loss_true,
        "loss_pred": loss_pred,
        "loss_rel_err": abs(loss_pred - loss_true) / loss_true * 100.0,
        "error_true": error_true,
        "error_pred": error_pred,
        "error_rel_err": abs(error_pred - error_true) / error_true * 100.0 if error_true is not None else None,
    }


def reproduce(tb: Testbed) -> tuple[dict, list[dict], dict]:
    """``(summary, grid, fits)``: the ``reproduce.json`` body, one scored row per testbed run,
    and the fits per dataset (for plotting)."""
    out, grid, fits = {"datasets": {}}, [], {}
    for ds in tb.datasets:
        recipe.check_recipe_runs(tb, ds)
    for ds in tb.datasets:
        loss_fit, error_fit = fit_dataset(tb, ds)
        fits[ds] = (loss_fit, error_fit)
        fit_names = {r.name for r in recipe.error_fit_runs(tb, ds)}
        out["datasets"][ds] = {
            "loss_fit": loss_fit.params,
            "error_fit": error_fit.params,
            "loss_fit_diagnostics": {"objective": loss_fit.rss, "converged": loss_fit.converged,
                                     "warnings": loss_fit.identifiability["warnings"]},
            "targets": [score(t, loss_fit, error_fit) for t in recipe.targets(tb, ds)],
        }
        for r in tb.select(dataset=ds):
            grid.append({"dataset": ds, **score(r, loss_fit, error_fit), "fit_point": r.name in fit_names})
    return out, grid, fits


def write_reproduction(tb: Testbed, out: Path, plots: bool = True) -> tuple[dict, tuple[Path, ...]]:
    """Run :func:`reproduce` and write ``reproduce.json``, ``relative_error_grid.csv`` and (with
    ``plots``) Figures 5 and 1 into ``out``; returns the summary and the paths written."""
    summary, grid, fits = reproduce(tb)
    out = Path(out)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(grid[0]))
    w.writeheader()
    w.writerows(grid)
    written = [atomic.write_json(out / "reproduce.json", summary),
               atomic.write_text(out / "relative_error_grid.csv", buf.getvalue())]
    if plots:
        from scaling_jax.paper import plots as figures

        written += [figures.figure5(grid, out / "figure5_relative_error.png"),
                    figures.figure1(tb, fits, out / "figure1_laws.png")]
    return summary, tuple(written)
