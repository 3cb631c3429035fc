"""WSD trunks and their decay branches: one stable run per model size serves every budget.

A trunk's config sets ``budget.branches``; with the run's own budget they are its budgets
(multipliers or token counts, the unit of the budget field set). Budget b is a WSD run of S_b
steps that leaves the stable rate at K_b = ``optimizer.decay_start(S_b)``, and before K_b every
WSD run of one config takes the same steps whatever its length. So the trunk trains at the stable
rate to the largest K_b, committing a checkpoint at every K_b (kept whatever ``checkpoint.keep``
says), and branch b restores the one at K_b (parameters, optimizer state, data position) and
decays to S_b in its own folder, ``<trunk>/branches/<label>/`` (``budget.branch_of: ../..``).
A branch is step for step the separate WSD run of its budget (bitwise on one machine); its
``record.json`` is a run's like any other, with ``hyperparameters.branch_of``. The trunk writes
no record; its ``trunk.json`` lists the branches. A sweep of M = 5..80 then costs
0.8·80 + 0.2·155 = 95 N-runs' tokens instead of 155.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from pathlib import Path

from scaling_jax import paths
from scaling_jax.config import ConfigError, to_dict
from scaling_jax.errors import UserError
from scaling_jax.train.checkpoint import Checkpoints, committed_steps
from scaling_jax.train.config import Budget, TrainConfig, budget, config_changes
from scaling_jax.train.metrics import kept_lines
from scaling_jax.train.optimizer import decay_start

TRUNK_FILE = "trunk.json"
BRANCHES = "branches"  # the trunk's subfolder holding one folder per branch
TO_TRUNK = "../.."  # a branch's budget.branch_of: its trunk, two folders up


@dataclasses.dataclass(frozen=True)
class Branch:
    """One budget of a trunk: ``budget`` in the trunk's unit, its run length and decay start."""

    budget: float
    label: str  # the branch's folder under <trunk>/branches: M5, D2560
    steps: int
    decay_start: int
    D: float
    M: float

    def row(self) -> dict:
        return {"budget": self.budget, "M": self.M, "D": self.D, "steps": self.steps,
                "decay_start": self.decay_start, "folder": f"{BRANCHES}/{self.label}"}


@dataclasses.dataclass(frozen=True)
class Trunk:
    """A trunk's branches, ascending, and what it trains: the stable rate up to the largest
    branch's decay start (its ``end``), on the schedule of the largest branch (``schedule_steps``)."""

    unit: str  # multiplier | tokens
    N: int
    tokens_per_step: int
    branches: tuple[Branch, ...]

    @property
    def end(self) -> int:
        return self.branches[-1].decay_start

    @property
    def schedule_steps(self) -> int:
        return self.branches[-1].steps

    @property
    def points(self) -> tuple[int, ...]:
        return tuple(sorted({b.decay_start for b in self.branches}))

    def budget(self) -> Budget:
        """The trunk's own budget: ``end`` steps."""
        D = float(self.end * self.tokens_per_step)
        return Budget(N=self.N, D=D, M=D / self.N, steps=self.end, tokens_per_step=self.tokens_per_step)

    def listing(self, cfg: TrainConfig) -> dict:
        """``trunk.json``: what the trunk trains and its branches."""
        w = cfg.optimizer.wsd
        return {"unit": self.unit, "N": self.N, "tokens_per_step": self.tokens_per_step, "end_step": self.end,
                "schedule_steps": self.schedule_steps, "warmup": cfg.optimizer.warmup,
                "decay": {"fraction": w.decay_fraction, "shape": w.decay_shape},
                "branches": [b.row() for b in self.branches]}


def label(unit: str, amount: float) -> str:
    return f"M{amount:g}" if unit == "multiplier" else f"D{amount:.0f}"


def budgets(cfg: TrainConfig) -> tuple[str, list[float]]:
    """The unit and the sorted budgets of a trunk config: ``budget.branches`` and its own."""
    b = cfg.budget
    unit, own = ("multiplier", b.multiplier) if b.multiplier is not None else ("tokens", b.tokens)
    return unit, sorted({float(own), *map(float, b.branches)})


