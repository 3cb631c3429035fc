"""One path layer for local folders and ``gs://bucket/prefix``: read, write, list, exists.

Built on TensorStore key-value stores, chosen over etils ``epath`` and fsspec ``gcsfs``
because TensorStore is already a dependency, already carries the token corpora (zarr3) and
orbax's array data to GCS, and needs no further package: ``epath`` itself reaches ``gs://``
only through ``gcsfs`` or TensorFlow.

Writes are atomic: a local file is written to a temp file and renamed over the target
(``scaling_jax.atomic``); a GCS object is uploaded in one request, which GCS applies whole or
not at all, so a reader sees the old object or the new one, never part of one. Callers write
shared files from process 0 only (``train.distributed.is_writer``).

``STORAGE_EMULATOR_HOST`` (e.g. ``http://127.0.0.1:4443``), the variable Google's client
libraries and ``gcsfs`` read, points TensorStore at the same emulator (its own variable is
``TENSORSTORE_GCS_HTTP_URL``) with a fixed token in place of credentials.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from typing import Any

from scaling_jax import atomic
from scaling_jax.errors import InputNotFound, UserError

GCS = "gs://"


def is_gcs(path: str | os.PathLike) -> bool:
    return str(path).startswith(GCS)


def use_emulator(env=os.environ) -> None:
    """Map ``STORAGE_EMULATOR_HOST`` onto TensorStore's variables (before its first GCS use)."""
    host = env.get("STORAGE_EMULATOR_HOST", "")
    if host:
        env["TENSORSTORE_GCS_HTTP_URL"] = host if "://" in host else f"http://{host}"
        env.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "anonymous")
        # gcsfs (orbax's way to gs://) warns on every call that it found no credentials.
        logging.getLogger("gcsfs").setLevel(logging.ERROR)


def split(path: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` → (``bucket``, ``a/b``); a URL without a bucket is a UserError."""
    bucket, _, key = str(path)[len(GCS):].partition("/")
    if not bucket:
        raise UserError(f"{path}: no bucket name (expected gs://bucket/path)")
    return bucket, key


def kvstore(path: str | os.PathLike) -> dict[str, Any]:
    """TensorStore kvstore spec for a local folder or a ``gs://bucket/prefix``."""
    path = str(path)
    if is_gcs(path):
        use_emulator()
        bucket, prefix = split(path)
        return {"driver": "gcs", "bucket": bucket, "path": prefix.rstrip("/") + "/" if prefix else ""}
    return {"driver": "file", "path": str(Path(path).resolve()) + "/"}


def join(root: str | os.PathLike, *names: str) -> str:
    return "/".join([str(root).rstrip("/"), *names])


def parent(path: str | os.PathLike) -> str:
    """The folder holding ``path`` (``gs://b/a/x`` → ``gs://b/a``; local as ``Path.parent``)."""
    return str(path).rstrip("/").rpartition("/")[0] if is_gcs(path) else str(Path(path).parent)


def name(path: str | os.PathLike) -> str:
    return str(path).rstrip("/").rpartition("/")[2] if is_gcs(path) else Path(path).name


def _store(folder: str):
    import tensorstore as ts

    return ts.KvStore.open(kvstore(folder)).result()


def _gcs_error(path: str, e: Exception) -> UserError:
    msg = str(e)
    if "NOT_FOUND" in msg:
        return InputNotFound(f"{path}: bucket gs://{split(path)[0]} not found")
    if "PERMISSION_DENIED" in msg or "403" in msg or "401" in msg:
        return UserError(f"{path}: permission denied ({msg.splitlines()[0]})")
    return UserError(f"{path}: {msg.splitlines()[0] if msg else type(e).__name__}")


def read_bytes(path: str | os.PathLike) -> bytes:
    """The whole of one file or object; a missing one is InputNotFound naming it."""
    path = str(path)
    if is_gcs(path):
        split(path)
        folder, _, name = path.rpartition("/")
        try:
            raw = _store(folder).read(name).result()
        except ValueError as e:
            raise _gcs_error(path, e) from None
        if raw.state != "value":
            raise InputNotFound(f"{path}: not found")
        return bytes(raw.value)
    if not Path(path).is_file():
        raise InputNotFound(f"{path}: not found")
    return Path(path).read_bytes()


def read_text(path: str | os.PathLike) -> str:
    return read_bytes(path).decode()


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Replace ``path`` with ``data`` atomically (see the module note); returns ``path``."""
    path = str(path)
    if not is_gcs(path):
        return str(atomic.write_bytes(path, data))
    split(path)
    folder, _, name = path.rpartition("/")
    try:
        _store(folder).write(name, data).result()
    except ValueError as e:
        raise _gcs_error(path, e) from None
    return path


def write_text(path: str | os.PathLike, text: str) -> str:
    return write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> str:
    return write_text(path, atomic.json_text(obj, indent))


def exists(path: str | os.PathLike) -> bool:
    """A file or object, or a folder (a prefix with objects under it)."""
    path = str(path)
    if not is_gcs(path):
        return Path(path).exists()
    folder, _, name = path.rstrip("/").rpartition("/")
    return name in listdir(folder)


def listdir(path: str | os.PathLike) -> list[str]:
    """Sorted names directly under a folder or prefix (files and subfolders); [] if none."""
    path = str(path)
    if not is_gcs(path):
        return sorted(p.name for p in Path(path).iterdir()) if Path(path).is_dir() else []
    try:
        keys = _store(path).list().result()
    except ValueError as e:
        raise _gcs_error(path, e) from None
    return sorted({bytes(k).decode().split("/")[0] for k in keys})


def find(root: str | os.PathLike, name: str) -> list[str]:
    """Sorted paths of every file called ``name`` at any depth under ``root`` (``rglob``)."""
    root = str(root)
    if not is_gcs(root):
        return sorted(str(p) for p in Path(root).rglob(name))
    try:
        keys = _store(root).list().result()
    except ValueError as e:
        raise _gcs_error(root, e) from None
    found = (bytes(k).decode() for k in keys)
    return sorted(join(root, k) for k in found if k == name or k.endswith("/" + name))


def is_dir(path: str | os.PathLike) -> bool:
    return Path(path).is_dir() if not is_gcs(path) else bool(listdir(path))


def create_exclusive(path: str | os.PathLike, data: bytes) -> bool:
    """Write ``path`` only if it does not exist yet; True if this call created it. Of several
    processes racing, exactly one wins: locally a complete temp file is hard-linked to the name
    (``link`` fails when the name exists); on GCS the upload carries ``ifGenerationMatch=0``."""
    path = str(path)
    if not is_gcs(path):
        tmp = atomic.write_bytes(Path(path).with_name(f".{Path(path).name}.{uuid.uuid4().hex}.new"), data)
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()
    folder, _, name = path.rpartition("/")
    try:
        store = _store(folder)
        now = store.read(name).result()
        # A missing key's generation is "no value": the write then succeeds only if still absent.
        return now.state == "missing" and bool(store.write(name, data, if_equal=now.stamp.generation)
                                               .result().generation)
    except ValueError as e:
        raise _gcs_error(path, e) from None


def delete(path: str | os.PathLike) -> None:
    """Remove one file or object; a missing one is no error."""
    path = str(path)
    if not is_gcs(path):
        Path(path).unlink(missing_ok=True)
        return
    folder, _, name = path.rpartition("/")
    try:
        _store(folder).write(name, None).result()
    except ValueError as e:
        raise _gcs_error(path, e) from None
