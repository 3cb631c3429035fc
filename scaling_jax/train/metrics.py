"""Metrics out: JSON lines (``metrics.jsonl``) and TensorBoard event files, process 0 only.

In a local folder the log is appended to line by line. An object store cannot append, so for
a ``gs://`` run folder the lines are kept in memory and the whole object is re-uploaded (one
atomic write) with every checkpoint, at most every ``sync_seconds`` between and at close;
TensorBoard events are written to a local temp folder and uploaded to ``tensorboard/`` the same way.

Every start trims the log to the step it starts from (a fresh start empties it), so a run
killed and started again never holds a (step, kind) row twice.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from scaling_jax import paths


def kept_lines(lines: list[str], resume_step: int | None, *, final: bool = False) -> list[str]:
    """The lines a run starting at ``resume_step`` (None: a fresh start, nothing) keeps: those of
    earlier steps and, at that step, those written before its checkpoint (the train row, a
    validation or evaluation on the way). A run resumed at its last step (``final``) redoes the
    final validation and evaluation, so only its train row stays. A line cut short by a kill
    is dropped."""
    if resume_step is None:
        return []
    kept = []
    for ln in lines:
        try:
            row = json.loads(ln)
        except json.JSONDecodeError:
            continue
        if row["step"] < resume_step or (row["step"] == resume_step and not (final and row["kind"] != "train")):
            kept.append(ln)
    return kept


class MetricsLog:
    def __init__(self, out: str | Path, *, enabled: bool, tensorboard: bool, resume_step: int | None,
                 final: bool = False, sync_seconds: float = 60.0):
        self.enabled = enabled
        self.remote = paths.is_gcs(out)
        self.path = paths.join(out, "metrics.jsonl")
        self.tb_out = paths.join(out, "tensorboard")
        self.tb = None
        self.sync_seconds, self.synced = sync_seconds, time.monotonic()
        if not enabled:
            return
        old = paths.read_text(self.path).splitlines() if paths.exists(self.path) else []
        # Lines past the checkpoint were written by an attempt that stopped or died; this one redoes
        # them. A gs:// log is replaced whole at its next upload, which comes before any checkpoint
        # of this attempt: until then the stored one keeps the old lines, which a start trims again.
        self.lines = kept_lines(old, resume_step, final=final)
        if self.lines != old and not self.remote:
            paths.write_text(self.path, "".join(ln + "\n" for ln in self.lines))
        self.earlier = list(self.lines)
        self.file = None if self.remote else open(self.path, "a")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.tb_dir = tempfile.mkdtemp(prefix="tensorboard.") if self.remote else self.tb_out
            self.tb = SummaryWriter(self.tb_dir, purge_step=resume_step or 0)

    def earlier_rows(self, kind: str) -> list[dict]:
        """The rows of ``kind`` that earlier starts wrote and this one kept (none where it writes
        no log)."""
        rows = [json.loads(ln) for ln in self.earlier] if self.enabled else []
        return [r for r in rows if r["kind"] == kind]

    def write(self, step: int, kind: str, values: dict) -> None:
        if not self.enabled:
            return
        line = json.dumps({"step": step, "kind": kind, **values}, allow_nan=True)
        if self.remote:
            self.lines.append(line)
        else:
            self.file.write(line + "\n")
            self.file.flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)
        if self.remote and time.monotonic() - self.synced >= self.sync_seconds:
            self.sync()

    def sync(self) -> None:
        """Upload the log (and TensorBoard events) of a ``gs://`` run folder; the loop calls it with
        every checkpoint, so a kill after the checkpoint loses no row the resumed run keeps. A
        local log is written through line by line: nothing to do."""
        if not (self.enabled and self.remote):
            return
        self.synced = time.monotonic()
        paths.write_text(self.path, "".join(ln + "\n" for ln in self.lines))
        if self.tb is not None:
            self.tb.flush()
            for f in Path(self.tb_dir).iterdir():
                paths.write_bytes(paths.join(self.tb_out, f.name), f.read_bytes())

    def close(self) -> None:
        if self.enabled:
            if self.remote:
                self.sync()
            else:
                self.file.close()
            if self.tb is not None:
                self.tb.close()
