"""Sweep specs: a base train config, a grid of model sizes × multipliers × datasets × seeds,
and the fit recipe that says which runs form the fit set and which are held-out targets.

A spec is YAML, typed like the train configs (unknown keys are errors that name the file and
the dotted key). Expansion turns it into :class:`Run` rows, each with its full
:class:`~scaling_jax.train.config.TrainConfig`, N as the paper counts it, D = M·N (or the
given tokens), C = 6·N·D and a role (``fit``, ``target``, ``other``; ``trunk`` for a WSD trunk). A
block with ``branches: true`` becomes, per model, dataset and seed, one WSD trunk and one branch
per multiplier (``train/branches.py``), each branch a run in ``<trunk>/branches/``. Every check (unknown
preset, M ≤ 0, a fit set that cannot determine Eq. 4, two runs in one folder, runs that
disagree on vocabulary or sequence length) runs here, before anything trains.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Literal, Mapping

from scaling_jax import paths
from scaling_jax.config import ConfigError, from_dict, merge, read_mapping, to_dict
from scaling_jax.testbed.schema import ComputeAxes
from scaling_jax.train.config import TrainConfig, model_config

ROLES = ("fit", "target", "other")
NAME_FIELDS = ("dataset", "model", "M", "seed")
MIN_FIT_POINTS = 5  # Eq. 4 has five parameters (E, a, b, eta and the scale)


@dataclasses.dataclass(frozen=True)
class Block:
    """One rectangle of the grid: every model × every multiplier (or token budget) × the datasets."""

    models: tuple[str, ...]
    multipliers: tuple[float, ...] = ()
    tokens: tuple[float, ...] = ()
    datasets: tuple[str, ...] = ()  # empty: every dataset of the spec
    set: dict[str, Any] = dataclasses.field(default_factory=dict)
    seeds: tuple[int, ...] = ()  # empty: the spec's seeds (cheap fit runs may take more than targets)
    branches: bool = False  # one WSD trunk per model (and dataset, seed), its multipliers decay branches of it


@dataclasses.dataclass(frozen=True)
class Select:
    """A run selector in a recipe: a model at multiplier M (``max``: its largest M), optionally one dataset."""

    model: str
    M: float | Literal["max"]
    dataset: str = ""


@dataclasses.dataclass(frozen=True)
class RecipeSpec:
    """Which runs fit Eq. 4 and Eq. 5, which are the targets, and what they are scored on."""

    name: str
    val_set: str
    metric: str = "err_46"
    loss_fit: tuple[Select, ...] = ()
    error_fit: tuple[Select, ...] = ()  # empty: the loss fit's runs
    targets: tuple[Select, ...] = ()


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    name: str
    base: str
    out: str
    grid: tuple[Block, ...]
    recipe: RecipeSpec | None = None
    run_name: str = "{dataset}-{model}-{M:g}"
    seeds: tuple[int, ...] = (0,)
    datasets: dict[str, dict[str, Any]] = dataclasses.field(default_factory=lambda: {"synthetic": {}})
    set: dict[str, Any] = dataclasses.field(default_factory=dict)
    throughput: dict[str, float] = dataclasses.field(default_factory=dict)  # model -> tokens/s, for estimates
    source: str = ""  # the spec file, for messages and relative paths


@dataclasses.dataclass(frozen=True)
class Run(ComputeAxes):
    """One run of a sweep, with everything ``train`` needs and ``plan`` prints."""

    name: str
    model: str
    dataset: str
    seed: int
    N: int
    D: float
    steps: int
    role: str
    config: TrainConfig
    out: str  # the run folder: local or gs://
    kind: str = "run"  # run, trunk (a WSD trunk: no record) or branch (of the trunk in ``trunk``)
    trunk: str = ""  # a branch's trunk folder
    start_step: int = 0  # a branch's decay start: the trunk's step it starts from
    step_tokens: int = 0  # tokens per optimizer step

    @property
    def trained_C(self) -> float:
        """The compute this run's own training costs, 6·N per token of its steps: a branch's decay only."""
        return 6.0 * self.N * (self.steps - self.start_step) * self.step_tokens

    def row(self) -> dict[str, Any]:
        """The ``sweep plan --json`` row."""
        tree = {"kind": self.kind, "trunk": self.trunk, "start_step": self.start_step,
                "trained_C": self.trained_C} if self.kind != "run" else {}
        return {"name": self.name, "model": self.model, "dataset": self.dataset, "N": self.N,
                "D": self.D, "M": self.M, "C": self.C, "role": self.role, **tree}


def nested(dotted: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``{"optimizer.lr": 1e-3, "budget": {"global_batch": 8}}`` -> nested mapping; errors name ``where``."""
    if not isinstance(dotted, Mapping):
        raise ConfigError(f"{where}: expected a mapping of dotted keys to values, got {type(dotted).__name__}")
    out: dict[str, Any] = {}
    for key, value in dotted.items():
        parts = str(key).split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = nested(value, f"{where}.{key}") if isinstance(value, Mapping) else value
    return out


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> SweepSpec:
    """Read a sweep spec YAML (plus already parsed overrides); errors name the file and key."""
    data = merge(read_mapping(path, "sweep spec"), overrides or {})
    spec = from_dict(SweepSpec, {**data, "source": str(path)}, where=str(path))
    return _checked(spec)