def branch_config(cfg: TrainConfig, amount: float, name: str | None = None) -> TrainConfig:
    """The config of the trunk ``cfg``'s branch of budget ``amount``: a plain WSD run of that budget
    that starts from the trunk two folders up. ``name``: its run name (default: the trunk's name
    and the branch's label, or the testbed's naming when the trunk has none)."""
    unit, _ = budgets(cfg)
    field = {"multiplier": amount, "tokens": None} if unit == "multiplier" else {"tokens": amount, "multiplier": None}
    if name is None:
        name = f"{cfg.name}-{label(unit, amount)}" if cfg.name else ""
    return dataclasses.replace(cfg, name=name, budget=dataclasses.replace(cfg.budget, branches=(), branch_of=TO_TRUNK,
                                                                         **field))


def trunk_plan(cfg: TrainConfig, N: int, seq_len: int) -> Trunk | None:
    """The trunk of ``cfg`` (None unless ``budget.branches`` is set); every branch checked: one
    step at least before its decay, the warm-up over by then, no two branches of one length."""
    if not cfg.budget.branches:
        return None
    unit, amounts = budgets(cfg)
    out, seen = [], {}
    for amount in amounts:
        bud = budget(branch_config(cfg, amount), N, seq_len)
        k = decay_start(cfg.optimizer, bud.steps)
        if k < max(cfg.optimizer.warmup, 1):
            raise ConfigError(f"budget.branches: {amount:g} ({bud.steps} steps) starts its decay at step {k}, "
                              f"before the trunk has trained past its {cfg.optimizer.warmup}-step warm-up; "
                              "drop it, or lower optimizer.warmup or optimizer.wsd.decay_fraction")
        if bud.steps in seen:
            raise ConfigError(f"budget.branches: {seen[bud.steps]:g} and {amount:g} are both {bud.steps} steps; "
                              "list one of them")
        seen[bud.steps] = amount
        out.append(Branch(budget=amount, label=label(unit, amount), steps=bud.steps, decay_start=k,
                          D=bud.D, M=bud.M))
    return Trunk(unit=unit, N=N, tokens_per_step=bud.tokens_per_step, branches=tuple(out))


def beside_budget(changes: list[str]) -> list[str]:
    """``config_changes`` lines but the budget's: a trunk's budgets are its branch list (changes
    checked by :func:`check_reachable`) and a branch's differs from its trunk's by design."""
    return [c for c in changes if not c.startswith(("budget.tokens:", "budget.multiplier:"))]


def folder(trunk_dir: str, b: Branch) -> str:
    return paths.join(trunk_dir, BRANCHES, b.label)


def started(run_dir: str) -> bool:
    """A run folder with a record or a committed checkpoint."""
    return paths.exists(paths.join(run_dir, "record.json")) or bool(committed_steps(paths.join(run_dir, "checkpoints")))


def check_reachable(trunk: Trunk, trunk_dir: str, start: int, committed: list[int]) -> None:
    """Refuse, naming them, the branches a trunk resuming at ``start`` cannot serve: their decay
    start lies behind it with no checkpoint there, and they have not started (a branch list
    changed on a started trunk). Branches ahead of it are trained to as it goes on."""
    behind = [b for b in trunk.branches
              if b.decay_start < start and b.decay_start not in committed and not started(folder(trunk_dir, b))]
    if behind:
        names = ", ".join(f"{b.budget:g} (decay from step {b.decay_start})" for b in behind)
        raise UserError(f"budget.branches: {names} lie behind the trunk in {trunk_dir}, which resumes from step "
                        f"{start} with no checkpoint there; drop them from the list and train them as separate "
                        "WSD runs, or start a new trunk")


def complete(trunk_dir: str) -> bool:
    """Whether the trunk in ``trunk_dir`` has committed its last branch point (its ``trunk.json``)."""
    path = paths.join(trunk_dir, TRUNK_FILE)
    if not paths.exists(path):
        return False
    return json.loads(paths.read_text(path))["end_step"] in committed_steps(paths.join(trunk_dir, "checkpoints"))


def resolve(out: str, ref: str) -> str:
    """``budget.branch_of`` as a path: relative ones from the run folder ``out``."""
    if paths.is_gcs(ref) or Path(ref).is_absolute():
        return ref
    if paths.is_gcs(out):
        bucket, _, prefix = str(out)[len("gs://"):].partition("/")
        return f"gs://{bucket}/" + posixpath.normpath(posixpath.join(prefix, ref)).lstrip("./")
    return str(Path(out, ref).resolve())


