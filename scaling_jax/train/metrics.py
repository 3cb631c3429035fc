"""Metrics out: JSON lines (``metrics.jsonl``) and TensorBoard event files, process 0 only."""

from __future__ import annotations

import json
import math
from pathlib import Path

from scaling_jax import atomic


class MetricsLog:
    def __init__(self, out: Path, *, enabled: bool, tensorboard: bool, resume_step: int | None):
        self.enabled = enabled
        self.path = out / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            # Lines past the checkpoint were written by the run that stopped; it redoes them.
            keep = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["step"] <= resume_step]
            atomic.write_text(self.path, "".join(ln + "\n" for ln in keep))
        self.file = self.path.open("a")
        if tensorboard:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=resume_step)

    def write(self, step: int, kind: str, values: dict) -> None:
        if not self.enabled:
            return
        row = {"step": step, "kind": kind, **values}
        self.file.write(json.dumps(row, allow_nan=True) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.tb is not None:
                self.tb.close()