def _checked(spec: SweepSpec) -> SweepSpec:
    where = spec.source or spec.name
    if not spec.grid:
        raise ConfigError(f"{where}: grid: needs at least one block")
    if not spec.seeds:
        raise ConfigError(f"{where}: seeds: needs at least one seed")
    _check_seeds(spec.seeds, f"{where}: seeds")
    if not spec.datasets:
        raise ConfigError(f"{where}: datasets: needs at least one dataset")
    for i, b in enumerate(spec.grid):
        at = f"{where}: grid[{i}]"
        if not b.models:
            raise ConfigError(f"{at}.models: needs at least one model")
        if bool(b.multipliers) == bool(b.tokens):
            raise ConfigError(f"{at}: give exactly one of multipliers and tokens")
        for key in ("multipliers", "tokens"):
            for v in getattr(b, key):
                if not (math.isfinite(v) and v > 0):
                    raise ConfigError(f"{at}.{key}: {v!r} must be a positive number (M = D/N > 0)")
        _check_seeds(b.seeds, f"{at}.seeds")
        unknown = [d for d in b.datasets if d not in spec.datasets]
        if unknown:
            raise ConfigError(f"{at}.datasets: {unknown} are not in datasets {sorted(spec.datasets)}")
    try:
        spec.run_name.format(dataset="d", model="m", M=1.0, seed=0)
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(f"{where}: run_name {spec.run_name!r}: fields are {NAME_FIELDS}: {e}") from e
    for model, tps in spec.throughput.items():
        if not (math.isfinite(tps) and tps > 0):
            raise ConfigError(f"{where}: throughput.{model}: {tps!r} tokens/s must be positive")
    return spec


def _check_seeds(seeds: tuple[int, ...], at: str) -> None:
    if any(s < 0 for s in seeds) or len(set(seeds)) < len(seeds):
        raise ConfigError(f"{at}: {list(seeds)} must be distinct non-negative integers")


def base_dict(spec: SweepSpec) -> dict[str, Any]:
    """The base train config as data (its path relative to the spec file)."""
    base = Path(spec.base)
    if not base.is_absolute() and spec.source:
        base = Path(spec.source).parent / base
    if not base.is_file():
        raise ConfigError(f"{spec.source}: base: train config {base} not found")
    return read_mapping(base)


def _known_model(name: str) -> bool:
    from scaling_jax.model.config import available_models

    return name in available_models() or Path(name).is_file()


def expand(spec: SweepSpec) -> list[Run]:
    """Every run of the spec, in grid order, with its config, N, D, steps and role; all checks first."""
    where = spec.source or spec.name
    base = base_dict(spec)
    runs: list[Run] = []
    for i, b in enumerate(spec.grid):
        for ds in b.datasets or tuple(spec.datasets):
            for model in b.models:
                if not _known_model(model):
                    from scaling_jax.model.config import available_models

                    raise ConfigError(f"{where}: grid[{i}].models: {model!r} is not a model preset "
                                      f"(presets: {', '.join(available_models())})")
                if b.branches:
                    for seed in b.seeds or spec.seeds:
                        runs += _tree(spec, base, b, ds, model, seed, f"{where}: grid[{i}]")
                    continue
                for amount in b.multipliers or b.tokens:
                    for seed in b.seeds or spec.seeds:
                        runs.append(_run(spec, base, b, ds, model, amount, seed, f"{where}: grid[{i}]"))
    _check_runs(spec, runs)
    return _with_wandb(spec, _with_roles(spec, runs))


