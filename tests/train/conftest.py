from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "name": "tiny",
    "model": {"name": "tiny_d16", "set": {"seq_len": 16, "vocab_size": 64}},
    "data": {"corpus": {"kind": "synthetic",
                        "synthetic": {"vocab_size": 64, "n_sources": 8, "successors": 4}},
             "val_sequences": 16},
    "optimizer": {"warmup": 2},
    "budget": {"tokens": 2560, "global_batch": 8},
    "checkpoint": {"every": 10, "keep": 3},
    "logging": {"every": 1, "progress": False, "tensorboard": False},
}


@pytest.fixture
def tiny_yaml(tmp_path) -> Path:
    """A 20-step run of a 2-layer d=16 model on a small synthetic language."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """Runs of one tiny config recompile the same programs: share them through JAX's
    persistent cache (also inherited by the subprocess tests through the environment).
    On for this folder's modules only."""
    import os

    import jax

    path = str(tmp_path_factory.getbasetemp() / "jax_cache")
    old, old_dir = os.environ.get("JAX_COMPILATION_CACHE_DIR"), jax.config.jax_compilation_cache_dir
    os.environ["JAX_COMPILATION_CACHE_DIR"] = path
    jax.config.update("jax_compilation_cache_dir", old_dir or path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    yield
    jax.config.update("jax_compilation_cache_dir", old_dir)
    if old is None:
        os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)
    else:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def _no_rank_promotion(no_rank_promotion):
    """Training tests run with implicit rank promotion raising (``no_rank_promotion``, tests/conftest.py)."""
