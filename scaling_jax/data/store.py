"""Token arrays in TensorStore (zarr3, int32, chunked) on a local path or ``gs://``.

A prepared corpus is a folder (or bucket prefix) holding ``train/`` and ``val/`` arrays and
``metadata.json``. The metadata is written last, so a folder without it is incomplete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import tensorstore as ts

from scaling_jax import atomic
from scaling_jax.errors import InputNotFound, UserError

METADATA = "metadata.json"
FORMAT = "scaling_jax.tokens/1"
SPLITS = ("train", "val")
_CACHE_BYTES = 64 << 20


def is_gcs(path: str) -> bool:
    return str(path).startswith("gs://")


def kvstore(path: str) -> dict[str, Any]:
    """TensorStore kvstore spec for a local folder or a ``gs://bucket/prefix``."""
    path = str(path)
    if is_gcs(path):
        bucket, _, prefix = path[len("gs://"):].partition("/")
        return {"driver": "gcs", "bucket": bucket, "path": prefix.rstrip("/") + "/"}
    return {"driver": "file", "path": str(Path(path).resolve()) + "/"}


def join(root: str, name: str) -> str:
    return f"{str(root).rstrip('/')}/{name}"


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
    names = (*SPLITS, METADATA)
    if is_gcs(root):
        keys = ts.KvStore.open(kvstore(root)).result().list().result()
        tops = {bytes(k).decode().split("/")[0] for k in keys}
        return [n for n in names if n in tops]
    return [n for n in names if (Path(root) / n).exists()]


def write_metadata(root: str, meta: dict[str, Any]) -> None:
    if is_gcs(root):  # one GCS object write is atomic
        store = ts.KvStore.open(kvstore(root)).result()
        store.write(METADATA, json.dumps(meta, indent=2).encode()).result()
    else:
        atomic.write_json(Path(root) / METADATA, meta)


def read_bytes(path: str) -> bytes:
    """The whole of one file, local or ``gs://bucket/key`` (one GCS object read)."""
    path = str(path)
    if is_gcs(path):
        root, _, key = path.rpartition("/")
        raw = ts.KvStore.open(kvstore(root)).result().read(key).result()
        if raw.state != "value":
            raise InputNotFound(f"{path}: not found")
        return bytes(raw.value)
    if not Path(path).is_file():
        raise InputNotFound(f"{path}: not found")
    return Path(path).read_bytes()


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
