"""Golden single step, after nanodo's tests/train_test.py: a tiny model, a fixed seed and fixed
tokens, two train steps on one device; the losses and the first gradient norm must equal stored
values. Any change of initialisation, model, loss or optimizer moves them."""

import jax
import numpy as np

from scaling_jax.model.config import load_model_config
from scaling_jax.model.sharding import make_mesh
from scaling_jax.train import optimizer, step
from scaling_jax.train.config import OptimizerSection

# Printed by this test when it fails; pinned by running the code, not typed by hand.
GOLDEN_LOSS = 4.622207164764404  # loss of the first step (the initial weights)
GOLDEN_GRAD_NORM = 2.570732593536377  # global gradient norm of the first step
GOLDEN_LOSS_AFTER = 3.5461008548736572  # loss of the second step (after one AdamW update)


def _one_step():
    cfg = load_model_config("tiny_d16", {"seq_len": 16, "vocab_size": 64})
    tx = optimizer.optimizer(OptimizerSection(lr=1e-2, warmup=0), 10)
    mesh = make_mesh(devices=jax.devices()[:1])
    s = step.setup(cfg, tx, mesh, seed=0)
    tokens_BxT = np.random.default_rng(0).integers(0, 64, (8, 17), dtype=np.int32)
    with jax.set_mesh(mesh):
        state = s.init()
        state, first = s.train_step(state, step.global_batch(tokens_BxT, s.batch_sharding, 8))
        state, second = s.train_step(state, step.global_batch(tokens_BxT, s.batch_sharding, 8))
    return float(first["loss"]), float(first["grad_norm"]), float(second["loss"])


def test_one_step_matches_golden_values():
    loss, grad_norm, loss_after = _one_step()
    got, want = [loss, grad_norm, loss_after], [GOLDEN_LOSS, GOLDEN_GRAD_NORM, GOLDEN_LOSS_AFTER]
    assert np.allclose(got, want, rtol=1e-5, atol=0), (
        f"one train step moved: got loss {loss!r}, grad norm {grad_norm!r}, loss after the update "
        f"{loss_after!r}; stored {want}. If the change of initialisation/loss/optimizer is intended, "
        f"update GOLDEN_* with the printed values: GOLDEN_LOSS = {loss!r}, GOLDEN_GRAD_NORM = {grad_norm!r}, "
        f"GOLDEN_LOSS_AFTER = {loss_after!r}")
    assert loss_after < loss  # the update helped: the pinned step is a real optimizer step


def test_implicit_rank_promotion_raises_here():
    """The folder's conftest turns on JAX's guard against silent broadcasting across ranks."""
    import jax.numpy as jnp
    import pytest

    with pytest.raises(ValueError, match="jax_numpy_rank_promotion='raise'"):
        jnp.ones((2, 3)) * jnp.ones(3)
