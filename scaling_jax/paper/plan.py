"""A posterior to plan with, fitted on the fly from a testbed or a sweep folder: the paper's
Table-1 recipe (the ``posterior`` workflow's own per-set fit: Eq. 4 on five runs chained to Eq. 5
on six) or every run of the training set (a sweep's collected records)."""

from __future__ import annotations

from pathlib import Path

from scaling_jax.backtest.self_calibration import self_calibrate
from scaling_jax.errors import UserError
from scaling_jax.laws.bayes import ErrorData, LossData, NutsConfig
from scaling_jax.laws.bayes.calibration_file import load_calibration, parse_calibrate
from scaling_jax.laws.bayes.fit import fit_bayes
from scaling_jax.laws.bayes.posterior_file import StoredPosterior, attach
from scaling_jax.laws.figures import write_netcdf
from scaling_jax.paper import recipe
from scaling_jax.paper.posterior_check import fit_set, self_calibrate_set
from scaling_jax.testbed import Testbed
from scaling_jax.testbed.points_io import testbed_points
from scaling_jax.testbed.schema import check_full_suites

RECIPES = ("table1", "all")
CALIBRATE = ("prior", "self")  # and self+FILE


def check_fit_inputs(tb: Testbed, dataset: str, recipe_name: str) -> None:
    """Bad dataset or recipe, or a set lacking the recipe's runs: a UserError before any fit."""
    where = tb.root or "testbed"
    if recipe_name not in RECIPES:
        raise UserError(f"--recipe {recipe_name!r}: one of {list(RECIPES)}")
    if dataset not in tb.datasets:
        raise UserError(f"--dataset {dataset!r}: not in {where} (it has {list(tb.datasets)})")
    if recipe_name == "table1":
        missing = [f"{m} at M={M:g}" for m, M in recipe.ERROR_FIT if not tb.has(dataset, m, M)]
        if missing:
            raise UserError(f"{where}: training set {dataset!r} lacks the Table-1 recipe's run(s) {missing}; "
                            "use --recipe all for a sweep's own runs")


def fit_for_plan(tb: Testbed, dataset: str, recipe_name: str = "table1", config: NutsConfig = NutsConfig(),
                 save: Path | None = None, calibrate: str = "prior",
                 allow_partial_suites: bool = False) -> StoredPosterior:
    """Fit Eq. 4 (chained to Eq. 5 where the runs carry downstream errors) on ``dataset`` by
    ``recipe_name``; with ``save``, also write the posterior there as a ``posterior.nc``.
    ``calibrate``: the discrepancy's prior (``prior``) or ``self`` / ``self+FILE``, learned from the
    set's own runs up to the fit's compute (rolling-origin cuts: ``backtest.self_calibration``).
    Runs whose err_17 averages part of its tasks are refused (named) unless ``allow_partial_suites``."""
    check_fit_inputs(tb, dataset, recipe_name)
    runs = recipe.error_fit_runs(tb, dataset) if recipe_name == "table1" else tb.select(dataset=dataset).runs
    check_full_suites([r for r in runs if r.err_17 is not None], "err_17", allow_partial_suites,
                      f"{tb.root or 'testbed'} ({dataset})")
    mode, cal_file = parse_calibrate(calibrate, CALIBRATE)
    prior = (load_calibration(cal_file, "loss"), load_calibration(cal_file, "error")) if cal_file else (None, None)
    info = None
    if recipe_name == "table1":
        fit = fit_set(tb, dataset, config)
        post, disc = fit.posterior, (None, None)
        if mode == "self":
            sc = self_calibrate_set(tb, fit, prior, seed=config.seed)
            disc, info = (sc.loss, sc.error), sc.info
        loss, error = fit.laws(*disc)
    else:
        pts = testbed_points(tb, dataset=dataset)
        err = ErrorData(L=pts["loss"], Err=pts["error"]) if "error" in pts else None
        disc = (None, None)
        if mode == "self":
            sc = self_calibrate("overtrain", pts, prior_loss=prior[0], prior_error=prior[1], seed=config.seed)
            disc, info = (sc.loss, sc.error), sc.info
        bf = fit_bayes("overtrain", loss=LossData(C=6.0 * pts["N"] * pts["D"], M=pts["D"] / pts["N"], L=pts["loss"]),
                       error=err, config=config, loss_discrepancy=disc[0], error_discrepancy=disc[1])
        post, loss, error = bf.posterior, bf.loss_law, bf.error_law
    if save is not None:
        write_netcdf(attach(post.to_inference_data(), "overtrain", loss, error, dataset), save)
    source = f"{tb.root or 'testbed'}: {dataset}, recipe {recipe_name}"  # plan.json names the discrepancy apart
    calibration = {"method": mode, "prior": cal_file or "the weakly informative prior", **(info or {})}
    return StoredPosterior(loss, error, post.diagnostics.to_dict(), "overtrain", dataset, source, calibration)
