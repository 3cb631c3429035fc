"""Read fit points for ``scaling-jax fit``: a CSV (columns N, D, loss[, error]) or a testbed folder."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.testbed.load import Testbed, load_testbed

REQUIRED = ("N", "D", "loss")
PAPER_VAL_SET = "c4_val"  # the released runs' loss for the paper's fits


def _check_value(where: str, column: str, raw: str) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise UserError(f"{where}: column {column!r} is not a number: {raw!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise UserError(f"{where}: column {column!r} must be positive and finite, got {raw!r}")
    if column == "error" and v > 1:
        raise UserError(f"{where}: column 'error' is a top-1 error rate and must lie in (0, 1], got {raw!r}")
    return v


def read_points_csv(path: Path, need_error: bool = False) -> dict[str, np.ndarray]:
    """``{"N", "D", "loss"[, "error"]}`` arrays; errors name the file, line and column."""
    need = REQUIRED + (("error",) if need_error else ())
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in need if c not in header]
        if missing:
            raise UserError(f"{path}: missing column(s) {missing}; found {header}")
        cols: dict[str, list[float]] = {c: [] for c in need}
        for line, row in enumerate(reader, start=2):
            for c in need:
                cols[c].append(_check_value(f"{path}:{line}", c, (row.get(c) or "").strip()))
    if not cols["N"]:
        raise UserError(f"{path}: no data rows")
    return {k: np.array(v) for k, v in cols.items()}


def val_set_of(run, val_set: str | None) -> str:
    """The validation set whose loss is fitted for ``run``: ``val_set`` when given; else the
    run's own set (a run trained here names it after its training set), else the paper's."""
    if val_set is not None:
        if val_set not in run.losses:
            raise UserError(f"--val-set {val_set!r}: run {run.name} ({run.source}) has no loss on it; "
                            f"its validation sets are {sorted(run.losses)}")
        return val_set
    for name in (run.dataset, PAPER_VAL_SET):
        if name in run.losses:
            return name
    raise UserError(f"run {run.name} ({run.source}) has neither a loss on its own set {run.dataset!r} nor on "
                    f"{PAPER_VAL_SET!r}; pass --val-set, one of {sorted(run.losses)}")


def testbed_points(tb: Testbed, *, val_set: str | None = None, metric: str = "err_17", dataset: str | None = None,
                   need_error: bool = False) -> dict[str, np.ndarray]:
    """Points of one training set of ``tb``; a testbed of several sets needs ``dataset``."""
    where = tb.root or "testbed"
    if dataset is None and len(tb.datasets) > 1:
        raise UserError(f"{where}: holds runs of several training sets {list(tb.datasets)}; a law is fitted to "
                        "one: pass --dataset")
    runs = tb.select(dataset=dataset).runs if dataset else tb.runs
    if not runs:
        raise UserError(f"{where}: no runs{f' for dataset {dataset!r}' if dataset else ''}; "
                        f"datasets are {list(tb.datasets)}")
    sets = {val_set_of(r, val_set) for r in runs}
    if len(sets) > 1:
        raise UserError(f"{where}: the runs' own validation sets differ ({sorted(sets)}); pass --val-set")
    (name,) = sets
    out = {
        "N": np.array([r.N for r in runs], float),
        "D": np.array([r.D for r in runs], float),
        "loss": np.array([r.losses[name] for r in runs]),
    }
    if need_error:
        missing = [r.name for r in runs if getattr(r, metric) is None]
        if missing:
            raise UserError(f"{where}: run(s) {missing[:3]} have no downstream {metric}")
        out["error"] = np.array([getattr(r, metric) for r in runs])
    return out


def read_points(path: str | Path, *, val_set: str | None = None, metric: str = "err_17", dataset: str | None = None,
                need_error: bool = False) -> dict[str, np.ndarray]:
    """Points from a CSV file or a testbed folder (one training set of it)."""
    path = Path(path)
    if path.is_file():
        return read_points_csv(path, need_error)
    if not path.exists():
        raise InputNotFound(f"{path}: no such file or folder")
    return testbed_points(load_testbed(path), val_set=val_set, metric=metric, dataset=dataset,
                          need_error=need_error)
