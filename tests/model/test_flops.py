"""The FLOP counts MFU divides by: a hand count, the matmuls of the traced train step, XLA's count."""

import math

import jax
import numpy as np
import pytest
from jax.sharding import AbstractMesh

from scaling_jax.model import flops, remat
from scaling_jax.model.config import load_model_config
from scaling_jax.model.sharding import make_mesh
from scaling_jax.train import optimizer, step
from scaling_jax.train.config import OptimizerSection

# d = 32, L = 2, 2 heads, f = 16·ceil(floor(8·32/3)/16) = 16·ceil(85/16) = 96, V = 64, seq 16.
TINY = {"seq_len": 16, "vocab_size": 64, "n_layers": 2, "ffn_multiple": 16, "attention": "xla"}


def test_hand_count_of_a_tiny_model():
    cfg = load_model_config("tiny_d32", TINY)
    assert (cfg.d_model, cfg.n_layers, cfg.ffn_dim, cfg.vocab_size, cfg.seq_len) == (32, 2, 96, 64, 16)
    # Forward, per token: q, k, v, o: 2 layers · 2 · 4 · 32² = 16,384; SwiGLU: 2 · 2 · 3 · 32 · 96 = 36,864;
    # head: 2 · 32 · 64 = 4,096; QKᵀ and AV: 2 layers · 2 · 2 · 16 · 32 = 4,096, causal half 2,048.
    assert flops.forward_matmuls(cfg) == {"projections": 16_384, "ffn": 36_864, "head": 4_096, "attention": 2_048}
    assert flops.flops_per_token(cfg, exact=True) == 3 * (16_384 + 36_864 + 4_096 + 2_048) == 178_176
    assert flops.flops_per_token(cfg, exact=True, causal=False) == 3 * (16_384 + 36_864 + 4_096 + 4_096)
    # N = 2·V·d + L·(4d² + 3df + 2d) + d = 4,096 + 2·(4,096 + 9,216 + 64) + 32 = 30,880.
    assert flops.flops_per_token(cfg) == 6 * 30_880
    # A step of 8 sequences split over 4 devices: 8 · 16 tokens · 178,176 / 4.
    assert flops.step_flops_per_device(cfg, 8, 4) == 8 * 16 * 178_176 / 4


def _subjaxprs(params):
    for v in params.values():
        for x in v if isinstance(v, (tuple, list)) else (v,):
            if hasattr(x, "jaxpr") and hasattr(x, "consts"):  # a ClosedJaxpr
                yield x.jaxpr
            elif hasattr(x, "eqns"):
                yield x


