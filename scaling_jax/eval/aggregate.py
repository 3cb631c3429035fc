"""Average downstream errors as the testbed's are: task error = 1 − accuracy, means over the
46-task list and the paper's 17-task subset, each over the tasks present, saying how many and which
(a mean over fewer tasks than its list is not the paper's ``err_17``: ``fit`` and ``backtest``
refuse such runs unless told to accept partial suites, testbed/schema.py)."""

from __future__ import annotations

from typing import Mapping

from scaling_jax.testbed.tasks import SUITES, SYNTHETIC_PREFIX, averaged_tasks, mean_error

__all__ = ["SUITES", "SYNTHETIC_PREFIX", "average_errors", "averaged_tasks"]  # the lists live with the testbed


def average_errors(accuracies: Mapping[str, float]) -> dict[str, float | int | list | None]:
    """``err_46``, ``err_17`` and ``err_synthetic`` with ``*_n_tasks`` and ``*_tasks``: means of
    1 − accuracy over the tasks of each set that ``accuracies`` holds (None, 0, [] when it holds none)."""
    out: dict[str, float | int | list | None] = {}
    for name, tasks in averaged_tasks(accuracies).items():
        out[name] = mean_error(accuracies, tasks) if tasks else None
        out[f"{name}_n_tasks"] = len(tasks)
        out[f"{name}_tasks"] = tasks
    return out
