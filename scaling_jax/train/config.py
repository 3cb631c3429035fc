"""The training run's typed config, one section per concern, loaded from YAML + overrides.

The budget is tokens D or a multiplier M (D = M·N, N counted as the paper counts it);
``steps`` turns it into optimizer steps of ``global_batch × seq_len`` tokens.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from scaling_jax.config import (
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    ConfigError,
    FieldError,
    Range,
    check_ranges,
    load_yaml,
)
from scaling_jax.data.pipeline import CorpusConfig


@dataclasses.dataclass(frozen=True)
class ModelSection:
    """A model preset (``scaling_jax/model/presets/<name>.yaml``) or a YAML path, and field overrides."""

    name: str = "tiny_d64"
    set: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class ValSet:
    """An extra validation set: the ``val`` split of another corpus."""

    name: str
    corpus: CorpusConfig


@dataclasses.dataclass(frozen=True)
class DataSection:
    """Training corpus (its ``val`` split is the validation set named ``name``) and loader.
    ``device_prefetch``: batches placed on the devices ahead of the step (``train/prefetch.py``;
    null: 2 on a GPU or TPU, none on the CPU)."""

    name: str = "synthetic"
    corpus: CorpusConfig = CorpusConfig()
    extra_val: tuple[ValSet, ...] = ()
    val_sequences: int = 256
    seed: int = 0
    threads: int = 2
    prefetch: int = 4
    device_prefetch: int | None = None

    def __post_init__(self):
        check_ranges(self, optional=("device_prefetch",), val_sequences=POSITIVE_INT, seed=NON_NEGATIVE_INT,
                     threads=POSITIVE_INT, prefetch=NON_NEGATIVE_INT, device_prefetch=NON_NEGATIVE_INT)


BETA = Range(lo=0, hi=1, hi_open=True)  # an Adam moment's decay rate
MESH_SIZE = Range(lo=1, integer=True, extra=(-1,))


SCHEDULES = ("cosine", "wsd")
DECAY_SHAPES = ("linear", "sqrt", "cosine")


@dataclasses.dataclass(frozen=True)
class WsdSection:
    """Warmup-stable-decay: the last ``decay_fraction`` of a run's steps (rounded to 4 decimals,
    at least one step) decay from ``lr`` to ``cooldown_lr`` as ``1 - t`` (linear), ``1 - sqrt(t)``
    (sqrt, Hägele et al. 2024) or ``(1 + cos(pi t)) / 2`` (cosine), t from 0 to 1 over the decay."""

    decay_fraction: float = 0.2
    decay_shape: str = "sqrt"

    def __post_init__(self):
        check_ranges(self, decay_fraction=Range(lo=0, hi=1, lo_open=True))
        if self.decay_shape not in DECAY_SHAPES:
            raise FieldError("decay_shape", f"must be one of {', '.join(DECAY_SHAPES)}, got {self.decay_shape!r}")


@dataclasses.dataclass(frozen=True)
class OptimizerSection:
    """AdamW with linear warm-up, then cosine decay to ``cooldown_lr`` over the run (the paper's
    recipe) or, with ``schedule: wsd``, the stable ``lr`` until the run's last ``wsd.decay_fraction``."""

    lr: float = 3e-3
    cooldown_lr: float = 3e-5
    warmup: int = 400
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.033
    clip: float = 1.0
    z_loss: float = 1e-4
    schedule: str = "cosine"
    wsd: WsdSection = WsdSection()

    def __post_init__(self):
        check_ranges(self, lr=POSITIVE, cooldown_lr=NON_NEGATIVE, warmup=NON_NEGATIVE_INT, b1=BETA, b2=BETA,
                     eps=POSITIVE, weight_decay=NON_NEGATIVE, clip=POSITIVE, z_loss=NON_NEGATIVE)
        if self.schedule not in SCHEDULES:
            raise FieldError("schedule", f"must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")


@dataclasses.dataclass(frozen=True)
class MeshSection:
    """Mesh axis sizes; one may be -1 to take the remaining devices."""

    data: int = -1
    fsdp: int = 1
    tensor: int = 1

    def __post_init__(self):
        check_ranges(self, data=MESH_SIZE, fsdp=MESH_SIZE, tensor=MESH_SIZE)
        if [self.data, self.fsdp, self.tensor].count(-1) > 1:
            raise FieldError("fsdp" if self.fsdp == -1 else "tensor", "at most one mesh axis may be -1")


