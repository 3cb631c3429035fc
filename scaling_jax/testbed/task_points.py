"""Per-task fit points for the downstream laws (``fit --law downstream``): each run's N, D, its loss
on the validation set (the paper's intermediate, C4 loss on the testbed), and per task its accuracy
(``acc``, or lm-eval's ``acc_norm``), its task loss (bits per byte of the gold continuations) where
measured, and the task's chance accuracy (the accuracy law's floor) and ceiling (the best accuracy
any model can reach: 1, or the synthetic suite's exact Bayes accuracy).

Three inputs: a CSV with columns ``N, D, loss`` and per task ``acc:TASK`` (``acc_norm:TASK`` for
that metric), optionally ``task_loss:TASK``, ``chance:TASK`` and ``ceiling:TASK``; the paper's
released testbed (accuracies only; chance from its ``eval_metadata.csv``); a folder of
``record.json`` files written by ``scaling-jax train`` (chance and Bayes accuracy from the record's
``hyperparameters.eval``).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.testbed.load import Testbed
from scaling_jax.testbed.points_io import csv_or_testbed, val_set_of
from scaling_jax.testbed.tasks import SUITES

METRICS = ("acc", "acc_norm")


@dataclasses.dataclass(frozen=True)
class TaskPoints:
    """Runs (rows) by tasks (columns); ``task_loss`` is None where the runs carry no task losses."""

    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    tasks: tuple[str, ...]
    acc: np.ndarray  # (runs, tasks)
    task_loss: np.ndarray | None  # (runs, tasks), bits per byte
    chance: np.ndarray  # (tasks,)
    ceiling: np.ndarray  # (tasks,)
    labels: tuple[str, ...]
    metric: str = "acc"
    source: str = ""

    def __post_init__(self):
        n, T = len(self.N), len(self.tasks)
        if T == 0:
            raise UserError(f"{self.source}: no tasks to fit")
        shapes = {"acc": self.acc, **({"task_loss": self.task_loss} if self.task_loss is not None else {})}
        for k, v in shapes.items():
            if np.shape(v) != (n, T):
                raise UserError(f"{self.source}: {k} has shape {np.shape(v)}, expected ({n} runs, {T} tasks)")
        bad = ~((self.chance >= 0) & (self.chance < self.ceiling) & (self.ceiling <= 1))
        if bad.any():
            t = int(np.flatnonzero(bad)[0])
            raise UserError(f"{self.source}: task {self.tasks[t]!r} needs 0 <= chance < ceiling <= 1, got chance "
                            f"{self.chance[t]:g}, ceiling {self.ceiling[t]:g}")

    def __len__(self) -> int:
        return len(self.N)

    @property
    def C(self) -> np.ndarray:
        return 6.0 * self.N * self.D

    @property
    def M(self) -> np.ndarray:
        return self.D / self.N

    @property
    def mean_error(self) -> np.ndarray:
        """Each run's mean top-1 error over the tasks (the paper's err_17 on its 17 tasks)."""
        return 1.0 - self.acc.mean(axis=1)

    def subset(self, idx) -> "TaskPoints":
        """The runs ``idx`` (indices or a boolean mask)."""
        idx = np.flatnonzero(idx) if np.asarray(idx).dtype == bool else np.asarray(idx, int)
        return dataclasses.replace(
            self, N=self.N[idx], D=self.D[idx], loss=self.loss[idx], acc=self.acc[idx],
            task_loss=None if self.task_loss is None else self.task_loss[idx],
            labels=tuple(self.labels[i] for i in idx))  # fmt: skip

    def only(self, tasks: Sequence[str]) -> "TaskPoints":
        """The columns of ``tasks`` only."""
        j = [self.tasks.index(t) for t in tasks]
        return dataclasses.replace(self, tasks=tuple(tasks), acc=self.acc[:, j], chance=self.chance[j],
                                   ceiling=self.ceiling[j],
                                   task_loss=None if self.task_loss is None else self.task_loss[:, j])

    def require_task_losses(self, where: str) -> np.ndarray:
        if self.task_loss is None:
            raise UserError(f"{where}: the runs of {self.source} carry no task losses (bits per byte of the gold "
                            "continuations; `scaling-jax eval` and training's end-of-run eval record them, the "
                            "paper's release has none): use --route paper or per-task")
        return self.task_loss


def _pick_tasks(available: Sequence[str], tasks: str | Sequence[str] | None, default: Sequence[str],
                where: str) -> tuple[str, ...]:
    """``tasks``: None (``default``), ``all`` (every available task) or names, each available."""
    if tasks is None:
        chosen = [t for t in default if t in available] or list(available)
        short = [t for t in default if t not in available]
        if short and len(short) < len(default):
            # part of the default suite: fitting on fewer tasks than asked would change the law silently
            raise UserError(f"{where}: the default task suite's {sorted(short)} are not measured on every run "
                            f"(measured: {len(default) - len(short)} of {len(default)}); pass --tasks all or "
                            "--tasks A,B,... to fit those measured")
    elif isinstance(tasks, str) and tasks.strip() == "all":
        chosen = list(available)
    else:
        chosen = [t.strip() for t in (tasks.split(",") if isinstance(tasks, str) else tasks) if t.strip()]
        missing = [t for t in chosen if t not in available]
        if missing:
            raise UserError(f"--tasks: {missing} not measured on every run of {where}; tasks there: "
                            f"{sorted(available)}")
    if not chosen:
        raise UserError(f"{where}: no task has an accuracy on every run")
    return tuple(dict.fromkeys(chosen))


def _number(where: str, column: str, raw: str, lo: float, hi: float, open_lo: bool = False) -> float:
    try:
        v = float(raw)
    except ValueError:
        raise UserError(f"{where}: column {column!r} is not a number: {raw!r}") from None
    if not math.isfinite(v) or v < lo or v > hi or (open_lo and v <= lo):
        raise UserError(f"{where}: column {column!r} must lie in {'(' if open_lo else '['}{lo:g}, {hi:g}], got {raw!r}")
    return v


def read_task_csv(path: str | Path, metric: str = "acc", tasks=None) -> TaskPoints:
    """A CSV of runs: ``N, D, loss`` and per task ``acc:TASK`` (or ``acc_norm:TASK``), optionally
    ``task_loss:TASK`` (all tasks or none), ``chance:TASK`` (default 0) and ``ceiling:TASK`` (default 1)."""
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    missing = [c for c in ("N", "D", "loss") if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {missing}; found {header}")
    prefix = f"{metric}:"
    available = [c[len(prefix):] for c in header if c.startswith(prefix)]
    if not available:
        raise UserError(f"{path}: no per-task accuracy columns '{prefix}TASK' (metric {metric}); found {header}")
    chosen = _pick_tasks(available, tasks, available, str(path))
    with_loss = [t for t in chosen if f"task_loss:{t}" in header]
    if with_loss and len(with_loss) != len(chosen):
        raise UserError(f"{path}: task_loss columns for {with_loss} but not for "
                        f"{[t for t in chosen if t not in with_loss]}: give every task's or none")
    if not rows:
        raise UserError(f"{path}: no data rows")
    cols: dict[str, list[float]] = {k: [] for k in ("N", "D", "loss")}
    acc, tl = [], []
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        for k in cols:
            cols[k].append(_number(where, k, (row.get(k) or "").strip(), 0.0, math.inf, open_lo=True))
        acc.append([_number(where, prefix + t, (row.get(prefix + t) or "").strip(), 0.0, 1.0) for t in chosen])
        if with_loss:
            tl.append([_number(where, f"task_loss:{t}", (row.get(f"task_loss:{t}") or "").strip(), 0.0, math.inf,
                               open_lo=True) for t in chosen])
    first = rows[0]

    def const(kind: str, default: float) -> np.ndarray:
        return np.array([_number(f"{path}:2", f"{kind}:{t}", first[f"{kind}:{t}"].strip(), 0.0, 1.0)
                         if f"{kind}:{t}" in header else default for t in chosen])

    return TaskPoints(np.array(cols["N"]), np.array(cols["D"]), np.array(cols["loss"]), chosen, np.array(acc),
                      np.array(tl) if with_loss else None, const("chance", 0.0), const("ceiling", 1.0),
                      tuple(f"row {i}" for i in range(len(rows))), metric, str(path))


def _eval_info(run, key: str) -> dict:
    return dict(dict(run.hyperparameters.get("eval") or {}).get(key) or {})


def task_points_from_runs(tb: Testbed, dataset: str | None = None, *, metric: str = "acc", tasks=None,
                          val_set: str | None = None) -> TaskPoints:
    """The runs of one training set of ``tb`` (the paper's release or records of runs trained here)."""
    where = tb.root or "testbed"
    if metric not in METRICS:
        raise UserError(f"--metric {metric!r}: the downstream laws fit one of {list(METRICS)}")
    if dataset is None and len(tb.datasets) > 1:
        raise UserError(f"{where}: holds runs of several training sets {list(tb.datasets)}; pass --dataset")
    runs = tb.select(dataset=dataset).runs if dataset else tb.runs
    if not runs:
        raise UserError(f"{where}: no runs{f' for dataset {dataset!r}' if dataset else ''}")
    values = [r.acc_norm if metric == "acc_norm" else r.accuracies for r in runs]
    available = sorted(set.intersection(*(set(v) for v in values)))
    if not available:
        what = "acc_norm (the paper's release has none)" if metric == "acc_norm" else "accuracies"
        raise UserError(f"{where}: no task has {what} on every run")
    synthetic = all(_eval_info(r, "bayes_accuracy") for r in runs)
    # lm-eval's tasks share some names with the paper's labels but not their prompts or shots: records
    # it evaluated fit every task measured, never part of the paper's suite by name
    harness = any((r.hyperparameters.get("eval") or {}).get("harness") for r in runs)
    default = (sorted(t for t in available if t.startswith("synth_")) if synthetic
               else list(available) if harness else SUITES["err_17"])
    chosen = _pick_tasks(available, tasks, default, where)
    sets = {val_set_of(r, val_set) for r in runs}
    if len(sets) > 1:
        raise UserError(f"{where}: the runs' own validation sets differ ({sorted(sets)}); pass --val-set")
    (vs,) = sets
    has_tl = all(all(t in r.task_losses for t in chosen) for r in runs)

    def per_task(key: str, fallback) -> np.ndarray:
        return np.array([_eval_info(runs[0], key).get(t, fallback(t)) for t in chosen], np.float64)

    chance = per_task("chance", lambda t: tb.random_baselines.get(t, 0.0))
    ceiling = per_task("bayes_accuracy", lambda t: 1.0)
    return TaskPoints(
        np.array([r.N for r in runs], np.float64), np.array([r.D for r in runs], np.float64),
        np.array([r.losses[vs] for r in runs], np.float64), chosen,
        np.array([[v[t] for t in chosen] for v in values], np.float64),
        np.array([[r.task_losses[t] for t in chosen] for r in runs], np.float64) if has_tl else None,
        chance, ceiling, tuple(r.name for r in runs), metric, f"{where}{f' ({dataset})' if dataset else ''}")


def read_task_points(path: str | Path, *, dataset: str | None = None, metric: str = "acc", tasks=None,
                     val_set: str | None = None) -> TaskPoints:
    """Per-task points from a CSV file or a testbed / records folder (local or ``gs://``)."""
    if metric not in METRICS:
        raise UserError(f"--metric {metric!r}: the downstream laws fit one of {list(METRICS)}")
    src = csv_or_testbed(path)
    if isinstance(src, Path):
        return read_task_csv(src, metric, tasks)
    return task_points_from_runs(src, dataset, metric=metric, tasks=tasks, val_set=val_set)
