"""Load a testbed into an immutable table of :class:`RunRecord`.

Two layouts are read:
- the paper's release (``models/<name>.json`` + ``evals/evaluation_<name>_heavy.json`` +
  ``eval_metadata.csv``), and
- a folder of this project's own runs: any ``**/record.json`` written by ``scaling-jax train``.
Strict mode raises on the first bad file, naming it and the field; lenient mode skips bad
files with one warning that lists them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, Iterator, Mapping

from scaling_jax import paths
from scaling_jax.errors import UserError
from scaling_jax.testbed.schema import RunRecord
from scaling_jax.testbed.tasks import TASKS_17, mean_error, read_random_baselines


class TestbedError(UserError):
    """A testbed file is missing or malformed; the message names the file and field."""

    __test__ = False  # not a pytest class


@dataclasses.dataclass(frozen=True)
class Testbed:
    """An immutable, ordered table of runs plus the task metadata they were scored with."""

    __test__ = False

    runs: tuple[RunRecord, ...]
    random_baselines: Mapping[str, float] = dataclasses.field(default_factory=dict)
    root: str = ""
    skipped: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "random_baselines", MappingProxyType(dict(self.random_baselines)))

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.runs)

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(sorted({r.dataset for r in self.runs}))

    def select(self, **where: Any) -> "Testbed":
        """Runs whose attributes equal every given value, e.g. ``select(dataset="rpj", model="open_lm_1b")``."""
        runs = tuple(r for r in self.runs if all(getattr(r, k) == v for k, v in where.items()))
        return dataclasses.replace(self, runs=runs)

    def get(self, name: str) -> RunRecord:
        for r in self.runs:
            if r.name == name:
                return r
        raise KeyError(f"no run named {name!r} in testbed {self.root or '(in memory)'}")

    def _at(self, dataset: str, model: str, M: float, rtol: float) -> list[RunRecord]:
        return [r for r in self.runs if r.dataset == dataset and r.model == model and abs(r.M / M - 1) <= rtol]

    def has(self, dataset: str, model: str, M: float, rtol: float = 0.02) -> bool:
        """Whether a run of ``model`` on ``dataset`` at token multiplier ``M`` (within ``rtol``) exists."""
        return bool(self._at(dataset, model, M, rtol))

    def find(self, dataset: str, model: str, M: float, rtol: float = 0.02) -> RunRecord:
        """The run of ``model`` on ``dataset`` at token multiplier ``M`` (within ``rtol``)."""
        hits = self._at(dataset, model, M, rtol)
        if len(hits) != 1:
            raise KeyError(f"expected one run of {model} on {dataset} at M={M:g}, found {len(hits)}")
        return hits[0]


def val_set_name(path: str) -> str:
    """Name a validation set from its shard path: the parent folder, or a ``val_*`` file stem.

    ``training/eval_data/c4_val/shard-{0..10}.tar`` -> ``c4_val``;
    ``.../val_tok_mult/de-en/val_de-en_100.tar`` -> ``val_de-en_100``.
    """
    p = PurePosixPath(path)
    stem = p.name.split(".")[0]
    return stem if stem.startswith("val_") else p.parent.name


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TestbedError(f"{path}: file not found") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TestbedError(f"{path}: malformed or truncated JSON ({e.msg} at line {e.lineno})") from None


def _field(obj: Any, dotted: str, path: Path) -> Any:
    node = obj
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise TestbedError(f"{path}: missing field {dotted!r}")
        node = node[part]
    return node


def _number(obj: Any, dotted: str, path: Path, *, positive: bool = True) -> float:
    v = _field(obj, dotted, path)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
        kind = "positive finite" if positive else "finite"
        raise TestbedError(f"{path}: field {dotted!r} must be a {kind} number, got {v!r}")
    return v


def read_released_run(model_path: Path, eval_path: Path, baselines: Mapping[str, float]) -> RunRecord:
    """One model of the paper's release and its downstream evals."""
    m = _read_json(model_path)
    hp = _field(m, "hyperparameters", model_path)
    name = _field(m, "name", model_path)
    N = int(_number(m, "hyperparameters.params", model_path))
    losses, intervals = {}, {}
    results = _field(m, "results", model_path)
    if not isinstance(results, list) or not results:
        raise TestbedError(f"{model_path}: field 'results' must be a non-empty list")
    for i, res in enumerate(results):
        where = f"results[{i}]"
        val = _field(res, "val_data", model_path)
        if not isinstance(val, list) or not val:
            raise TestbedError(f"{model_path}: field '{where}.val_data' must be a non-empty list")
        set_name = val_set_name(val[0])
        loss = _number(res, "loss", model_path)
        if set_name in losses:
            raise TestbedError(f"{model_path}: validation set {set_name!r} appears twice in 'results'")
        losses[set_name] = loss
        lo, hi = res.get("loss_sequences_lower_95"), res.get("loss_sequences_upper_95")
        if lo is not None and hi is not None:
            intervals[set_name] = (float(lo), float(hi))
    ev = _read_json(eval_path)
    acc = _field(ev, "eval_metrics.icl", eval_path)
    if not isinstance(acc, Mapping):
        raise TestbedError(f"{eval_path}: field 'eval_metrics.icl' must be an object")
    for task, v in acc.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 1:
            raise TestbedError(f"{eval_path}: field 'eval_metrics.icl.{task}' must lie in [0, 1], got {v!r}")
    tasks_46 = [t for t in baselines if t in acc]
    try:
        err_17 = mean_error(acc, TASKS_17)
    except KeyError as e:
        raise TestbedError(f"{eval_path}: field 'eval_metrics.icl' lacks the 17-task subset: {e}") from None
    return RunRecord(
        name=name,
        dataset=_field(m, "dataset_name", model_path),
        model=PurePosixPath(str(hp.get("model", ""))).stem or name.split("-", 1)[1].rsplit("-", 1)[0],
        N=N,
        params_no_embed=int(_number(m, "hyperparameters.params_no_embed", model_path)),
        D=float(_number(m, "hyperparameters.tokens", model_path)),
        losses=losses,
        loss_intervals=intervals,
        accuracies=dict(acc),
        err_46=mean_error(acc, tasks_46) if tasks_46 else None,
        err_17=err_17,
        hyperparameters={k: v for k, v in hp.items() if isinstance(v, (int, float, str, bool))},
        source=str(model_path),
    )


