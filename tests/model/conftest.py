"""One small initialised model shared by the model tests: initialisation compiles slowly on
CPU (one threefry kernel per parameter shape), so tests reuse these weights."""

import jax
import pytest
from flax import nnx

from scaling_jax.model.config import load_model_config
from scaling_jax.model.transformer import Transformer


@pytest.fixture(scope="session")
def model():
    cfg = load_model_config("tiny_d32", ["n_layers=2", "vocab_size=97", "seq_len=16"])
    return nnx.jit(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))()


@pytest.fixture(scope="session")
def tokens(model):
    """Batch of 2 sequences of seq_len + 1 tokens (inputs and shifted targets)."""
    return jax.random.randint(jax.random.key(0), (2, model.cfg.seq_len + 1), 0, model.cfg.vocab_size)


@pytest.fixture(autouse=True)
def _no_rank_promotion(no_rank_promotion):
    """Model tests run with implicit rank promotion raising (``no_rank_promotion``, tests/conftest.py)."""
