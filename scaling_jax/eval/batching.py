"""Fixed shapes for the scorer: sequence-length buckets, padded batches and the scored-span mask.

Each row (context + continuation) goes to the smallest bucket that holds its inputs (all its
tokens but the last); every row of one
item (all choices of a multiple-choice question) goes in the same batch. Batches of one bucket
all have the same number of rows (a multiple of the mesh's batch shards), so the scoring
function compiles once per bucket. Rows are right-padded: a causal model's outputs at the real
positions do not see the padding, so a padded row scores as it would alone.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

PAD_ID = 0


def buckets(max_seq_len: int, smallest: int = 32) -> tuple[int, ...]:
    """Powers of two from ``smallest`` below ``max_seq_len``, then ``max_seq_len`` itself."""
    out, b = [], smallest
    while b < max_seq_len:
        out.append(b)
        b *= 2
    return (*out, max_seq_len)


def rows_per_batch(length: int, tokens_per_batch: int, shards: int, min_rows: int) -> int:
    """Rows of a ``length`` bucket: about ``tokens_per_batch`` tokens, a multiple of ``shards``,
    at least ``min_rows`` (the largest item)."""
    rows = max(tokens_per_batch // length, min_rows, 1)
    return -(-rows // shards) * shards


@dataclasses.dataclass
class Batch:
    """Model inputs and scoring targets: ``inputs[b, i]`` predicts ``targets[b, i]``, scored where
    ``mask``; ``rows`` maps each filled batch row to (item number, row within the item)."""

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    rows: list[tuple[int, int]]
    spans: list[tuple[int, int]]


def make_batch(seqs: list[tuple[np.ndarray, int, int, int]], n_rows: int, length: int) -> Batch:
    """``seqs``: (tokens as an int32 array, continuation start, item, row) per row, at most ``n_rows``
    of them."""
    inputs = np.full((n_rows, length), PAD_ID, np.int32)
    targets = np.full((n_rows, length), PAD_ID, np.int32)
    mask = np.zeros((n_rows, length), np.float32)
    n = np.array([len(t) for t, *_ in seqs])
    start = np.array([s for _, s, *_ in seqs])
    # Row b's model inputs are its tokens but the last, its targets the tokens but the first:
    # scatter all rows at once from one flat array (a Python loop of slice copies cost ~15 µs a row).
    flat = np.concatenate([t for t, *_ in seqs])
    first = np.cumsum(n) - n  # where each row begins in ``flat``
    row = np.repeat(np.arange(len(seqs)), n - 1)
    col = np.arange(len(row)) - np.repeat(np.cumsum(n - 1) - (n - 1), n - 1)
    at = np.repeat(first, n - 1) + col
    inputs[row, col] = flat[at]
    targets[row, col] = flat[at + 1]
    mask[row, col] = col >= np.repeat(start - 1, n - 1)
    rows = [(item, r) for _, _, item, r in seqs]
    spans = list(zip((start - 1).tolist(), (n - 1).tolist()))
    return Batch(inputs, targets, mask, rows, spans)


def plan(encoded: list, max_seq_len: int, *, tokens_per_batch: int, shards: int = 1,
         smallest_bucket: int = 32) -> Iterator[Batch]:
    """Batches covering every row of ``encoded`` (a list of ``prompts.Encoded``), bucket by bucket."""
    bks = buckets(max_seq_len, min(smallest_bucket, max_seq_len))
    min_rows = max((len(e.tokens) for e in encoded), default=1)
    by_bucket: dict[int, list[int]] = {}
    longest = [max(len(t) for t in e.tokens) - 1 for e in encoded]  # model inputs: every token but the last
    for i, n in enumerate(longest):
        by_bucket.setdefault(next(b for b in bks if b >= n), []).append(i)
    for length in bks:
        items = sorted(by_bucket.get(length, ()), key=lambda i: -longest[i])
        n_rows = rows_per_batch(length, tokens_per_batch, shards, min_rows)
        pending: list = []
        for i in items:
            e = encoded[i]
            if len(pending) + len(e.tokens) > n_rows:
                yield make_batch(pending, n_rows, length)
                pending = []
            pending += [(t, s, i, r) for r, (t, s) in enumerate(zip(e.arrays, e.start))]
        if pending:
            yield make_batch(pending, n_rows, length)
