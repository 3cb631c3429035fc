"""Batches placed on the devices ahead of the step that takes them, resuming exactly.

``DevicePrefetch(it, place, depth)`` reads host batches from ``it`` (the grain iterator) and
places each with ``place`` (host rows → a global device array), keeping ``depth`` batches placed
beyond the one the loop takes: their host-to-device copies, which JAX starts asynchronously, run
while earlier steps compute, and the step after a log row (whose fetch of the metrics drains the
device's queue) finds its batch already there. Depth 0 places each batch when it is taken, as the
loop always did.

Its state, saved with each checkpoint, is the inner iterator's after the last batch *taken*, not
the last one read: a resumed run reads again the batches that were placed but never trained on. It
is stored as grain stores its own iterator's state (the same JSON file), so a checkpoint resumes
under any depth.
"""

from __future__ import annotations

import collections
import json
from typing import Any, Callable, Iterator

import jax

AUTO_DEPTH = 2  # batches ahead on a GPU or TPU; on the CPU the host is the device: none


def depth(setting: int | None) -> int:
    """``data.device_prefetch``: the setting, or for None 0 on the CPU and ``AUTO_DEPTH`` elsewhere."""
    if setting is not None:
        return setting
    return 0 if jax.default_backend() == "cpu" else AUTO_DEPTH


class DevicePrefetch:
    def __init__(self, it: Iterator, place: Callable[[Any], Any], depth: int):
        if depth < 0:
            raise ValueError(f"prefetch depth must be >= 0, got {depth}")
        self._it, self._place, self._depth = it, place, depth
        self._ahead: collections.deque = collections.deque()  # (placed batch, inner state after reading it)
        self._taken: dict | None = None  # inner state after the last batch taken; None: the inner's own

    def __iter__(self):
        return self

    def __next__(self):
        if self._depth == 0:
            return self._place(next(self._it))
        while len(self._ahead) <= self._depth:  # the batch taken now and ``depth`` more
            try:
                batch = next(self._it)
            except StopIteration:
                if not self._ahead:
                    raise
                break
            self._ahead.append((self._place(batch), self._it.get_state()))
        batch, self._taken = self._ahead.popleft()
        return batch

    def get_state(self) -> bytes:
        """The inner iterator's state after the last batch taken, as grain's checkpoint writes it."""
        state = self._it.get_state() if self._taken is None else self._taken
        return json.dumps(state, indent=4).encode()

    def set_state(self, state: bytes | dict) -> None:
        """Continue after the batch ``state`` was taken at; batches placed ahead are dropped."""
        self._it.set_state(json.loads(state) if isinstance(state, (bytes, str)) else state)
        self._ahead.clear()
        self._taken = None

    def start_prefetch(self) -> None:
        """Called by grain's checkpoint handler after a restore; the inner iterator's own threads
        start here, the device placement at the next batch taken."""
        start = getattr(self._it, "start_prefetch", None)
        if start is not None:
            start()
