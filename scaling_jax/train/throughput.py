"""The speed fields of every logged training interval, and the run's medians for its record.

Per interval (the steps since the previous train row):

- ``tokens_per_s``; ``model_flops_per_token`` (exact: the step's matmuls with causal attention
  counted half) and ``model_flops_per_token_6n`` (6·N), from ``model/flops.py``;
- ``mfu`` and ``mfu_6n``: model FLOP/s over the devices' dense bf16 peak (``train/peak.py``, or
  ``logging.peak_flops``); null where the peak is unknown (the CPU);
- ``step_time`` (wall seconds per step) and its split as the host saw it: ``step_time_data``
  waiting for the next batch (read and placed; with device prefetch only the wait for one already
  placed), ``step_time_device`` dispatching steps and waiting for their results (at a log row or
  checkpoint: the only times the loop fetches from the devices), ``step_time_host`` the rest (the
  loop's own work: logging, checkpoint saves, the progress bar). Steps are dispatched
  asynchronously, so while the devices are the bottleneck the host's data and host time overlap
  their work and ``step_time_device`` is most of ``step_time``; a large data or host share means
  the devices waited on the host.

Validation and downstream evaluation are left out of the interval they fall in. The first
interval of each start holds compilation: the record's medians leave it out where others exist.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time

from scaling_jax.model import flops
from scaling_jax.model.config import ModelConfig
from scaling_jax.train import peak


@dataclasses.dataclass(frozen=True)
class Speed:
    """What turns an interval's steps and seconds into its speed fields."""

    tokens_per_step: int  # global
    flops_per_token: int  # exact
    flops_per_token_6n: int
    devices: int
    device_kind: str
    peak_flops: float | None  # per device

    @classmethod
    def of(cls, cfg: ModelConfig, tokens_per_step: int, devices: list, peak_override: float | None = None) -> Speed:
        kind = devices[0].device_kind
        return cls(tokens_per_step, flops.flops_per_token(cfg, exact=True), flops.flops_per_token(cfg),
                   len(devices), kind, peak.peak_flops(kind, peak_override))

    def fields(self, steps: int, seconds: float) -> dict:
        tokens_per_s = steps * self.tokens_per_step / seconds
        total = None if self.peak_flops is None else self.peak_flops * self.devices
        return {"tokens_per_s": tokens_per_s,
                "model_flops_per_token": self.flops_per_token, "model_flops_per_token_6n": self.flops_per_token_6n,
                "mfu": None if total is None else self.flops_per_token * tokens_per_s / total,
                "mfu_6n": None if total is None else self.flops_per_token_6n * tokens_per_s / total}


class Meter:
    """Times the loop's parts between train rows and turns them into each row's speed fields."""

    def __init__(self, speed: Speed, step: int):
        self.speed, self.rows = speed, []
        self._reset(step)

    def _reset(self, step: int) -> None:
        self.step, self.t0 = step, time.perf_counter()
        self.spent = {"data": 0.0, "device": 0.0, "excluded": 0.0}

    @contextlib.contextmanager
    def timing(self, part: str):
        """Add the block's wall time to ``part``: 'data', 'device' or 'excluded' (not the loop's)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.spent[part] += time.perf_counter() - t

    def interval(self, step: int) -> dict:
        """The speed fields of the steps since the last row (or the start), up to ``step``."""
        n = step - self.step
        wall = time.perf_counter() - self.t0 - self.spent["excluded"]
        data, device = self.spent["data"], self.spent["device"]
        row = {**self.speed.fields(n, wall), "step_time": wall / n, "step_time_data": data / n,
               "step_time_device": device / n, "step_time_host": max(wall - data - device, 0.0) / n}
        self.rows.append(row)
        self._reset(step)
        return row

    def summary(self, earlier: list[dict] = ()) -> dict:
        """For the record: medians over this start's intervals (the first, with compilation, left
        out where there are others), the device and its peak. A start that trained no step (resumed
        at the last one to finish its evaluation) takes the ``earlier`` starts' train rows."""
        rows = self.rows[1:] or self.rows or [r for r in earlier if "step_time" in r]

        def median(key):
            values = [r[key] for r in rows if r.get(key) is not None]
            return statistics.median(values) if values else None

        s = self.speed
        return {"mfu": median("mfu"), "mfu_6n": median("mfu_6n"), "tokens_per_s": median("tokens_per_s"),
                "step_time": median("step_time"), "model_flops_per_token": s.flops_per_token,
                "model_flops_per_token_6n": s.flops_per_token_6n, "device_kind": s.device_kind,
                "devices": s.devices, "peak_flops": s.peak_flops, "intervals": len(rows)}
