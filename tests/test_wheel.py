"""The built wheel works on its own: installed into a fresh venv, run from outside the
checkout, it finds its model presets (package data, not ``configs/`` beside a checkout)."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _setuptools_major() -> int:
    try:
        import setuptools
    except ImportError:
        return 0
    return int(setuptools.__version__.split(".")[0])


def test_wheel_ships_presets_and_runs_outside_the_checkout(tmp_path):
    from scaling_jax.model import counts
    from scaling_jax.model.config import load_model_config

    # Build from a copy so the checkout gets no build/ or egg-info.
    src = tmp_path / "src"
    src.mkdir()
    shutil.copytree(REPO / "scaling_jax", src / "scaling_jax", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    # Offline with this venv's setuptools when it meets pyproject's build requirement; else pip
    # builds in isolation, fetching setuptools>=77 from the index.
    offline = ["--no-build-isolation", "--no-index"] if _setuptools_major() >= 77 else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "-q", "-w", str(tmp_path / "dist"), str(src)])
    (wheel,) = (tmp_path / "dist").glob("scaling_jax-*.whl")
    with zipfile.ZipFile(wheel) as z:  # lm_eval finds the model: the .pth hook and the entry point
        assert z.read("scaling_jax_lm_eval.pth").decode().startswith("import scaling_jax.eval.lm_eval_hook")
        (ep,) = [n for n in z.namelist() if n.endswith("entry_points.txt")]
        assert "[lm_eval.models]\nscaling_jax = scaling_jax.eval.harness:HarnessLM" in z.read(ep).decode()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    # The dependencies come from this venv; a path added by a .pth runs no editable-install hook.
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    where = _run([str(py), "-c", "import scaling_jax; print(scaling_jax.__file__)"], cwd=elsewhere, env=env)
    hooked = _run([str(py), "-c", "import sys; print([type(f).__module__ for f in sys.meta_path])"], env=env)
    assert "scaling_jax.eval.lm_eval_hook" in hooked  # the .pth ran at start-up
    assert Path(where.strip()).resolve().is_relative_to(venv.resolve()), where
    out = _run([str(venv / "bin" / "scaling-jax"), "model-info", "open_lm_1b", "--json"], cwd=elsewhere, env=env)
    assert json.loads(out)["params"] == counts.paper_params(load_model_config("open_lm_1b"))
