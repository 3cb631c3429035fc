"""Where a testbed comes from: ``--testbed DIR``, else ``$SCALING_JAX_TESTBED``, else a cached
download of the paper's public release (``mlfoundations/scaling``, folder ``exp_data``)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from scaling_jax.errors import InputNotFound

ENV_VAR = "SCALING_JAX_TESTBED"
RELEASE_URL = "https://codeload.github.com/mlfoundations/scaling/tar.gz/refs/heads/main"
RELEASE_FOLDER = "exp_data"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "scaling_jax" / "testbed"


def download_release(dest: Path, url: str = RELEASE_URL, timeout: float = 60.0) -> Path:
    """Download the release tarball and unpack its ``exp_data`` into ``dest`` atomically."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            blob = resp.read()
    except (urllib.error.URLError, OSError) as e:
        raise InputNotFound(
            f"no testbed given and the public release could not be downloaded from {url} ({e}). "
            f"Pass --testbed DIR or set ${ENV_VAR} to a copy of the release (its exp_data folder)."
        ) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".testbed.", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            members = [m for m in tar.getmembers() if f"/{RELEASE_FOLDER}/" in m.name and m.isfile()]
            if not members:
                raise InputNotFound(f"{url}: the archive holds no {RELEASE_FOLDER}/ folder")
            for m in members:
                rel = m.name.split(f"/{RELEASE_FOLDER}/", 1)[1]
                if rel.startswith("/") or ".." in Path(rel).parts:
                    continue
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def resolve_testbed(path: str | os.PathLike | None = None) -> Path:
    """The testbed folder to read, downloading and caching the release only when none is given."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    cached = cache_dir()
    if (cached / "models").is_dir():
        return cached
    return download_release(cached)
