"""The CLI keeps compiled programs in a persistent cache folder, configurable and off by env var."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaling_jax import cache

REPO = Path(__file__).resolve().parents[1]


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    for off in ("0", "off", "None", ""):
        monkeypatch.setenv(cache.ENV_VAR, off)
        assert cache.cache_dir() is None
    monkeypatch.delenv(cache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "scaling_jax" / "jax"


def _fit(tmp_path, value: str) -> None:
    csv = tmp_path / "runs.csv"
    csv.write_text("N,D,loss\n" + "".join(f"{n},{n * m},{1.8 + 300 * (n * n * m) ** -0.15}\n"
                                          for n in (1e7, 3e7, 1e8) for m in (20, 80)))
    env = {**os.environ, cache.ENV_VAR: value, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "scaling_jax.cli", "fit", "--runs", str(csv), "--bootstrap", "5"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.slow
def test_cli_fills_the_cache_folder_unless_off(tmp_path):
    _fit(tmp_path, str(tmp_path / "jax_cache"))
    assert len(list((tmp_path / "jax_cache").iterdir())) >= 2  # the fit and the bootstrap executables
    _fit(tmp_path, "off")
    assert not (tmp_path / "off").exists() and not (tmp_path / "jax_cache_off").exists()