def _dot_flops(jaxpr) -> int:
    """2 · output size · contracted size of every dot_general the program runs (scans × length)."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        assert name != "while", "a loop of unknown trip count"
        if name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[i] for i in contract)
        times = eqn.params["length"] if name == "scan" else 1
        total += times * sum(_dot_flops(j) for j in _subjaxprs(eqn.params))
    return total


def _train_step(scan_layers: bool, grad_accum: int, B: int = 4):
    cfg = load_model_config("tiny_d32", {**TINY, "scan_layers": scan_layers})
    mesh = make_mesh(devices=jax.devices()[:1])
    s = step.setup(cfg, optimizer.optimizer(OptimizerSection(warmup=0), 10), mesh, seed=0, grad_accum=grad_accum)
    tokens = jax.ShapeDtypeStruct((B, cfg.seq_len + 1), np.int32, sharding=s.batch_sharding)
    return cfg, mesh, s, tokens


def test_exact_count_equals_the_matmuls_of_the_traced_train_step():
    """Every matmul of the real step (micro-batches and layers scanned) against the count. XLA's
    attention computes the whole score square, so the step matches the non-causal count."""
    cfg, mesh, s, tokens = _train_step(scan_layers=True, grad_accum=2)
    with jax.set_mesh(mesh):
        jaxpr = jax.make_jaxpr(s.train_step)(s.abstract_state, tokens)
    n_tokens = tokens.shape[0] * cfg.seq_len
    assert _dot_flops(jaxpr.jaxpr) == flops.flops_per_token(cfg, exact=True, causal=False) * n_tokens
    half = flops.forward_matmuls(cfg, causal=False)["attention"] // 2
    assert flops.flops_per_token(cfg, exact=True) == flops.flops_per_token(cfg, exact=True, causal=False) - 3 * half


def test_xla_cost_analysis_of_the_compiled_step_is_the_matmuls_plus_elementwise():
    """XLA counts a scanned loop's body once, so the layers are unrolled here; its count adds the
    norms, softmax, loss and AdamW's elementwise work to the matmuls (about 14 % at this tiny width).
    The CPU backend's LLVM optimizations are off: they change the machine code, not XLA's count."""
    cfg, mesh, s, tokens = _train_step(scan_layers=False, grad_accum=1)
    with jax.set_mesh(mesh):
        compiled = jax.jit(s.train_step).lower(s.abstract_state, tokens).compile({"xla_backend_optimization_level": 0})
    xla = compiled.cost_analysis()["flops"]
    matmuls = flops.flops_per_token(cfg, exact=True, causal=False) * tokens.shape[0] * cfg.seq_len
    assert matmuls <= xla <= 1.25 * matmuls, xla / matmuls


@pytest.mark.parametrize("name, per_device, policy", [
    ("d=576_l=24_h=8", 8, "none"), ("d=576_l=24_h=8", 16, "none"), ("d=576_l=24_h=8", 32, "dots"),
    ("d=576_l=24_h=8", 64, "block"), ("d=1024_l=24_h=8", 16, "dots"), ("d=1024_l=24_h=8", 64, "block"),
    ("open_lm_1b", 8, "block")])
def test_remat_auto_reads_the_table_by_sequences_per_device(name, per_device, policy):
    cfg = load_model_config(name, {"remat": "auto"})
    assert remat.choose(cfg, per_device) == policy
    assert remat.choose(load_model_config(name, {"remat": "dots"}), per_device) == "dots"  # set: kept


@pytest.mark.parametrize("seq_len, per_device, policy", [(1024, 32, "none"), (1024, 64, "dots"), (1024, 128, "block"),
                                                         (4096, 4, "block")])
def test_remat_auto_bounds_are_tokens_per_device(seq_len, per_device, policy):
    """The table was measured at 2048: half the sequence fits twice the sequences; a longer one is
    not in the table (attention's scores grow with its square): 'block'."""
    cfg = load_model_config("d=576_l=24_h=8", {"remat": "auto", "seq_len": seq_len})
    assert remat.choose(cfg, per_device) == policy


def test_remat_auto_counts_sequences_per_device_on_the_mesh():
    """Under a 2×2 (data × fsdp) mesh a traced batch of 64 rows is 16 sequences per device."""
    assert remat.per_device_batch(64) == 64  # no mesh in context
    with jax.sharding.use_abstract_mesh(AbstractMesh((2, 2, 2), ("data", "fsdp", "tensor"))):
        assert remat.per_device_batch(64) == 16


@pytest.mark.parametrize("name, batch, rematerialised", [("tiny_d16", 2, True), ("d=576_l=24_h=8", 2, False),
                                                          ("d=576_l=24_h=8", 8200, True)])
def test_the_transformer_applies_the_auto_choice(name, batch, rematerialised):
    """A tiny model under the table's name: 2 sequences of 8 tokens on one device run without remat
    (the table's 'none'), 8200 (65,600 tokens, past its 32 × 2048) with it ('block'); a model not in
    the table takes 'block'."""
    from flax import nnx

    from scaling_jax.model.loss import lm_loss
    from scaling_jax.model.transformer import Transformer

    cfg = load_model_config("tiny_d16", {"name": name, "remat": "auto", "seq_len": 8, "vocab_size": 32})
    graphdef, state = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
    tokens = jax.ShapeDtypeStruct((batch, 9), np.int32)
    grad = jax.grad(lambda s, t: lm_loss(nnx.merge(graphdef, s), t[:, :-1], t[:, 1:])[0])
    program = str(jax.make_jaxpr(grad)(state, tokens))
    assert ("checkpoint" in program or "remat" in program) == rematerialised
