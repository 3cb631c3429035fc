"""Validation: mean loss over a fixed set of sequences and its 95 % interval over sequences.

Like OpenLM's records (``loss``, ``loss_sequences_lower_95``, ``loss_sequences_upper_95``)
the interval is a percentile bootstrap of the mean over per-sequence losses.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from scaling_jax.data.pipeline import WindowSource, batches
from scaling_jax.train.step import TrainSetup, global_batch, to_host


@dataclasses.dataclass(frozen=True)
class ValResult:
    loss: float
    lower_95: float
    upper_95: float
    sequences: int

    def record(self) -> dict:
        return {"loss": self.loss, "loss_sequences_lower_95": self.lower_95,
                "loss_sequences_upper_95": self.upper_95, "sequences": self.sequences}


def bootstrap_interval(x: np.ndarray, level: float = 0.95, resamples: int = 1000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``x``."""
    x = np.asarray(x, np.float64)
    idx = np.random.default_rng(seed).integers(0, len(x), (resamples, len(x)))
    means = x[idx].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def per_sequence_losses(setup: TrainSetup, params, source: WindowSource, *, n_sequences: int,
                        global_batch_size: int, process_index: int, process_count: int) -> np.ndarray:
    """Each of the first ``n_sequences`` (rounded down to whole global batches) windows' loss."""
    ds = batches(source, global_batch=global_batch_size, seed=0, shuffle=False, repeat=False,
                 limit=n_sequences, process_index=process_index, process_count=process_count)
    out = [to_host(setup.eval_step(params, global_batch(local, setup.batch_sharding, global_batch_size)))
           for local in ds]
    return np.concatenate(out)


def summarize(per_seq: np.ndarray) -> ValResult:
    lo, hi = bootstrap_interval(per_seq)
    return ValResult(loss=float(per_seq.mean()), lower_95=lo, upper_95=hi, sequences=len(per_seq))
