"""Token arrays in TensorStore (zarr3, int32, chunked) on a local path or ``gs://``.

A prepared corpus is a folder (or bucket prefix) holding ``train/`` and ``val/`` arrays and
``metadata.json``. The metadata is written last, so a folder without it is incomplete.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Iterator

import numpy as np
import tensorstore as ts

from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.paths import join, kvstore, listdir, read_bytes, write_json

METADATA = "metadata.json"
FORMAT = "scaling_jax.tokens/1"
SPLITS = ("train", "val")
_CACHE_BYTES = 64 << 20


def _spec(path: str) -> dict[str, Any]:
    return {"driver": "zarr3", "kvstore": kvstore(path),
            "context": {"cache_pool": {"total_bytes_limit": _CACHE_BYTES}}}


def create_array(path: str, chunk: int) -> ts.TensorStore:
    """A new empty 1-D int32 array; refuses to replace an existing one."""
    return ts.open(_spec(path), create=True, dtype=ts.int32, shape=[0],
                   chunk_layout=ts.ChunkLayout(chunk_shape=[chunk])).result()


def open_array(path: str) -> ts.TensorStore:
    try:
        return ts.open(_spec(path), open=True, read=True).result()
    except ValueError as e:
        raise InputNotFound(f"token array not found or unreadable: {path} ({e})") from e


def existing_parts(root: str) -> list[str]:
    """Which of ``train/``, ``val/``, ``metadata.json`` already exist under ``root``."""
    present = set(listdir(root))
    return [n for n in (*SPLITS, METADATA) if n in present]


def write_metadata(root: str, meta: dict[str, Any]) -> None:
    write_json(join(root, METADATA), meta)


def json_lines(lines: Iterable[str], where: str) -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSON Lines text; a line that is not JSON
    is a ``UserError`` naming ``where`` and the line."""
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{where}:{n}: not valid JSON ({e.msg}, column {e.colno})") from None


def read_metadata(root: str) -> dict[str, Any]:
    try:
        text = read_bytes(join(root, METADATA)).decode()
    except InputNotFound:
        raise InputNotFound(f"{join(root, METADATA)}: not found (corpus not prepared?)") from None
    meta = json.loads(text)
    if meta.get("format") != FORMAT:
        raise UserError(f"{join(root, METADATA)}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


class TokenWriter:
    """Appends token ids to a new array, growing it chunk by chunk."""

    def __init__(self, path: str, chunk: int):
        self.path, self.chunk = path, chunk
        self.array = create_array(path, chunk)
        self.n = 0
        self._buf: list[np.ndarray] = []
        self._buffered = 0

    def append(self, ids: np.ndarray) -> None:
        self._buf.append(np.asarray(ids, np.int32))
        self._buffered += len(ids)
        if self._buffered >= 16 * self.chunk:
            self.flush()

    def flush(self) -> None:
        if not self._buffered:
            return
        data = np.concatenate(self._buf)
        end = self.n + len(data)
        self.array = self.array.resize(exclusive_max=[end], expand_only=True).result()
        self.array[self.n:end].write(data).result()
        self.n, self._buf, self._buffered = end, [], 0
