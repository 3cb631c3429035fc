"""Sharding rules. The 8-device checks run in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8, so the rest of the suite keeps 1 device."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import PartitionSpec as P

from scaling_jax.model import sharding

ROOT = Path(__file__).resolve().parents[2]

SHARDED_RUN = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from flax import nnx
    from scaling_jax.model import sharding
    from scaling_jax.model.config import load_model_config
    from scaling_jax.model.loss import lm_loss
    from scaling_jax.model.transformer import Transformer

    cfg = load_model_config("tiny_d32", ["n_layers=2", "n_heads=4", "vocab_size=96", "seq_len=16"])
    model = nnx.jit(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))()
    tokens = jax.random.randint(jax.random.key(0), (4, 17), 0, 96)
    forward = nnx.jit(lambda m, t: m(t))
    grads = nnx.jit(nnx.grad(lambda m, t: lm_loss(m, t[:, :-1], t[:, 1:], vocab_chunk=40)[0]))
    ref_logits, ref_grads = forward(model, tokens[:, :-1]), grads(model, tokens)

    mesh = sharding.make_mesh(data=2, fsdp=2, tensor=2)
    sharding.shard_model(model, mesh)
    tokens = jax.device_put(tokens, sharding.batch_sharding(mesh))
    with jax.set_mesh(mesh):
        logits, sharded_grads = forward(model, tokens[:, :-1]), grads(model, tokens)
    spec = lambda a: [list(x) if isinstance(x, tuple) else x for x in a.sharding.spec]
    diff = lambda a, b: float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
    params = {".".join(map(str, p)): v[...] for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    json.dump({
        "logits_diff": diff(logits, ref_logits),
        "grads_diff": max(jax.tree.leaves(jax.tree.map(diff, sharded_grads, ref_grads))),
        "specs": {k: spec(v) for k, v in params.items()},
        "shard_shapes": {k: list(v.addressable_shards[0].data.shape) for k, v in params.items()},
        "shapes": {k: list(v.shape) for k, v in params.items()},
        "logits_spec": spec(logits),
        "filled": dict(sharding.make_mesh(data=-1, tensor=4).shape),
    }, sys.stdout)
""")


@pytest.fixture(scope="module")
def sharded():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu",
           "JAX_NUMPY_RANK_PROMOTION": "raise"}
    proc = subprocess.run([sys.executable, "-c", SHARDED_RUN], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_sharded_model_matches_unsharded(sharded):
    assert sharded["logits_diff"] < 1e-5
    assert sharded["grads_diff"] < 1e-5
    assert sharded["logits_spec"] == [["data", "fsdp"], None, "tensor"]


@pytest.mark.slow
def test_params_are_really_split(sharded):
    specs, shapes, shards = sharded["specs"], sharded["shapes"], sharded["shard_shapes"]
    assert specs["blocks.wq_DxHxK"][:3] == [None, "fsdp", "tensor"]
    assert specs["head_DxV"] == ["fsdp", "tensor"]
    assert shapes["blocks.wq_DxHxK"] == [2, 32, 4, 8]
    assert shards["blocks.wq_DxHxK"] == [2, 16, 2, 8]
    assert shards["blocks.wo_HxKxD"] == [2, 2, 8, 16]
    assert shards["blocks.w1_DxF"] == [2, 16, 128]
    assert shards["blocks.w3_FxD"] == [2, 128, 16]
    assert shards["head_DxV"] == [16, 48]
    assert shards["embed_VxD"] == [96, 16]


@pytest.mark.slow
def test_make_mesh_fills_minus_one(sharded):
    assert sharded["filled"] == {"data": 2, "fsdp": 1, "tensor": 4}


@pytest.mark.parametrize(
    "sizes, match",
    [
        ({"data": -1, "fsdp": -1}, "at most one may be -1"),
        ({"data": 0}, "mesh axis data: size must be positive or -1"),
        ({"data": 1, "tensor": 2}, r"need 2 devices, have 1"),
        ({"data": -1, "fsdp": 2}, r"do not divide 1 devices"),
    ],
)
def test_make_mesh_errors(sizes, match):
    with pytest.raises(ValueError, match=match):
        sharding.make_mesh(**sizes, devices=jax.devices()[:1])


def test_rules_and_constraints_without_mesh():
    assert sharding.logical_to_spec(("batch", "seq", "vocab")) == P(("data", "fsdp"), None, "tensor")
    with pytest.raises(ValueError, match="logical axis 'nope' has no rule"):
        sharding.logical_to_spec(("nope",))
    x = jnp.ones((4, 3))
    assert sharding.constrain(x, ("batch", None)) is x  # no mesh set: a no-op
