"""The paper's default fitting recipe (Gadre et al. 2024, Table 1) as data and selectors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping

from scaling_jax.errors import UserError
from scaling_jax.testbed import RunRecord, Testbed

LOSS_VAL_SET = "c4_val"
SMALL_MODELS = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")
# Eq. 4 is fitted on the four small models at M = 20 plus the smallest at M = 320.
LOSS_FIT = tuple((m, 20.0) for m in SMALL_MODELS) + (("d=96_l=8_h=4", 320.0),)
# Eq. 5 adds the 1.4B model at M = 20.
ERROR_FIT = LOSS_FIT + (("open_lm_1b", 20.0),)


def loss_fit_runs(tb: Testbed, dataset: str) -> tuple[RunRecord, ...]:
    return tuple(tb.find(dataset, m, M) for m, M in LOSS_FIT)


def error_fit_runs(tb: Testbed, dataset: str) -> tuple[RunRecord, ...]:
    return tuple(tb.find(dataset, m, M) for m, M in ERROR_FIT)


def targets(tb: Testbed, dataset: str) -> tuple[RunRecord, ...]:
    """The held-out extrapolations: 1.4B at the largest M of the set, 6.9B at M = 20."""
    big = tb.select(dataset=dataset, model="open_lm_1b").runs
    if not big:
        raise UserError(f"{tb.root}: no open_lm_1b runs for {dataset!r}: the recipe's targets are missing")
    return (max(big, key=lambda r: r.M), tb.find(dataset, "open_lm_7b", 20.0))


def missing_runs(tb: Testbed, dataset: str) -> list[str]:
    """The recipe's fit runs and targets (model at M) that ``tb`` lacks for ``dataset``."""
    wanted = ERROR_FIT + (("open_lm_7b", 20.0),)
    missing = [f"{m} at M={M:g}" for m, M in wanted if not tb.has(dataset, m, M)]
    if not tb.select(dataset=dataset, model="open_lm_1b").runs:
        missing.append("open_lm_1b at its largest M")
    return missing


def check_recipe_runs(tb: Testbed, dataset: str) -> None:
    """Raise a UserError listing what the recipe needs from ``dataset`` and ``tb`` lacks."""
    missing = missing_runs(tb, dataset)
    if missing:
        raise UserError(f"{tb.root or 'testbed'}: training set {dataset!r} lacks the paper recipe's run(s) "
                        f"{missing}; reproduce and posterior need the released testbed's runs")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A fitting recipe resolved on a testbed: per training set, the runs that fit Eq. 4 and
    Eq. 5 and the held-out targets, with the validation set and error metric they are read on.
    The paper's Table 1 is one (:func:`paper_recipe`); a sweep's spec gives others
    (:func:`named_recipe`, from the ``recipes/<name>.json`` that ``sweep collect`` writes)."""

    name: str
    val_set: str
    metric: str
    loss_fit: Mapping[str, tuple[RunRecord, ...]]
    error_fit: Mapping[str, tuple[RunRecord, ...]]
    targets: Mapping[str, tuple[RunRecord, ...]]

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(self.targets)

    def loss(self, run: RunRecord) -> float:
        return run.loss(self.val_set)

    def error(self, run: RunRecord) -> float | None:
        return getattr(run, self.metric)


def paper_recipe(tb: Testbed) -> Recipe:
    """Table 1 on every training set of ``tb``; a UserError lists what a set lacks."""
    for ds in tb.datasets:
        check_recipe_runs(tb, ds)
    return Recipe("paper", LOSS_VAL_SET, "err_17",
                  loss_fit={ds: loss_fit_runs(tb, ds) for ds in tb.datasets},
                  error_fit={ds: error_fit_runs(tb, ds) for ds in tb.datasets},
                  targets={ds: targets(tb, ds) for ds in tb.datasets})


RECIPE_KEYS = ("name", "val_set", "metric", "loss_fit", "error_fit", "targets")
METRICS = ("err_46", "err_17")


def named_recipe(tb: Testbed, data: Mapping, source: str) -> Recipe:
    """A recipe given as run names (``sweep collect``'s ``recipes/<name>.json``), checked against ``tb``."""
    missing = [k for k in RECIPE_KEYS if k not in data]
    if missing:
        raise UserError(f"{source}: missing key(s) {missing}")
    if data["metric"] not in METRICS:
        raise UserError(f"{source}: metric {data['metric']!r} is not one of {METRICS}")
    by_name = {r.name: r for r in tb.runs}
    groups: dict[str, dict[str, list[RunRecord]]] = {}
    for key in ("loss_fit", "error_fit", "targets"):
        absent = [n for n in data[key] if n not in by_name]
        if absent:
            raise UserError(f"{source}: {key}: run(s) {absent} have no record in {tb.root or 'the testbed'} "
                            "(not finished or not collected yet: see `scaling-jax sweep status`)")
        for n in data[key]:
            groups.setdefault(key, {}).setdefault(by_name[n].dataset, []).append(by_name[n])
    for key in ("loss_fit", "error_fit", "targets"):
        for run in (r for rs in groups.get(key, {}).values() for r in rs):
            if data["val_set"] not in run.losses:
                raise UserError(f"{source}: run {run.name} has no loss on val_set {data['val_set']!r} "
                                f"(it has {sorted(run.losses)})")
    for run in (r for rs in groups.get("error_fit", {}).values() for r in rs):
        if getattr(run, data["metric"]) is None:
            raise UserError(f"{source}: error-fit run {run.name} has no {data['metric']} (it was trained "
                            "without downstream evaluation: set the train config's eval.tasks)")
    freeze = {k: {ds: tuple(rs) for ds, rs in groups.get(k, {}).items()} for k in ("loss_fit", "error_fit", "targets")}
    return Recipe(data["name"], data["val_set"], data["metric"], **freeze)


def load_recipe(tb: Testbed, name: str) -> Recipe:
    """``paper`` (Table 1), a recipe file path, or a name under ``<testbed>/recipes/``."""
    if name == "paper":
        return paper_recipe(tb)
    path = Path(name) if name.endswith(".json") else Path(tb.root or ".") / "recipes" / f"{name}.json"
    if not path.is_file():
        found = sorted(p.stem for p in (Path(tb.root or ".") / "recipes").glob("*.json"))
        raise UserError(f"--recipe {name}: no recipe file {path} (recipes in this testbed: {['paper', *found]})")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON: {e}") from e
    return named_recipe(tb, data, str(path))
