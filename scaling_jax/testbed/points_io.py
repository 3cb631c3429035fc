"""Read fit points for ``scaling-jax fit``: a CSV (columns N, D, loss[, error]) or a testbed folder."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np

from scaling_jax import paths
from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.testbed.load import Testbed, load_testbed

REQUIRED = ("N", "D", "loss")
PAPER_VAL_SET = "c4_val"  # the released runs' loss for the paper's fits


def _check_value(where: str, column: str, raw: str, kind: str | None = None) -> float:
    """``raw`` as a positive finite number (an error rate, ``kind`` ``error``, at most 1)."""
    try:
        v = float(raw)
    except ValueError:
        raise UserError(f"{where}: column {column!r} is not a number: {raw!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise UserError(f"{where}: column {column!r} must be positive and finite, got {raw!r}")
    if (kind or column) == "error" and v > 1:
        raise UserError(f"{where}: column {column!r} is a top-1 error rate and must lie in (0, 1], got {raw!r}")
    return v


WANDB_STATE, WANDB_DONE = "State", "finished"  # a W&B run-table export's run state column


def read_points_csv(path: Path, need_error: bool = False, columns: dict[str, str] | None = None
                    ) -> dict[str, np.ndarray]:
    """``{"N", "D", "loss"[, "error"]}`` arrays (``error`` whenever the file has the column);
    ``columns`` maps any of them to the file's own column name (a W&B run-table export's
    ``losses.synthetic``). In a W&B export (a ``State`` column) the runs not finished are left
    out with a warning, as are finished runs with an empty cell in a needed column (a run logged
    without its eval; a loss fit then reads no ``error``, keeping those runs' losses). Errors name
    the file, line and column."""
    col = {**{c: c for c in (*REQUIRED, "error")}, **(columns or {})}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        need = REQUIRED + (("error",) if need_error or col["error"] in header else ())
        missing = [col[c] for c in need if col[c] not in header]
        if missing:
            raise UserError(f"{path}: missing column(s) {missing}; found {header}")
        rows = list(reader)
    if WANDB_STATE in header and not need_error and "error" in need and any(
            r[WANDB_STATE] == WANDB_DONE and not (r.get(col["error"]) or "").strip() for r in rows):
        need = REQUIRED  # a loss fit: finished runs logged without their eval keep their loss
    cols: dict[str, list[float]] = {c: [] for c in need}
    skipped, empty = [], []
    for line, row in enumerate(rows, start=2):
        name = row.get("Name") or f"line {line}"
        if WANDB_STATE in header and row[WANDB_STATE] != WANDB_DONE:
            skipped.append(f"{name} ({row[WANDB_STATE]})")
            continue
        blank = [col[c] for c in need if not (row.get(col[c]) or "").strip()]
        if WANDB_STATE in header and blank:
            empty.append(f"{name} (no {', '.join(blank)})")
            continue
        for c in need:
            cols[c].append(_check_value(f"{path}:{line}", col[c], (row.get(col[c]) or "").strip(), c))
    if skipped:
        warnings.warn(f"{path}: left out {len(skipped)} W&B run(s) not finished: {', '.join(skipped)}", stacklevel=2)
    if empty:
        warnings.warn(f"{path}: left out {len(empty)} finished W&B run(s) with empty cells: {', '.join(empty)}",
                      stacklevel=2)
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
    missing = [r.name for r in runs if getattr(r, metric) is None]
    if need_error and missing:
        raise UserError(f"{where}: run(s) {missing[:3]} have no downstream {metric}")
    if not missing:
        out["error"] = np.array([getattr(r, metric) for r in runs])
    return out


# How a prediction target may be given: the keys of one spec, and how each becomes (N, D, C, M).
TARGET_FORMS = {
    ("D", "N"): lambda v: (v["N"], v["D"]),
    ("C", "M"): lambda v: (math.sqrt(v["C"] / (6.0 * v["M"])), v["M"] * math.sqrt(v["C"] / (6.0 * v["M"]))),
    ("M", "N"): lambda v: (v["N"], v["M"] * v["N"]),
}


def _target(values: dict[str, float], law: str, where: str) -> dict[str, float]:
    for k, v in values.items():
        if not math.isfinite(v) or v <= 0:
            raise UserError(f"{where}: {k} must be positive and finite, got {v!r}")
    if law == "error":
        if set(values) != {"L"}:
            raise UserError(f"{where}: the error law predicts from a loss: give L=..., got {sorted(values)}")
        return {"L": values["L"]}
    form = TARGET_FORMS.get(tuple(sorted(values)))
    if form is None:
        raise UserError(f"{where}: give N,D or N=...,D=... or C=...,M=... or N=...,M=..., got {sorted(values)}")
    N, D = form(values)
    return {"N": N, "D": D, "C": 6.0 * N * D, "M": D / N}


def parse_target(spec: str, law: str) -> dict[str, float]:
    """One ``--predict`` value: ``N,D`` (two numbers), ``N=...,D=...``, ``C=...,M=...``, ``N=...,M=...``,
    or ``L=...`` for the error law; returns N, D, C and M (or L)."""
    where = f"--predict {spec!r}"
    parts = [s.strip() for s in spec.split(",") if s.strip()]
    try:
        if parts and all("=" not in s for s in parts):
            if law == "error" and len(parts) == 1:
                return _target({"L": float(parts[0])}, law, where)
            if len(parts) != 2:
                raise UserError(f"{where}: expected two numbers N,D")
            return _target({"N": float(parts[0]), "D": float(parts[1])}, law, where)
        values = {}
        for s in parts:
            key, _, raw = s.partition("=")
            values[key.strip()] = float(raw)
    except ValueError as e:
        if isinstance(e, UserError):
            raise
        raise UserError(f"{where}: not a number ({e})") from None
    return _target(values, law, where)


def read_targets_csv(path: str | Path, law: str) -> list[dict[str, float]]:
    """``--predict-file``: one target per row, columns N, D (or C, M; L for the error law)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"--predict-file {path}: no such file")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        keys = ["L"] if law == "error" else next((list(k) for k in (("N", "D"), ("C", "M")) if set(k) <= set(header)),
                                                 None)
        if keys is None or not set(keys) <= set(header):
            want = "L" if law == "error" else "N, D (or C, M)"
            raise UserError(f"{path}: needs columns {want}; found {header}")
        out = []
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            values = {k: _check_value(where, k, (row.get(k) or "").strip()) for k in keys}
            out.append(_target(values, law, where))
    if not out:
        raise UserError(f"{path}: no targets")
    return out


def csv_or_testbed(path: str | Path) -> Path | Testbed:
    """A CSV file's path, or the testbed folder at ``path`` (local or ``gs://``) loaded; nothing
    there is an error naming it."""
    if not paths.is_gcs(path):
        p = Path(path)
        if p.is_file():
            return p
        if not p.exists():
            raise InputNotFound(f"{p}: no such file or folder")
    return load_testbed(path)


def read_points(path: str | Path, *, val_set: str | None = None, metric: str = "err_17", dataset: str | None = None,
                need_error: bool = False, columns: dict[str, str] | None = None) -> dict[str, np.ndarray]:
    """Points from a CSV file (``columns``: see ``read_points_csv``) or a testbed folder (one
    training set of it; local or ``gs://``)."""
    src = csv_or_testbed(path)
    if isinstance(src, Path):
        return read_points_csv(src, need_error, columns)
    return testbed_points(src, val_set=val_set, metric=metric, dataset=dataset, need_error=need_error)
