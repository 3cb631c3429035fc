"""Metrics out: JSON lines (``metrics.jsonl``) and TensorBoard event files, process 0 only.

In a local folder the log is appended to line by line. An object store cannot append, so for
a ``gs://`` run folder the lines are kept in memory and the whole object is re-uploaded (one
atomic write) at most every ``sync_seconds`` and at close; TensorBoard events are written to a
local temp folder and uploaded to ``tensorboard/`` the same way.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from scaling_jax import paths


class MetricsLog:
    def __init__(self, out: str | Path, *, enabled: bool, tensorboard: bool, resume_step: int | None,
                 sync_seconds: float = 60.0):
        self.enabled = enabled
        self.remote = paths.is_gcs(out)
        self.path = paths.join(out, "metrics.jsonl")
        self.tb_out = paths.join(out, "tensorboard")
        self.tb = None
        self.sync_seconds, self.synced = sync_seconds, time.monotonic()
        if not enabled:
            return
        lines = paths.read_text(self.path).splitlines() if paths.exists(self.path) else []
        if resume_step is not None and lines:
            # Lines past the checkpoint were written by the run that stopped; it redoes them.
            lines = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= resume_step]
            paths.write_text(self.path, "".join(ln + "\n" for ln in lines))
        self.lines = lines
        self.file = None if self.remote else open(self.path, "a")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.tb_dir = tempfile.mkdtemp(prefix="tensorboard.") if self.remote else self.tb_out
            self.tb = SummaryWriter(self.tb_dir, purge_step=resume_step)

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
        """Upload the log (and TensorBoard events) of a ``gs://`` run folder."""
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
