"""The task list (a ``heavy.yaml``-style file) and the task files it names.

A task list is LLM-Foundry's ``icl_tasks:`` list: per task ``label``, ``dataset_uri`` (absolute,
``gs://``, or relative to the list's folder), ``icl_task_type`` (``multiple_choice``,
``language_modeling``, ``schema``), ``num_fewshot`` (a one-element list or an int), and optional
``continuation_delimiter`` (default ``' '``), ``example_delimiter`` (``'\n'``), ``has_categories``,
``prompt_string`` (text once before the few-shot examples, ``''``), ``prelimiter`` (text before
every example's context, ``''``; LLM-Foundry's older name ``question_prelimiter`` is read too) and
``fewshot_random_seed`` (the few-shot draws' seed, 1234), with LLM-Foundry's meanings
(eval/prompts.py). Any other field is refused by name: LLM-Foundry reads more (``batch_size``,
``metric_names``, ``max_seq_len``, ``hf_loading_vars``, ...), and silently ignoring one could score
a task otherwise than the list says. A task file holds one JSON object a line with the fields its
type needs; every bad line is a ``UserError`` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import yaml

from scaling_jax.data.store import json_lines
from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.paths import is_gcs, read_bytes

TYPES = ("multiple_choice", "language_modeling", "schema")
DEFAULT_LIST_ENV = "SCALING_JAX_ICL_TASKS"
FEWSHOT_SEED = 1234  # LLM-Foundry's default fewshot_random_seed
# The fields a task list entry may have; any other is refused by name.
FIELDS = ("label", "dataset_uri", "icl_task_type", "num_fewshot", "continuation_delimiter", "example_delimiter",
          "has_categories", "prompt_string", "prelimiter", "question_prelimiter", "fewshot_random_seed")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One task of a list. ``rows`` holds in-memory examples (the synthetic suite) instead of a file;
    ``bayes_accuracy`` is the best accuracy any model can expect, where known."""

    label: str
    task_type: str
    num_fewshot: int = 0
    dataset_uri: str = ""
    continuation_delimiter: str = " "
    example_delimiter: str = "\n"
    has_categories: bool = False
    prompt_string: str = ""
    prelimiter: str = ""
    fewshot_random_seed: int = FEWSHOT_SEED
    chance: float | None = None
    bayes_accuracy: float | None = None
    rows: tuple | None = dataclasses.field(default=None, repr=False, compare=False)
    token_text: bool = False  # rows hold token ids as text, read by tokenizers.IdTokenizer

    @property
    def prompt_rules(self) -> tuple:
        """Every field that shapes the prompts built from a file's rows (eval/prompts.py): the
        key under which a suite caches a task's encoding beside the file's hash."""
        return (self.task_type, self.num_fewshot, self.continuation_delimiter, self.example_delimiter,
                self.has_categories, self.prompt_string, self.prelimiter, self.fewshot_random_seed)


@dataclasses.dataclass(frozen=True)
class TaskData:
    spec: TaskSpec
    rows: list[dict[str, Any]]
    sha256: str


def default_list_path() -> Path:
    """The paper's list: ``$SCALING_JAX_ICL_TASKS``, else ``../shared/icl_tasks/heavy.yaml``."""
    path = Path(os.environ.get(DEFAULT_LIST_ENV) or Path.cwd().parent / "shared" / "icl_tasks" / "heavy.yaml")
    if not path.is_file():
        raise InputNotFound(f"default task list not found at {path}; set ${DEFAULT_LIST_ENV} to a heavy.yaml "
                            "or pass --tasks FILE")
    return path


def _field(entry: dict, key: str, where: str, kinds, default=dataclasses.MISSING):
    if key not in entry:
        if default is dataclasses.MISSING:
            raise UserError(f"{where}: missing field {key!r}")
        return default
    v = entry[key]
    if not isinstance(v, kinds) or (isinstance(v, bool) and kinds is not bool):
        raise UserError(f"{where}: field {key!r} has the wrong type: {v!r}")
    return v


