import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """CLI calls in tests cache compiled programs in this session's own folder, not the user's
    (so a run's time does not depend on what an earlier run left in ~/.cache)."""
    import tempfile

    os.environ.setdefault("SCALING_JAX_COMPILATION_CACHE", tempfile.mkdtemp(prefix="scaling_jax_test_cache_"))


@pytest.fixture(scope="session")
def testbed_dir() -> Path:
    """The paper's released testbed: $SCALING_JAX_TESTBED, else ../shared/testbed."""
    path = Path(os.environ.get("SCALING_JAX_TESTBED") or REPO.parent / "shared" / "testbed")
    if not (path / "models").is_dir():
        pytest.fail(f"testbed not found at {path}; set SCALING_JAX_TESTBED")
    return path


@pytest.fixture(scope="session")
def testbed(testbed_dir):
    from scaling_jax.testbed import load_testbed

    return load_testbed(testbed_dir)


@pytest.fixture
def no_rank_promotion(monkeypatch):
    """Implicit rank promotion (``x_BxLxD * g_D``) raises, as in nanodo's tests: broadcasts across
    ranks must be written out. Subprocesses inherit JAX_NUMPY_RANK_PROMOTION=raise."""
    import jax

    old = jax.config.jax_numpy_rank_promotion
    jax.config.update("jax_numpy_rank_promotion", "raise")
    monkeypatch.setenv("JAX_NUMPY_RANK_PROMOTION", "raise")
    yield
    jax.config.update("jax_numpy_rank_promotion", old)
