"""The input pipeline: fixed windows of ``seq_len + 1`` tokens, shuffled, split across JAX
processes, batched and prefetched by grain; its iterator state resumes exactly.

Global example ``g`` of step ``s`` is ``s * global_batch + g``; process ``p`` reads the
contiguous rows ``[p * local_batch, (p + 1) * local_batch)`` of every global batch, so the
global batch is the same whatever the number of processes.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

import grain
import numpy as np

from scaling_jax.data import store
from scaling_jax.data.synthetic import SyntheticConfig, SyntheticWindows
from scaling_jax.errors import UserError
from scaling_jax.paths import join


class WindowSource(Protocol):
    seq_len: int
    vocab_size: int
    name: str

    def __len__(self) -> int: ...

    def read_batch(self, idx_B) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """Where windows come from: the synthetic language or a prepared token corpus."""

    kind: Literal["synthetic", "tokens"] = "synthetic"
    path: str = ""
    synthetic: SyntheticConfig = SyntheticConfig()

    def __post_init__(self):
        if self.kind == "tokens" and not self.path:
            raise UserError("kind 'tokens' needs path: a corpus made by `scaling-jax data prepare`")


class TokenWindows:
    """Windows over a prepared split: window i is tokens [i*L, i*L + L + 1) (stride L)."""

    def __init__(self, root: str, split: str, seq_len: int):
        meta = store.read_metadata(root)
        self.path = join(root, split)
        self.array = store.open_array(self.path)
        n_tokens = int(self.array.shape[0])
        self.seq_len, self.vocab_size = seq_len, int(meta["vocab_size"])
        self.name = f"{root}/{split}"
        self.n = (n_tokens - 1) // seq_len if n_tokens > seq_len else 0
        if self.n == 0:
            raise UserError(f"{self.path}: {n_tokens} tokens, fewer than one sequence of "
                             f"seq_len + 1 = {seq_len + 1}")

    def __len__(self) -> int:
        return self.n

    def read_batch(self, idx_B) -> np.ndarray:
        L = self.seq_len
        futures = [self.array[int(i) * L:int(i) * L + L + 1].read() for i in idx_B]
        return np.stack([f.result() for f in futures]).astype(np.int32, copy=False)


def open_source(corpus: CorpusConfig, split: str, seq_len: int, n_windows: int | None = None) -> WindowSource:
    if corpus.kind == "synthetic":
        return SyntheticWindows(corpus.synthetic, seq_len, split, *(() if n_windows is None else (n_windows,)))
    return TokenWindows(corpus.path, split, seq_len)


def local_batch_size(global_batch: int, process_count: int) -> int:
    if global_batch % process_count:
        raise UserError(f"global batch {global_batch} is not divisible by {process_count} processes")
    return global_batch // process_count


class _ProcessRows:
    """Local example i -> index of the window it reads (see the module docstring)."""

    def __init__(self, order: grain.MapDataset, global_batch: int, local_batch: int, process_index: int):
        self.order, self.gb, self.lb, self.p = order, global_batch, local_batch, process_index

    def __call__(self, i: int) -> int:
        step, j = divmod(i, self.lb)
        return self.order[step * self.gb + self.p * self.lb + j]


class _ReadBatch:
    def __init__(self, source: WindowSource):
        self.source = source

    def __call__(self, idx: list[int]) -> np.ndarray:
        return self.source.read_batch(np.asarray(idx, np.int64))


def batches(source: WindowSource, *, global_batch: int, seed: int, shuffle: bool = True,
            repeat: bool = True, limit: int | None = None, process_index: int = 0,
            process_count: int = 1, threads: int = 2, prefetch: int = 4) -> grain.IterDataset:
    """This process's share of every global batch: int32 arrays (local_batch, seq_len + 1).

    ``shuffle`` reshuffles each epoch from ``seed``; without ``repeat`` it stops after the
    last full global batch of the first ``limit`` windows (for validation).
    """
    lb = local_batch_size(global_batch, process_count)
    n = len(source) if limit is None else min(limit, len(source))
    if n < global_batch and not repeat:
        raise UserError(f"{source.name}: {n} sequences, fewer than one global batch of {global_batch}")
    order = grain.MapDataset.range(n)
    if shuffle:
        order = order.shuffle(seed=seed)
    if repeat:
        order = order.repeat(None)
        n_local = (len(order) // global_batch) * lb
    else:
        n_local = (n // global_batch) * lb
    rows = grain.MapDataset.range(n_local).map(_ProcessRows(order, global_batch, lb, process_index))
    ds = rows.batch(lb, drop_remainder=True, batch_fn=_ReadBatch(source))
    return ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=prefetch))
