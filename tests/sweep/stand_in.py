"""A stand-in for ``train`` in sweep workers: STEPS steps of metrics rows, a checkpoint (its
commit object, which is what makes a step count) and the rows every EVERY steps, the record at
the end; a resumed run starts after its last checkpoint and drops the rows past it, as ``train``
does. Each attempt appends ``{"host", "thread", "start", "t"}`` to the run's ``attempts.jsonl``.
The run claim, ``run_one`` and the worker loop around it are the real ones.

Environment: ``STAND_IN_SECONDS`` (a run's length, default 1), ``STAND_IN_KILL``: the point at
which the process kills itself with SIGKILL in its first run: ``unmarked`` (claimed, not yet
marked running), ``claimed`` (marked running), ``training`` (after the first checkpoint),
``recorded`` (record written, claim not yet released). ``STAND_IN_HOLD``: a folder; a process's
first run, at its first checkpoint, writes its folder into ``HOLD/<host>`` and waits there until
``HOLD/release`` exists (so a test knows which run each worker is in when it kills one).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

from scaling_jax import paths
from scaling_jax.sweep import claim, state
from scaling_jax.train import loop
from scaling_jax.train.checkpoint import COMMIT_FILE, committed_steps

STEPS, EVERY = 10, 2
_first = [True]


def _kill_at(point: str) -> None:
    if os.environ.get("STAND_IN_KILL") == point and _first[0]:
        os.kill(os.getpid(), signal.SIGKILL)


def _hold(out: str) -> None:
    hold = os.environ.get("STAND_IN_HOLD")
    if hold and _first[0] and not Path(hold, "release").exists():
        Path(hold, claim.host()).write_text(out)
        while not Path(hold, "release").exists():
            time.sleep(0.02)


def _append(path: str, line: str) -> None:
    paths.write_text(path, (paths.read_text(path) if paths.exists(path) else "") + line + "\n")


def rows(out: str) -> list[dict]:
    path = paths.join(out, "metrics.jsonl")
    return [json.loads(ln) for ln in paths.read_text(path).splitlines()] if paths.exists(path) else []


def attempts(out: str) -> list[dict]:
    path = paths.join(out, "attempts.jsonl")
    return [json.loads(ln) for ln in paths.read_text(path).splitlines()] if paths.exists(path) else []


def train(cfg, out, resume=False, stop=None, **kwargs):
    out = str(out)
    _kill_at("claimed")
    ckpts = paths.join(out, "checkpoints")
    start = committed_steps(ckpts)[-1] if resume else 0
    _append(paths.join(out, "attempts.jsonl"), json.dumps({"host": claim.host(), "start": start, "t": time.time(),
                                                           "thread": threading.current_thread().name}))
    kept = [json.dumps(r) for r in rows(out) if r["step"] <= start]
    seconds = float(os.environ.get("STAND_IN_SECONDS", "1"))
    for step in range(start + 1, STEPS + 1):
        time.sleep(seconds / STEPS)
        kept.append(json.dumps({"step": step, "kind": "train", "loss": 1.0 / step}))
        if step % EVERY == 0:
            paths.write_text(paths.join(out, "metrics.jsonl"), "\n".join(kept) + "\n")
            paths.write_text(paths.join(ckpts, str(step), COMMIT_FILE), "")
            _kill_at("training")
            _hold(out)
        if stop is not None and stop.set:
            return loop.Outcome(step=step, stopped_early=True, record=None)
    paths.write_json(paths.join(out, "record.json"), {"name": cfg.name, "losses": {cfg.data.name: 3.0}})
    _kill_at("recorded")
    _first[0] = False
    return loop.Outcome(step=STEPS, stopped_early=False, record=None)


def install() -> None:
    """Put the stand-in in place of ``train`` (and of ``state.mark`` for the ``unmarked`` kill point)."""
    loop.train = train
    mark = state.mark

    def marked(run_dir, st, **fields):
        if st == "running":
            _kill_at("unmarked")
        mark(run_dir, st, **fields)

    state.mark = marked