@dataclasses.dataclass(frozen=True)
class BudgetSection:
    """Tokens D, or multiplier M (D = M·N); global batch in sequences; micro-batches per step.

    ``branches`` (a WSD trunk, ``train/branches.py``): more budgets, in the unit of the one set
    (multipliers with ``multiplier``, token counts with ``tokens``); with the run's own budget
    they are the runs that branch off one stable trunk, each decaying from the trunk's
    checkpoint at its decay start. ``branch_of``: this run is such a branch of the trunk in that
    folder (relative: to this run's folder) and starts from its checkpoint."""

    tokens: float | None = None
    multiplier: float | None = None
    global_batch: int = 256
    grad_accum: int = 1
    branches: tuple[float, ...] = ()
    branch_of: str = ""

    def __post_init__(self):
        if (self.tokens is None) == (self.multiplier is None):
            raise ValueError("set exactly one of budget.tokens and budget.multiplier")
        check_ranges(self, optional=("tokens", "multiplier"), tokens=POSITIVE, multiplier=POSITIVE,
                     global_batch=POSITIVE_INT, grad_accum=POSITIVE_INT)
        if self.global_batch % self.grad_accum:
            raise FieldError("global_batch", f"{self.global_batch} is not a multiple of grad_accum {self.grad_accum}")
        for i, b in enumerate(self.branches):
            if not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0):
                raise FieldError(f"branches[{i}]", f"must be a positive budget, got {b!r}")
        if self.branches and self.branch_of:
            raise FieldError("branch_of", "a branch cannot have branches of its own (budget.branches is set)")


@dataclasses.dataclass(frozen=True)
class CheckpointSection:
    """Save every ``every`` steps (and at the end); keep the last ``keep``."""

    every: int = 1000
    keep: int = 3
    async_save: bool = True

    def __post_init__(self):
        check_ranges(self, every=POSITIVE_INT, keep=POSITIVE_INT)


WANDB_MODES = ("online", "offline", "disabled")
WANDB_NAME_CHARS = "/\\#?%:"  # W&B refuses these in project, entity and group names


@dataclasses.dataclass(frozen=True)
class WandbSection:
    """Weights & Biases tracking (``train/wandb_log.py``; ``pip install 'scaling_jax[wandb]'``):
    ``mode`` online, offline (run folders to ``wandb sync`` later) or disabled (the default:
    nothing imported, nothing written); empty strings leave W&B's defaults."""

    mode: str = "disabled"
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    tags: tuple[str, ...] = ()

    def __post_init__(self):
        if self.mode not in WANDB_MODES:
            raise FieldError("mode", f"must be one of {', '.join(WANDB_MODES)}, got {self.mode!r}")
        for name in ("project", "entity", "group"):
            bad = sorted(set(getattr(self, name)) & set(WANDB_NAME_CHARS))
            if bad:
                raise FieldError(name, f"{getattr(self, name)!r} contains {''.join(bad)!r}, which W&B refuses")
        for i, tag in enumerate(self.tags):
            if not 0 < len(tag) <= 64:
                raise FieldError(f"tags[{i}]", f"must be 1 to 64 characters (W&B's limit), got {tag!r}")


@dataclasses.dataclass(frozen=True)
class LoggingSection:
    """Train metrics every ``every`` steps; validation every ``val_every`` (0: only at the end);
    ``wandb``: Weights & Biases tracking. ``peak_flops``: a device's dense bf16 FLOP/s, for the
    MFU of devices not in ``train/peak.py``'s table (or to override it)."""

    every: int = 10
    val_every: int = 0
    progress: bool = True
    tensorboard: bool = True
    wandb: WandbSection = WandbSection()
    peak_flops: float | None = None

    def __post_init__(self):
        check_ranges(self, optional=("peak_flops",), every=POSITIVE_INT, val_every=NON_NEGATIVE_INT,
                     peak_flops=POSITIVE)