def read_task_list(path: str | Path) -> list[TaskSpec]:
    """Every task of a ``heavy.yaml``-style file, ``dataset_uri`` resolved against its folder."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"task list {path}: not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{path}: not valid YAML ({e})") from None
    entries = doc.get("icl_tasks") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{path}: needs a non-empty list 'icl_tasks'")
    specs, seen = [], set()
    for i, e in enumerate(entries):
        where = f"{path}: icl_tasks[{i}]"
        if not isinstance(e, dict):
            raise UserError(f"{where}: must be a mapping, got {e!r}")
        label = _field(e, "label", where, str)
        where = f"{path}: task {label!r}"
        unknown = [k for k in e if k not in FIELDS]
        if unknown:
            raise UserError(f"{where}: unsupported field(s) {unknown}; a task may have {list(FIELDS)}")
        if label in seen:
            raise UserError(f"{where}: label used twice")
        seen.add(label)
        kind = _field(e, "icl_task_type", where, str)
        if kind not in TYPES:
            raise UserError(f"{where}: unknown icl_task_type {kind!r}; expected one of {list(TYPES)}")
        shots = _field(e, "num_fewshot", where, (int, list))
        if isinstance(shots, list):
            if len(shots) != 1:
                raise UserError(f"{where}: num_fewshot {shots}: give one value per task")
            shots = shots[0]
        if not isinstance(shots, int) or isinstance(shots, bool) or shots < 0:
            raise UserError(f"{where}: num_fewshot must be an integer >= 0, got {shots!r}")
        uri = _field(e, "dataset_uri", where, str)
        if not is_gcs(uri) and not Path(uri).is_absolute():
            uri = str(path.parent / uri)
        specs.append(TaskSpec(
            label=label, task_type=kind, num_fewshot=shots, dataset_uri=uri,
            continuation_delimiter=_field(e, "continuation_delimiter", where, str, " "),
            example_delimiter=_field(e, "example_delimiter", where, str, "\n"),
            has_categories=bool(_field(e, "has_categories", where, bool, False)),
            prompt_string=_field(e, "prompt_string", where, str, ""),
            prelimiter=_prelimiter(e, where),
            fewshot_random_seed=_field(e, "fewshot_random_seed", where, int, FEWSHOT_SEED)))
    return specs


def _prelimiter(entry: dict, where: str) -> str:
    """``prelimiter``, or LLM-Foundry's older name for it, ``question_prelimiter`` (not both)."""
    if "prelimiter" in entry and "question_prelimiter" in entry:
        raise UserError(f"{where}: both 'prelimiter' and 'question_prelimiter' are given; they name the same "
                        "setting, give one")
    key = "question_prelimiter" if "question_prelimiter" in entry else "prelimiter"
    return _field(entry, key, where, str, "")


def select(specs: list[TaskSpec], labels: list[str], where: str) -> list[TaskSpec]:
    by_label = {s.label: s for s in specs}
    unknown = [x for x in labels if x not in by_label]
    if unknown:
        raise UserError(f"{where}: unknown task label(s) {unknown}; the list has {sorted(by_label)}")
    return [by_label[x] for x in labels]


def _check_row(row: Any, spec: TaskSpec, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise UserError(f"{where}: must be a JSON object")

    def need(key, kind):
        if key not in row:
            raise UserError(f"{where}: missing field {key!r} for a {spec.task_type} task")
        if not isinstance(row[key], kind) or isinstance(row[key], bool):
            raise UserError(f"{where}: field {key!r} has the wrong type: {row[key]!r}")
        return row[key]

    if spec.task_type == "language_modeling":
        need("context", str), need("continuation", str)
    else:
        options_key = "choices" if spec.task_type == "multiple_choice" else "context_options"
        need("query" if spec.task_type == "multiple_choice" else "continuation", str)
        options = need(options_key, list)
        if not options:
            raise UserError(f"{where}: field {options_key!r} is empty")
        if not all(isinstance(c, str) for c in options):
            raise UserError(f"{where}: field {options_key!r} must hold strings")
        gold = need("gold", int)
        if not 0 <= gold < len(options):
            raise UserError(f"{where}: gold index {gold} is out of range for {len(options)} {options_key}")
    if spec.has_categories and not isinstance(row.get("category"), str):
        raise UserError(f"{where}: missing field 'category' (the task has has_categories: true)")
    return row


def parse_rows(data: bytes, spec: TaskSpec, where: str) -> list[dict[str, Any]]:
    rows = [_check_row(row, spec, f"{where}:{n}") for n, row in json_lines(data.decode("utf-8").splitlines(), where)]
    if not rows:
        raise UserError(f"{where}: no examples")
    return rows


_INLINE: dict[int, TaskData] = {}


def load_task(spec: TaskSpec) -> TaskData | None:
    """The task's examples, checked; None (with a warning naming the file) when it is missing.
    In-memory rows are checked and hashed once per spec object (a suite is scored many times in
    a run); files are read every time, so an edited file is never stale."""
    if spec.rows is not None:
        hit = _INLINE.get(id(spec))
        if hit is not None and hit.spec is spec:
            return hit
        rows = [_check_row(r, spec, f"{spec.label}[{i}]") for i, r in enumerate(spec.rows)]
        digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
        _INLINE[id(spec)] = TaskData(spec, rows, digest)
        return _INLINE[id(spec)]
    try:
        data = read_bytes(spec.dataset_uri)
    except InputNotFound:
        warnings.warn(f"task {spec.label!r}: file {spec.dataset_uri} not found; skipped", stacklevel=2)
        return None
    return TaskData(spec, parse_rows(data, spec, spec.dataset_uri), hashlib.sha256(data).hexdigest())
