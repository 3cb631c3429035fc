"""A GCS emulator (gcp-storage-emulator, the ``test`` extra) on 127.0.0.1 for one test session,
with ``STORAGE_EMULATOR_HOST`` pointing every layer at it; tests using it skip when the
emulator is not installed or does not start."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BUCKET = "bkt"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    """The emulator's URL; bucket ``bkt`` exists, every other bucket does not."""
    if importlib.util.find_spec("gcp_storage_emulator") is None:
        pytest.skip("gcp-storage-emulator is not installed (pip install -e '.[test]')")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("gcs") / "emulator.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("gcs_emulator_main.py")), "start",
                                 "--host", "127.0.0.1",
                                 "--port", str(port), "--default-bucket", BUCKET, "--in-memory"],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        ready = False
        for _ in range(100):
            try:
                ready = bool(urllib.request.urlopen(f"{url}/storage/v1/b/{BUCKET}", timeout=1).read())
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        if not ready:
            pytest.skip(f"gcs emulator did not start: {log.read_text()[-500:]}")
        saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "TENSORSTORE_GCS_HTTP_URL",
                                                "GOOGLE_AUTH_TOKEN_FOR_TESTING")}
        os.environ["STORAGE_EMULATOR_HOST"] = url
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