def _released(root: Path, strict: bool) -> tuple[list[RunRecord], dict, list[str]]:
    meta = root / "eval_metadata.csv"
    try:
        baselines = dict(read_random_baselines(meta))
    except (FileNotFoundError, ValueError) as e:
        raise TestbedError(str(e)) from None
    runs, bad = [], []
    model_files = sorted((root / "models").glob("*.json"))
    if not model_files:
        raise TestbedError(f"{root / 'models'}: no model files (*.json)")
    for mp in model_files:
        ep = root / "evals" / f"evaluation_{mp.stem}_heavy.json"
        try:
            if not ep.is_file():
                raise TestbedError(f"{mp}: has no eval file {ep}")
            runs.append(read_released_run(mp, ep, baselines))
        except (TestbedError, ValueError) as e:
            if strict:
                raise TestbedError(str(e)) from None
            bad.append(str(e))
    return runs, baselines, bad


def _own_records(root: str, strict: bool) -> tuple[list[RunRecord], list[str]]:
    """Every ``record.json`` under ``root``, a local folder or ``gs://`` prefix."""
    runs, bad = [], []
    for p in paths.find(root, "record.json"):
        try:
            runs.append(RunRecord.from_json(paths.read_text(p), source=p))
        except (ValueError, TypeError) as e:
            if strict:
                raise TestbedError(str(e)) from None
            bad.append(str(e))
    return runs, bad


def load_testbed(path: str | Path | None = None, *, strict: bool = True) -> Testbed:
    """Load a testbed folder (see module docstring); ``path=None`` resolves it like the CLI."""
    from scaling_jax.testbed.fetch import resolve_testbed

    root = str(path).rstrip("/") if path is not None and paths.is_gcs(path) else resolve_testbed(path)
    if not paths.is_dir(root):
        raise TestbedError(f"{root}: testbed folder not found")
    baselines: dict = {}
    runs: list[RunRecord] = []
    bad: list[str] = []
    if not paths.is_gcs(root) and (root / "models").is_dir():
        runs, baselines, bad = _released(root, strict)
    own, bad_own = _own_records(str(root), strict)
    runs += own
    bad += bad_own
    if not runs and not bad:
        raise TestbedError(f"{root}: neither a released testbed (models/, evals/) nor a folder of record.json files")
    seen: dict[str, str] = {}
    unique = []
    for r in runs:
        if r.name in seen:
            msg = f"{r.source}: duplicate run {r.name!r} (also in {seen[r.name]})"
            if strict:
                raise TestbedError(msg)
            bad.append(msg)
            continue
        seen[r.name] = r.source
        unique.append(r)
    if bad:
        warnings.warn(f"skipped {len(bad)} bad testbed file(s):\n  " + "\n  ".join(bad), stacklevel=2)
    return Testbed(runs=tuple(unique), random_baselines=baselines, root=str(root), skipped=tuple(bad))
