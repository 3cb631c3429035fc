"""The ``posterior`` workflow as a library call: fit every training set's Table-1 points,
calibrate each set's discrepancy on the other sets, score the bands on held-out models,
compare pooling, and write ``posterior.json``, ``pooling.json`` and the figures; with
``calibrate="others"`` also ``calibration.json``, the discrepancy learned from every set's
held-out runs, for ``fit --estimator bayes --calibration`` on a new sweep.

``scaling-jax posterior`` only parses its flags, calls :func:`run_posterior` and prints; a
notebook calls it the same way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from scaling_jax import atomic
from scaling_jax.errors import UserError
from scaling_jax.laws.bayes import NutsConfig, save_calibration
from scaling_jax.laws.bayes.calibration_file import load_calibration, parse_calibrate
from scaling_jax.paper import posterior_plots, recipe
from scaling_jax.paper.posterior_check import (
    SetCheck,
    calibrate_from,
    check_set,
    fit_set,
    pooling_comparison,
    self_calibrate_set,
)
from scaling_jax.testbed import Testbed

CALIBRATE = ("others", "none", "self")  # and self+FILE


@dataclasses.dataclass(frozen=True)
class PosteriorRun:
    """What one run of the workflow produced: per-set checks, the pooling block, files written."""

    checks: dict[str, SetCheck]
    summary: dict  # the posterior.json body
    pooling: dict | None
    written: tuple[Path, ...]


def run_posterior(tb: Testbed, out: Path, *, datasets=None, config: NutsConfig = NutsConfig(),
                  n_bootstrap: int = 1000, calibrate: str = "others", pooling: bool = True, plots: bool = True,
                  on_set: Callable[[str, SetCheck], None] | None = None) -> PosteriorRun:
    """Check Bayesian bands on ``datasets`` of ``tb`` (default: all) and write the results to ``out``.

    ``on_set(dataset, check)`` is called as each set is scored (the CLI prints its rows).
    Every input is checked before any sampling or writing.
    """
    out = Path(out)
    datasets = list(datasets or tb.datasets)
    unknown = sorted(set(datasets) - set(tb.datasets))
    if unknown:
        raise UserError(f"--datasets: {unknown} not in the testbed (it has {list(tb.datasets)})")
    mode, cal_file = parse_calibrate(calibrate, CALIBRATE)
    prior = (load_calibration(cal_file, "loss"), load_calibration(cal_file, "error")) if cal_file else (None, None)
    # Calibration on the others needs every set's fit; the checked sets are among them.
    fitted = list(tb.datasets) if mode == "others" else datasets
    for ds in fitted:
        recipe.check_recipe_runs(tb, ds)
    fits = {ds: fit_set(tb, ds, config) for ds in fitted}
    checks = {}
    for ds in datasets:
        calibrated, cuts, info = None, None, None
        if mode == "others":
            calibrated = calibrate_from(fits, ds, config)
        elif mode == "self":
            sc = self_calibrate_set(tb, fits[ds], prior, seed=config.seed)
            calibrated, cuts, info = (sc.loss, sc.error), (sc.loss_cut, sc.error_cut), sc.info
        checks[ds] = check_set(tb, fits[ds], config, n_bootstrap=n_bootstrap, calibrated=calibrated,
                               ladder_cuts=cuts)
        if info is not None:
            checks[ds].summary["self_calibration"] = {
                **info, "scoring": "the held-out runs at or below each ladder's compute fed the calibration's cuts: "
                "only each block's beyond_ladder figures are out of sample"}
        if on_set is not None:
            on_set(ds, checks[ds])
    summary = {"datasets": {ds: c.summary for ds, c in checks.items()},
               "config": {"num_warmup": config.num_warmup, "num_samples": config.num_samples,
                          "num_chains": config.num_chains, "seed": config.seed, "bootstrap": n_bootstrap,
                          "calibrate": calibrate}}
    written = [atomic.write_json(out / "posterior.json", summary)]
    if mode == "others":
        written.append(_save_all_sets_calibration(tb, fits, config, out / "calibration.json"))
    pooled = None
    if pooling and len(datasets) > 1:
        disc = {ds: c.loss_law.discrepancy for ds, c in checks.items()}
        pooled = pooling_comparison(tb, datasets, config, discrepancy=disc)
        written.append(atomic.write_json(out / "pooling.json", pooled))
    if plots:
        written.append(posterior_plots.figure1_bands(tb, checks, out / "figure1_bands.png"))
        written.append(posterior_plots.calibration(checks, out / "calibration.png"))
    return PosteriorRun(checks, summary, pooled, tuple(written))


def _save_all_sets_calibration(tb: Testbed, fits: dict, config: NutsConfig, path: Path) -> Path:
    """Calibrate on the held-out runs of every fitted set (none left out: this is for a sweep
    outside the testbed) and save it as a reusable calibration file."""
    loss, error = calibrate_from(fits, None, config)
    created_from = {
        "testbed": tb.root,
        "datasets": sorted(fits),
        # The misfit learned is that of laws fitted on these points; it transfers to fits of like design.
        "fit_points": "each set's paper recipe: Table 1's runs for Eq. 4, recipe.error_fit_runs for Eq. 5",
        "n_heldout": {"loss": sum(len(f.loss_heldout) for f in fits.values()),
                      "error": sum(len(f.error_heldout) for f in fits.values())},
        "config": {"num_warmup": config.num_warmup, "num_samples": config.num_samples,
                   "num_chains": config.num_chains, "seed": config.seed},
    }  # fmt: skip
    return save_calibration(path, loss=loss, error=error, source=loss.source, created_from=created_from)
