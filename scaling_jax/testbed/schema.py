"""The run record: one trained model and everything measured on it.

Defined once, used for the paper's released runs and for runs this project trains, with a
JSON round-trip (``to_json`` / ``from_json``) so ``scaling-jax train`` can write records that
``fit`` and ``reproduce`` read beside the paper's.
"""

from __future__ import annotations

import dataclasses
import json
import math
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from scaling_jax.errors import UserError

SCHEMA_VERSION = 1


def _frozen(m: Mapping | None) -> Mapping:
    return MappingProxyType(dict(m or {}))


class ComputeAxes:
    """The paper's derived axes of a run with ``N`` parameters trained on ``D`` tokens."""

    N: float
    D: float

    @property
    def M(self) -> float:
        """Token multiplier D/N."""
        return self.D / self.N

    @property
    def C(self) -> float:
        """Training compute 6·N·D FLOPs."""
        return 6.0 * self.N * self.D


@dataclasses.dataclass(frozen=True)
class RunRecord(ComputeAxes):
    """One trained model.

    ``losses`` maps a validation-set name (``c4_val``, ``openlm``, ``paloma_c4_en``, ...) to
    mean next-token cross-entropy in nats; ``loss_intervals`` the 95 % interval over
    sequences for the same sets; ``accuracies`` maps a downstream task to top-1 accuracy in
    [0, 1]. ``err_46`` / ``err_17`` are mean top-1 errors over the 46-task set and the
    paper's 17-task subset (None when the run has no downstream evals). ``task_losses`` maps a
    task to its gold continuations' bits per byte and ``acc_norm`` to lm-eval's length-normalised
    accuracy (runs evaluated here; the paper's release has neither).
    """

    name: str
    dataset: str
    model: str
    N: int
    params_no_embed: int
    D: float
    losses: Mapping[str, float]
    loss_intervals: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    accuracies: Mapping[str, float] = dataclasses.field(default_factory=dict)
    err_46: float | None = None
    err_17: float | None = None
    hyperparameters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""
    task_losses: Mapping[str, float] = dataclasses.field(default_factory=dict)
    acc_norm: Mapping[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        where = self.source or self.name
        for field in ("N", "params_no_embed", "D"):
            v = getattr(self, field)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise UserError(f"{where}: field {field!r} must be a positive finite number, got {v!r}")
        for set_name, loss in self.losses.items():
            if not (isinstance(loss, (int, float)) and math.isfinite(loss) and loss > 0):
                raise UserError(
                    f"{where}: loss for validation set {set_name!r} must be positive and finite, got {loss!r}")
        for task, acc in (*self.accuracies.items(), *self.acc_norm.items()):
            if not (isinstance(acc, (int, float)) and math.isfinite(acc) and 0.0 <= acc <= 1.0):
                raise UserError(f"{where}: accuracy of task {task!r} must lie in [0, 1], got {acc!r}")
        for task, bpb in self.task_losses.items():
            if not (isinstance(bpb, (int, float)) and math.isfinite(bpb) and bpb > 0):
                raise UserError(f"{where}: task loss (bits per byte) of task {task!r} must be positive and finite, "
                                f"got {bpb!r}")
        object.__setattr__(self, "losses", _frozen(self.losses))
        object.__setattr__(
            self, "loss_intervals", _frozen({k: tuple(v) for k, v in self.loss_intervals.items()})
        )
        object.__setattr__(self, "accuracies", _frozen(self.accuracies))
        object.__setattr__(self, "task_losses", _frozen(self.task_losses))
        object.__setattr__(self, "acc_norm", _frozen(self.acc_norm))
        object.__setattr__(self, "hyperparameters", _frozen(self.hyperparameters))

    def averaged_tasks(self, metric: str) -> tuple[str, ...]:
        """The tasks whose mean error ``metric`` (``err_17`` / ``err_46``) is: those of the metric's
        list among the run's accuracies; for a run of the synthetic suite, which fills both with
        its suite's mean (``hyperparameters.eval.suite``), its synthetic tasks."""
        from scaling_jax.testbed.tasks import averaged_tasks

        synthetic = dict(self.hyperparameters.get("eval") or {}).get("suite") == "synthetic"
        return tuple(averaged_tasks(self.accuracies)["err_synthetic" if synthetic else metric])

    def missing_tasks(self, metric: str) -> tuple[str, ...]:
        """The tasks of ``metric``'s suite that its value does not average (none when it is None):
        the paper's list less the run's accuracies; for a synthetic-suite run, the suite's tasks
        it could not read (``hyperparameters.eval.missing``)."""
        from scaling_jax.testbed.tasks import SUITES

        if getattr(self, metric) is None:
            return ()
        ev = dict(self.hyperparameters.get("eval") or {})
        if ev.get("suite") == "synthetic":
            return tuple(ev.get("missing") or ())
        have = set(self.averaged_tasks(metric))
        return tuple(t for t in SUITES[metric] if t not in have)

    def loss(self, val_set: str) -> float:
        if val_set not in self.losses:
            raise KeyError(f"{self.name}: no loss on validation set {val_set!r}; it has {sorted(self.losses)}")
        return self.losses[val_set]

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for k in ("losses", "accuracies", "hyperparameters", "task_losses", "acc_norm"):
            d[k] = dict(d[k])
        d["loss_intervals"] = {k: list(v) for k, v in self.loss_intervals.items()}
        d["schema_version"] = SCHEMA_VERSION
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> "RunRecord":
        d = dict(d)
        version = d.pop("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise UserError(f"{source or 'record'}: schema_version {version} is not {SCHEMA_VERSION}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise UserError(f"{source or 'record'}: unknown field(s) {unknown}")
        missing = sorted({"name", "dataset", "model", "N", "params_no_embed", "D", "losses"} - set(d))
        if missing:
            raise UserError(f"{source or 'record'}: missing field(s) {missing}")
        if source:
            d["source"] = source
        return cls(**d)

    @classmethod
    def from_json(cls, text: str, source: str = "") -> "RunRecord":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{source or 'record'}: not valid JSON ({e})") from e
        if not isinstance(d, dict):
            raise UserError(f"{source or 'record'}: top level must be a JSON object")
        return cls.from_dict(d, source=source)


def partial_suites(runs: Iterable[RunRecord], metric: str) -> dict[str, tuple[str, ...]]:
    """Run name -> the tasks its ``metric`` lacks, for each run whose ``metric`` averages fewer tasks
    than its suite has (a task file was missing at eval time, or ``--tasks`` named a subset)."""
    return {r.name: miss for r in runs if (miss := r.missing_tasks(metric))}


def check_full_suites(runs: Iterable[RunRecord], metric: str, allow_partial: bool,
                      where: str) -> dict[str, tuple[str, ...]]:
    """``partial_suites`` of ``runs``; a UserError naming the runs and their missing tasks unless
    ``allow_partial``: a mean over fewer tasks is another quantity, which a fit of the error law
    would mix with the full means without a word."""
    partial = partial_suites(runs, metric)
    if partial and not allow_partial:
        named = "; ".join(f"{name} lacks {list(miss)}" for name, miss in list(partial.items())[:5])
        more = f"; and {len(partial) - 5} more run(s)" if len(partial) > 5 else ""
        raise UserError(f"{where}: {metric} of {len(partial)} run(s) averages only part of its task suite: "
                        f"{named}{more}. Evaluate the missing tasks (scaling-jax eval), or pass "
                        "--allow-partial-suites to fit these partial means with the full ones")
    return partial
