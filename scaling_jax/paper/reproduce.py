"""The paper's default recipe on a testbed: fit Eq. 4 and Eq. 5 per training set, predict the
held-out targets, and score every model of the testbed (the paper's Figure 5 grid)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from scaling_jax import atomic
from scaling_jax.laws.fit import FitResult, fit_law
from scaling_jax.paper import recipe
from scaling_jax.paper.recipe import Recipe
from scaling_jax.testbed import RunRecord, Testbed


def _loss_inputs(runs) -> dict:
    return {"C": [r.C for r in runs], "M": [r.M for r in runs]}


def fit_dataset(rec: Recipe, dataset: str) -> tuple[FitResult, FitResult]:
    """Eq. 4 on the recipe's loss-fit runs, Eq. 5 on its error-fit runs (Table 1: C4-eval loss,
    17-task error)."""
    lr = rec.loss_fit[dataset]
    loss_fit = fit_law("overtrain", _loss_inputs(lr), [rec.loss(r) for r in lr])
    er = rec.error_fit[dataset]
    error_fit = fit_law("error", {"L": [rec.loss(r) for r in er]}, [rec.error(r) for r in er])
    return loss_fit, error_fit


def score(run: RunRecord, rec: Recipe, loss_fit: FitResult, error_fit: FitResult) -> dict:
    """True and predicted loss and downstream error of one run; relative errors in percent of truth."""
    loss_pred = float(loss_fit.predict(C=run.C, M=run.M))
    error_pred = float(error_fit.predict(L=loss_pred))
    loss_true, error_true = rec.loss(run), rec.error(run)
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
        "error_abs_err": abs(error_pred - error_true) * 100.0 if error_true is not None else None,
        "name": run.name,
    }


def seed_means(targets: list[dict]) -> list[dict]:
    """One row per target size trained with several seeds (same model and M): the mean measured
    loss and error over its seeds against the one prediction they share, so a multi-seed recipe
    is judged on the mean rather than on one seed's draw. ``loss_sd`` is the seeds' sample sd."""
    groups: dict[tuple, list[dict]] = {}
    for t in targets:
        groups.setdefault((t["model"], t["M"]), []).append(t)
    rows = []
    for (model, M), ts in groups.items():
        if len(ts) < 2:
            continue
        loss = np.array([t["loss_true"] for t in ts])
        pred = float(np.mean([t["loss_pred"] for t in ts]))  # equal C and M: one prediction
        errs = [t["error_true"] for t in ts]
        err = None if any(e is None for e in errs) else float(np.mean(errs))
        err_pred = float(np.mean([t["error_pred"] for t in ts]))
        rows.append({
            "model": model, "N": ts[0]["N"], "M": M, "seeds": len(ts), "names": [t["name"] for t in ts],
            "loss_true": float(loss.mean()), "loss_sd": float(loss.std(ddof=1)), "loss_pred": pred,
            "loss_rel_err": abs(pred - loss.mean()) / loss.mean() * 100.0,
            "error_true": err, "error_pred": err_pred,
            "error_rel_err": None if err is None else abs(err_pred - err) / err * 100.0,
            "error_abs_err": None if err is None else abs(err_pred - err) * 100.0,
        })
    return rows


def reproduce(tb: Testbed, rec: Recipe | None = None) -> tuple[dict, list[dict], dict]:
    """``(summary, grid, fits)``: the ``reproduce.json`` body, one scored row per testbed run,
    and the fits per dataset (for plotting). ``rec`` defaults to the paper's Table 1."""
    rec = rec or recipe.paper_recipe(tb)
    out, grid, fits = {"recipe": rec.name, "val_set": rec.val_set, "metric": rec.metric, "datasets": {}}, [], {}
    for ds in rec.datasets:
        loss_fit, error_fit = fit_dataset(rec, ds)
        fits[ds] = (loss_fit, error_fit)
        fit_names = {r.name for r in rec.error_fit[ds] + rec.loss_fit[ds]}
        out["datasets"][ds] = {
            "loss_fit": loss_fit.params,
            "error_fit": error_fit.params,
            "loss_fit_diagnostics": {"objective": loss_fit.rss, "converged": loss_fit.converged,
                                     "warnings": loss_fit.identifiability["warnings"]},
            "targets": [score(t, rec, loss_fit, error_fit) for t in rec.targets[ds]],
        }
        means = seed_means(out["datasets"][ds]["targets"])
        if means:
            out["datasets"][ds]["target_seed_means"] = means
        for r in tb.select(dataset=ds):
            if rec.val_set in r.losses:
                grid.append({"dataset": ds, **score(r, rec, loss_fit, error_fit), "fit_point": r.name in fit_names})
    return out, grid, fits