@dataclasses.dataclass(frozen=True)
class EvalSection:
    """Downstream evaluation at the end of the run (and every ``every`` steps if > 0): ``tasks`` is
    '' (none), 'synthetic', a heavy.yaml-style task list, or labels of the default list, as
    ``scaling-jax eval --tasks``; ``limit`` scores the first examples of each task; ``tokenizer`` a
    tokenizer.json for text tasks (default: the corpus's)."""

    tasks: str = ""
    every: int = 0
    limit: int | None = None
    tokenizer: str = ""

    def __post_init__(self):
        check_ranges(self, optional=("limit",), every=NON_NEGATIVE_INT, limit=POSITIVE_INT)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    name: str = ""
    seed: int = 0
    vocab_chunk: int | None = None
    model: ModelSection = ModelSection()
    data: DataSection = DataSection()
    optimizer: OptimizerSection = OptimizerSection()
    mesh: MeshSection = MeshSection()
    budget: BudgetSection = BudgetSection(multiplier=20.0)
    checkpoint: CheckpointSection = CheckpointSection()
    logging: LoggingSection = LoggingSection()
    eval: EvalSection = EvalSection()

    def __post_init__(self):
        check_ranges(self, optional=("vocab_chunk",), seed=NON_NEGATIVE_INT, vocab_chunk=POSITIVE_INT)
        b = self.budget
        if (b.branches or b.branch_of) and self.optimizer.schedule != "wsd":
            field = "budget.branches" if b.branches else "budget.branch_of"
            raise FieldError(field, "branches share a stable trunk: set optimizer.schedule: wsd "
                                    f"(it is {self.optimizer.schedule!r})")


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    return load_yaml(TrainConfig, path, overrides)


# The fields that decide what a run trains: its model, data, order, optimizer and schedule (the
# budget sets the schedule's length). A run resumed under other values would go on training
# another run's schedule. The rest may change between attempts of one run: the mesh, grad_accum
# and vocab_chunk (memory), loader threads, checkpoint and logging cadence, evaluation, names.
TRAINING_FIELDS = ("seed", "model", "data.corpus", "data.seed", "optimizer", "budget.tokens",
                   "budget.multiplier", "budget.global_batch")


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, Mapping) else {f"{prefix}{k}": v})
    return out


# Inside the training fields, settings of how the step executes, not of what it computes: a resume
# may change them (e.g. more rematerialisation after running out of memory).
EXECUTION_FIELDS = ("model.set.remat", "model.set.attention")


def config_changes(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``field: saved → now`` for each training field (``TRAINING_FIELDS`` less ``EXECUTION_FIELDS``)
    whose value differs between two configs as plain data (``to_dict``, or read back from JSON)."""
    a, b = _flat(saved), _flat(now)
    within = lambda k, fields: any(k == f or k.startswith(f + ".") for f in fields)  # noqa: E731
    keys = sorted(k for k in set(a) | set(b)
                  if within(k, TRAINING_FIELDS) and not within(k, EXECUTION_FIELDS) and a.get(k) != b.get(k))
    return [f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in keys]


def model_config(cfg: TrainConfig):
    """The ModelConfig of the run: the preset with ``model.set`` applied."""
    from scaling_jax.model.config import load_model_config

    try:
        return load_model_config(cfg.model.name, cfg.model.set)
    except ConfigError as e:
        raise ConfigError(f"model (name={cfg.model.name!r}, set={cfg.model.set}): {e}") from e


@dataclasses.dataclass(frozen=True)
class Budget:
    N: int
    D: float
    M: float
    steps: int
    tokens_per_step: int

    @property
    def tokens_trained(self) -> int:
        return self.steps * self.tokens_per_step


def budget(cfg: TrainConfig, N: int, seq_len: int) -> Budget:
    """Steps of ``global_batch × seq_len`` tokens nearest the budget D; an error if under one."""
    b = cfg.budget
    D = float(b.tokens) if b.tokens is not None else b.multiplier * N
    per_step = b.global_batch * seq_len
    steps = round(D / per_step)
    if steps < 1:
        raise ConfigError(
            f"budget: D = {D:.4g} tokens is less than one step of global_batch × seq_len = "
            f"{b.global_batch} × {seq_len} = {per_step} tokens; raise budget.tokens/multiplier "
            "or lower budget.global_batch")
    return Budget(N=N, D=D, M=D / N, steps=steps, tokens_per_step=per_step)