def _config(spec, base, block: Block, ds, model, amount, seed, at, **budget_fields) -> TrainConfig:
    budget = {"multiplier": float(amount), "tokens": None} if block.multipliers else \
        {"tokens": float(amount), "multiplier": None}
    data = merge(base, nested(spec.set, f"{at} set"))
    data = merge(data, nested(spec.datasets[ds] or {}, f"{spec.source}: datasets.{ds}"))
    data = merge(data, nested(block.set, f"{at}.set"))
    if block.branches:
        schedule = (data.get("optimizer") or {}).get("schedule", "wsd")
        if schedule != "wsd":
            raise ConfigError(f"{at}: branches: true trains WSD trunks, but optimizer.schedule is {schedule!r}")
        data = merge(data, {"optimizer": {"schedule": "wsd"}})
    data = merge(data, {"seed": seed, "model": {"name": model}, "data": {"name": ds},
                        "budget": {**budget, **budget_fields}})
    return from_dict(TrainConfig, data, where=f"{at} ({ds}, {model}, {amount:g})")


def _run(spec, base, block: Block, ds, model, amount, seed, at) -> Run:
    cfg = _config(spec, base, block, ds, model, amount, seed, at)
    from scaling_jax.model.counts import paper_params
    from scaling_jax.train.config import budget as steps_of

    mc = model_config(cfg)
    N = paper_params(mc)
    bud = steps_of(cfg, N, mc.seq_len)
    D = float(round(bud.D))
    name = spec.run_name.format(dataset=ds, model=model, M=D / N, seed=seed)
    cfg = dataclasses.replace(cfg, name=name)
    return Run(name=name, model=model, dataset=ds, seed=seed, N=N, D=D, steps=bud.steps, role="other",
               config=cfg, out=paths.join(spec.out, name), step_tokens=bud.tokens_per_step)


class _Word(str):
    """A word in a run name pattern's place of a number (``{M:g}`` -> ``trunk``)."""

    def __format__(self, spec: str) -> str:
        return str(self)


def _tree(spec, base, block: Block, ds, model, seed, at) -> list[Run]:
    """A ``branches: true`` block's runs of one model, dataset and seed: the trunk (the run name with
    ``trunk`` for M, so its folder stays when multipliers are added), then a branch per
    multiplier (or token budget) in its folder."""
    from scaling_jax.model.counts import paper_params
    from scaling_jax.train import branches

    amounts = sorted(block.multipliers or block.tokens)
    cfg = _config(spec, base, block, ds, model, amounts[-1], seed, at, branches=list(amounts))
    mc = model_config(cfg)
    N = paper_params(mc)
    try:
        plan = branches.trunk_plan(cfg, N, mc.seq_len)
    except ConfigError as e:
        raise ConfigError(f"{at} ({ds}, {model}): {e}") from e
    names = [spec.run_name.format(dataset=ds, model=model, M=round(b.D) / N, seed=seed) for b in plan.branches]
    name = spec.run_name.format(dataset=ds, model=model, M=_Word("trunk"), seed=seed)  # whatever its multipliers
    trunk = Run(name=name, model=model, dataset=ds, seed=seed, N=N, D=plan.budget().D, steps=plan.end, role="trunk",
                config=dataclasses.replace(cfg, name=name), out=paths.join(spec.out, name), kind="trunk",
                step_tokens=plan.tokens_per_step)
    return [trunk] + [Run(name=name, model=model, dataset=ds, seed=seed, N=N, D=float(round(b.D)), steps=b.steps,
                          role="other", config=branches.branch_config(cfg, b.budget, name),
                          out=branches.folder(trunk.out, b), kind="branch", trunk=trunk.out,
                          start_step=b.decay_start, step_tokens=plan.tokens_per_step)
                      for name, b in zip(names, plan.branches)]


def _check_runs(spec: SweepSpec, runs: list[Run]) -> None:
    where = spec.source or spec.name
    seen: dict[str, Run] = {}
    for r in runs:
        if r.name in seen:
            raise ConfigError(f"{where}: runs {r.name!r} ({r.model}, M={r.M:g}, seed {r.seed}) and "
                              f"({seen[r.name].model}, M={seen[r.name].M:g}, seed {seen[r.name].seed}) would "
                              f"share the output folder {r.out}; add the differing fields to run_name")
        seen[r.name] = r
    names = sorted(seen)
    for a in names:  # a run folder inside another run's folder
        for b in names:
            if a != b and Path(b).is_relative_to(Path(a)):
                raise ConfigError(f"{where}: run folder {paths.join(spec.out, b)} lies inside run folder "
                                  f"{paths.join(spec.out, a)}; choose a run_name that keeps them apart")
    shapes = {}
    for r in runs:
        mc = model_config(r.config)
        shapes.setdefault((mc.vocab_size, mc.seq_len), r)
    if len(shapes) > 1:
        (va, sa), ra = next(iter(shapes.items()))
        (vb, sb), rb = list(shapes.items())[1]
        raise ConfigError(f"{where}: runs disagree on vocabulary/sequence length: {ra.name} has vocab_size={va}, "
                          f"seq_len={sa} but {rb.name} has vocab_size={vb}, seq_len={sb}; one law needs one "
                          "tokenizer and one context length")