def bayes_bands(rec: Recipe, dataset: str, config=None) -> dict:
    """The Bayesian version of the recipe's fit (Eq. 4 chained to Eq. 5, NUTS): the posterior
    95 % interval of every parameter, and per target the 95 % posterior predictive band of its
    loss and error and whether the measured value falls inside."""
    from scaling_jax.laws.bayes.fit import fit_bayes
    from scaling_jax.laws.bayes.infer import NutsConfig
    from scaling_jax.laws.bayes.models import ErrorData, LossData

    lr, er, ts = rec.loss_fit[dataset], rec.error_fit[dataset], rec.targets[dataset]
    loss = LossData(C=np.array([r.C for r in lr]), M=np.array([r.M for r in lr]),
                    L=np.array([rec.loss(r) for r in lr]))
    error = ErrorData(L=np.array([rec.loss(r) for r in er]), Err=np.array([rec.error(r) for r in er]))
    fit = fit_bayes("overtrain", loss=loss, error=error, config=config or NutsConfig())
    bands = fit.bands(C=np.array([t.C for t in ts]), M=np.array([t.M for t in ts]))
    rows = []
    for i, t in enumerate(ts):
        row = {"name": t.name}
        for key, true in (("loss", rec.loss(t)), ("error", rec.error(t))):
            lo, hi = float(bands[key].lo[95][i]), float(bands[key].hi[95][i])
            row |= {f"{key}_lo95": lo, f"{key}_hi95": hi, f"{key}_median": float(bands[key].median[i]),
                    f"{key}_in_band": None if true is None else bool(lo <= true <= hi)}
        rows.append(row)
    return {"params": fit.param_summary(), "targets": rows, "diagnostics": fit.posterior.diagnostics.to_dict()}


def write_reproduction(tb: Testbed, out: Path, plots: bool = True, rec: Recipe | None = None,
                       bands: bool = False, nuts=None) -> tuple[dict, tuple[Path, ...]]:
    """Run :func:`reproduce` and write ``reproduce.json``, ``relative_error_grid.csv`` and (with
    ``plots``) Figures 5 and 1 into ``out``; returns the summary and the paths written."""
    rec = rec or recipe.paper_recipe(tb)
    summary, grid, fits = reproduce(tb, rec)
    if bands:
        for ds, d in summary["datasets"].items():
            d["bayes"] = bayes_bands(rec, ds, nuts)
            band_of = {t["name"]: t for t in d["bayes"]["targets"]}
            for m in d.get("target_seed_means", []):
                b = band_of[m["names"][0]]  # the seeds share C and M, hence one band
                for key in ("loss", "error"):
                    lo, hi = b[f"{key}_lo95"], b[f"{key}_hi95"]
                    m |= {f"{key}_lo95": lo, f"{key}_hi95": hi,
                          f"{key}_in_band": None if m[f"{key}_true"] is None else bool(lo <= m[f"{key}_true"] <= hi)}
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
                    figures.figure1(tb, fits, out / "figure1_laws.png", rec)]
    return summary, tuple(written)
