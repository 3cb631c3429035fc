"""Average downstream errors as the testbed's are: task error = 1 − accuracy, means over the
46-task list and the paper's 17-task subset, each over the tasks present (and saying how many)."""

from __future__ import annotations

from typing import Mapping

from scaling_jax.testbed.tasks import TASKS_17, TASKS_46, mean_error

SYNTHETIC_PREFIX = "synth_"


def average_errors(accuracies: Mapping[str, float]) -> dict[str, float | int | None]:
    """``err_46``, ``err_17`` and ``err_synthetic`` with ``*_n_tasks``: means of 1 − accuracy over
    the tasks of each set that ``accuracies`` holds (None, 0 when it holds none)."""
    sets = {
        "err_46": [t for t in TASKS_46 if t in accuracies],
        "err_17": [t for t in TASKS_17 if t in accuracies],
        "err_synthetic": sorted(t for t in accuracies if t.startswith(SYNTHETIC_PREFIX)),
    }
    out: dict[str, float | int | None] = {}
    for name, tasks in sets.items():
        out[name] = mean_error(accuracies, tasks) if tasks else None
        out[f"{name}_n_tasks"] = len(tasks)
    return out