def select(runs: list[Run], sel: Select, where: str) -> list[Run]:
    """The runs a recipe selector names (one per dataset and seed); an error if it names none."""
    pool = [r for r in runs if r.model == sel.model and (not sel.dataset or r.dataset == sel.dataset)
            and r.kind != "trunk"]
    if sel.M == "max":
        picked = []
        for key in sorted({(r.dataset, r.seed) for r in pool}):
            group = [r for r in pool if (r.dataset, r.seed) == key]
            picked.append(max(group, key=lambda r: r.M))
    else:
        picked = [r for r in pool if math.isclose(r.M, float(sel.M), rel_tol=1e-3)]
    if not picked:
        raise ConfigError(f"{where}: no run of the grid is {sel.model} at M={sel.M}"
                          f"{' on ' + sel.dataset if sel.dataset else ''}")
    return picked


def recipe_runs(spec: SweepSpec, runs: list[Run]) -> dict[str, list[Run]]:
    """``{"loss_fit": [...], "error_fit": [...], "targets": [...]}`` runs of the spec's recipe."""
    rec, where = spec.recipe, f"{spec.source or spec.name}: recipe"
    out = {key: [r for i, s in enumerate(getattr(rec, key)) for r in select(runs, s, f"{where}.{key}[{i}]")]
           for key in ("loss_fit", "error_fit", "targets")}
    if not rec.error_fit:
        out["error_fit"] = out["loss_fit"]
    return out


def _with_roles(spec: SweepSpec, runs: list[Run]) -> list[Run]:
    if spec.recipe is None:
        return runs
    chosen = recipe_runs(spec, runs)
    where = f"{spec.source or spec.name}: recipe"
    if not chosen["targets"]:
        raise ConfigError(f"{where}.targets: needs at least one held-out target")
    for ds in {r.dataset for r in chosen["loss_fit"]} | {r.dataset for r in chosen["targets"]}:
        fit = [r for r in chosen["loss_fit"] if r.dataset == ds]
        Ms = {round(r.M, 6) for r in fit}
        if len(fit) < MIN_FIT_POINTS or len(Ms) < 2:
            raise ConfigError(f"{where}.loss_fit: {len(fit)} run(s) at {len(Ms)} multiplier(s) on {ds!r} cannot "
                              f"determine Eq. 4; it needs at least {MIN_FIT_POINTS} runs and 2 multipliers")
    fit_names = {r.name for r in chosen["loss_fit"] + chosen["error_fit"]}
    target_names = {r.name for r in chosen["targets"]}
    both = fit_names & target_names
    if both:
        raise ConfigError(f"{where}: run(s) {sorted(both)} are both fitted and held out as targets")
    role = {**{n: "fit" for n in fit_names}, **{n: "target" for n in target_names}}
    return [dataclasses.replace(r, role=role.get(r.name, "trunk" if r.kind == "trunk" else "other")) for r in runs]


def _with_wandb(spec: SweepSpec, runs: list[Run]) -> list[Run]:
    """Runs tracked by W&B (``logging.wandb.mode`` not disabled) grouped by the sweep's name and
    typed by their role, unless the config names a group or job type itself."""
    out = []
    for r in runs:
        wb = r.config.logging.wandb
        if wb.mode != "disabled":
            wb = dataclasses.replace(wb, group=wb.group or spec.name, job_type=wb.job_type or r.role)
            r = dataclasses.replace(r, config=dataclasses.replace(
                r.config, logging=dataclasses.replace(r.config.logging, wandb=wb)))
        out.append(r)
    return out


def recipe_json(spec: SweepSpec, runs: list[Run]) -> dict[str, Any]:
    """The recipe as run names, for ``sweep collect`` to write beside the records."""
    chosen = recipe_runs(spec, runs)
    rec = spec.recipe
    return {"name": rec.name, "val_set": rec.val_set, "metric": rec.metric, "sweep": spec.name,
            **{k: [r.name for r in v] for k, v in chosen.items()}}


def config_dict(run: Run) -> dict[str, Any]:
    """The run's train config as plain data (what ``sweep run`` writes for ``train`` to read)."""
    return to_dict(run.config)
