"""Where each run of a sweep stands, read from its folder alone (so any runner, any host, and
``sweep status`` agree): ``done`` (record.json; a WSD trunk: its last branch point committed),
``running`` (a live process holds its claim,
``sweep.claim``), ``failed`` (the last attempt exited non-zero), or ``pending`` (not started,
or stopped with checkpoints to resume from). Run folders may be local or ``gs://`` (``scaling_jax.paths``)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

from scaling_jax import paths
from scaling_jax.sweep import claim
from scaling_jax.train import branches
from scaling_jax.train.checkpoint import committed_steps

STATE_FILE = "sweep_state.json"
LOG_FILE = "sweep.log"
CONFIG_FILE = "train.yaml"
STATES = ("done", "running", "failed", "pending")


@dataclasses.dataclass(frozen=True)
class RunState:
    state: str
    resume_step: int | None = None  # latest checkpoint, when pending or failed with one
    loss: float | None = None  # final validation loss on the run's own set, when done
    error: float | None = None  # err_46, when done and evaluated
    log: str = ""
    message: str = ""


def checkpoint_steps(run_dir: str | Path) -> list[int]:
    """The run's committed checkpoint steps, ascending (a step a death mid-save left is none)."""
    return committed_steps(paths.join(run_dir, "checkpoints"))


def read_state(run_dir: str | Path, val_set: str = "") -> RunState:
    names = paths.listdir(run_dir)
    steps = checkpoint_steps(run_dir) if "checkpoints" in names else []
    resume = steps[-1] if steps else None
    log = paths.join(run_dir, LOG_FILE) if LOG_FILE in names else ""
    if "record.json" in names:
        rec = json.loads(paths.read_text(paths.join(run_dir, "record.json")))
        losses = rec.get("losses") or {}
        loss = losses.get(val_set) if val_set else next(iter(losses.values()), None)
        return RunState("done", loss=loss, error=rec.get("err_46"), log=log)
    if branches.TRUNK_FILE in names and branches.complete(run_dir):
        return RunState("done", log=log)
    info = {}
    if STATE_FILE in names:
        try:
            info = json.loads(paths.read_text(paths.join(run_dir, STATE_FILE)))
        except json.JSONDecodeError:
            info = {}
    if info.get("state") == "running" and claim.live_owner(str(run_dir), names) is not None:  # not a dead one's
        return RunState("running", resume_step=resume, log=log)
    if info.get("state") == "failed":
        return RunState("failed", resume_step=resume, log=log, message=info.get("message", ""))
    return RunState("pending", resume_step=resume, log=log)


def mark(run_dir: str | Path, state: str, **fields) -> None:
    """Record this process's claim on (or verdict about) ``run_dir``, atomically."""
    paths.write_json(paths.join(run_dir, STATE_FILE),
                     {"state": state, "pid": os.getpid(), "host": socket.gethostname(), **fields})
