"""Read fit points for ``scaling-jax fit``: a CSV (columns N, D, loss[, error]) or a testbed folder."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from scaling_jax.errors import InputNotFound, UserError

REQUIRED = ("N", "D", "loss")


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
                raw = (row.get(c) or "").strip()
                try:
                    v = float(raw)
                except ValueError:
                    raise UserError(f"{path}:{line}: column {c!r} is not a number: {raw!r}") from None
                if not math.isfinite(v) or v <= 0:
                    raise UserError(f"{path}:{line}: column {c!r} must be positive and finite, got {raw!r}")
                cols[c].append(v)
    if not cols["N"]:
        raise UserError(f"{path}: no data rows")
    return {k: np.array(v) for k, v in cols.items()}


def read_points(path: str | Path, *, val_set: str = "c4_val", metric: str = "err_17", dataset: str | None = None,
                need_error: bool = False) -> dict[str, np.ndarray]:
    """Points from a CSV file or a testbed folder (optionally one training set)."""
    path = Path(path)
    if path.is_file():
        return read_points_csv(path, need_error)
    if not path.exists():
        raise InputNotFound(f"{path}: no such file or folder")
    from scaling_jax.testbed import load_testbed

    tb = load_testbed(path)
    runs = tb.select(dataset=dataset).runs if dataset else tb.runs
    if not runs:
        raise UserError(f"{path}: no runs{f' for dataset {dataset!r}' if dataset else ''}; datasets are {list(tb.datasets)}")
    out = {
        "N": np.array([r.N for r in runs], float),
        "D": np.array([r.D for r in runs], float),
        "loss": np.array([r.loss(val_set) for r in runs]),
    }
    if need_error:
        missing = [r.name for r in runs if getattr(r, metric) is None]
        if missing:
            raise UserError(f"{path}: run(s) {missing[:3]} have no downstream {metric}")
        out["error"] = np.array([getattr(r, metric) for r in runs])
    return out
