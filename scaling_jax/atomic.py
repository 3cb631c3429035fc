"""Atomic file writes: write to a temp file in the same folder, fsync, then rename.

A crash mid-write leaves the old file (or none), never a truncated one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from scaling_jax.errors import UserError


def check_out_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """An output folder may exist or not, but must not be a file: checked before any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{flag} {path}: {parent} is a file, not a folder")
            break
    return path


def write_atomic(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "w") -> Path:
    """Call ``write(fileobj)`` on a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda f: f.write(text))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return write_atomic(path, lambda f: f.write(data), mode="wb")


def json_text(obj: Any, indent: int | None = 2) -> str:
    """JSON with NaN/inf refused: a result file must be valid JSON for every reader."""
    return json.dumps(obj, indent=indent, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return write_text(path, json_text(obj, indent))


def savefig(path: str | os.PathLike, fig, **kwargs) -> Path:
    """Save a matplotlib figure atomically (format from the suffix)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    return write_atomic(path, lambda f: fig.savefig(f, format=fmt, **kwargs), mode="wb")