@dataclasses.dataclass(frozen=True)
class Start:
    """Where a branch starts: the trunk's folder and its checkpoint step (this branch's decay start)."""

    trunk: str
    step: int

    @property
    def checkpoints(self) -> str:
        return paths.join(self.trunk, "checkpoints")


def branch_start(cfg: TrainConfig, out: str, bud: Budget, *, allow_change: bool = False) -> Start:
    """The trunk checkpoint a fresh branch run starts from. An error naming the trunk if it has
    not committed the branch's decay start (yet), or was trained under other training fields
    than this branch's (its budget aside), unless ``allow_change``."""
    start = Start(resolve(str(out), cfg.budget.branch_of), decay_start(cfg.optimizer, bud.steps))
    have = committed_steps(start.checkpoints)
    if start.step not in have:
        raise UserError(f"budget.branch_of: the trunk {start.trunk} has no committed checkpoint at step {start.step}, "
                        f"where this branch of {bud.steps} steps starts its decay (committed: {have or 'none'}); "
                        "train the trunk to it first")
    reader = Checkpoints(start.checkpoints, keep=1 << 30, async_save=False)
    try:
        meta = reader.read_meta(start.step)
    finally:
        reader.close()
    changes = beside_budget(config_changes(meta.get("config") or {}, to_dict(cfg)))
    if changes and not allow_change:
        raise UserError(f"{paths.join(start.checkpoints, str(start.step))}: the trunk was trained with another "
                        f"config than this branch's: {'; '.join(changes)}")
    return start


def restore(start: Start, s, data_iter, shapes: dict, out: str, *, writer: bool):
    """The trunk's state at the branch's decay start, ``data_iter`` moved to its position, and the
    trunk's metrics rows up to it copied into the branch's ``metrics.jsonl``."""
    reader = Checkpoints(start.checkpoints, keep=1 << 30, async_save=False)
    try:
        state, _ = reader.restore(start.step, s.abstract_state, s.state_shardings, data_iter, shapes)
    finally:
        reader.close()
    trunk_log = paths.join(start.trunk, "metrics.jsonl")
    if writer:
        lines = kept_lines(paths.read_text(trunk_log).splitlines(), start.step) if paths.exists(trunk_log) else []
        paths.write_text(paths.join(out, "metrics.jsonl"), "".join(ln + "\n" for ln in lines))
    return state


def train_tree(cfg: TrainConfig, out: str, *, resume: bool = False, allow_config_change: bool = False,
               stop=None) -> list[tuple[str, object]]:
    """``scaling-jax train`` of a trunk config: the trunk (unless ``resume`` finds it at its end),
    then each branch without a record, smallest first, each in its folder, fresh from the trunk
    or resumed from its own checkpoints. Returns (``trunk`` or label, ``loop.Outcome`` or None for
    a branch done before); stops at the first run stopped by SIGTERM."""
    from scaling_jax.model.counts import paper_params
    from scaling_jax.train import loop
    from scaling_jax.train.config import model_config

    out = str(out)
    mc = model_config(cfg)
    trunk = trunk_plan(cfg, paper_params(mc), mc.seq_len)
    done: list[tuple[str, object]] = []
    at_end = resume and trunk.end in committed_steps(paths.join(out, "checkpoints"))
    if at_end:  # what train() checks on a resume, for a trunk it need not start
        check_reachable(trunk, out, trunk.end, committed_steps(paths.join(out, "checkpoints")))
    else:
        done.append(("trunk", o := loop.train(cfg, out, resume=resume, allow_config_change=allow_config_change,
                                              stop=stop)))
        if o.stopped_early:
            return done
    for b in trunk.branches:
        d = folder(out, b)
        if paths.exists(paths.join(d, "record.json")):
            done.append((b.label, None))
            continue
        o = loop.train(branch_config(cfg, b.budget), d, resume=bool(committed_steps(paths.join(d, "checkpoints"))),
                       allow_config_change=allow_config_change, stop=stop)
        done.append((b.label, o))
        if o.stopped_early:
            break
    return done
