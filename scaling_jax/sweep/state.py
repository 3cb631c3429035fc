"""Where each run of a sweep stands, read from its folder alone (so any runner, any host, and
``sweep status`` agree): ``done`` (record.json), ``running`` (a live process owns it),
``failed`` (the last attempt exited non-zero), or ``pending`` (not started, or stopped with
checkpoints to resume from)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from pathlib import Path

from scaling_jax import atomic

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


def checkpoint_steps(run_dir: Path) -> list[int]:
    d = Path(run_dir) / "checkpoints"
    return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []


def _alive(pid: int, host: str) -> bool:
    if host != socket.gethostname():
        return True  # another host's process: trust its word
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(run_dir: str | Path, val_set: str = "") -> RunState:
    run_dir = Path(run_dir)
    steps = checkpoint_steps(run_dir)
    resume = steps[-1] if steps else None
    log = str(run_dir / LOG_FILE) if (run_dir / LOG_FILE).exists() else ""
    record = run_dir / "record.json"
    if record.is_file():
        rec = json.loads(record.read_text())
        losses = rec.get("losses") or {}
        loss = losses.get(val_set) if val_set else next(iter(losses.values()), None)
        return RunState("done", loss=loss, error=rec.get("err_46"), log=log)
    info = {}
    if (run_dir / STATE_FILE).is_file():
        try:
            info = json.loads((run_dir / STATE_FILE).read_text())
        except json.JSONDecodeError:
            info = {}
    if info.get("state") == "running" and _alive(int(info.get("pid", -1)), info.get("host", "")):
        return RunState("running", resume_step=resume, log=log)
    if info.get("state") == "failed":
        return RunState("failed", resume_step=resume, log=log, message=info.get("message", ""))
    return RunState("pending", resume_step=resume, log=log)


def mark(run_dir: str | Path, state: str, **fields) -> None:
    """Record this process's claim on (or verdict about) ``run_dir``, atomically."""
    atomic.write_json(Path(run_dir) / STATE_FILE,
                      {"state": state, "pid": os.getpid(), "host": socket.gethostname(), **fields})
