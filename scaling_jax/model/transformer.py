"""The OpenLM decoder-only transformer the paper trained, in Flax NNX.

Token embedding; per layer x += Attn(Norm(x)) and x += SwiGLU(Norm(x)); final Norm; untied
head. Norms are gain-only LayerNorms (no bias), attention has qk-norm (a gain-only LayerNorm
over all heads of q and of k, as OpenLM applies it) and rotary embeddings; no biases anywhere.
Weights are kept in ``param_dtype`` (float32 master) and cast to ``dtype`` for compute.
Every parameter names its logical axes in ``out_sharding``; sharding.py maps them to a mesh.

Shape suffixes: B batch, L sequence, D model width, H heads, K head dim, F SwiGLU width,
V vocabulary.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from scaling_jax.model import remat
from scaling_jax.model.config import ModelConfig
from scaling_jax.model.sharding import constrain

ACT = ("batch", "seq", None)  # activations between blocks: batch split, width whole


def _param(rngs: nnx.Rngs, shape, std, axes, dtype):
    """Truncated-normal (±3σ) weight, as OpenLM initialises, with logical axis names."""
    w = std * jax.random.truncated_normal(rngs.params(), -3.0, 3.0, shape, jnp.float32)
    return nnx.Param(w.astype(dtype), out_sharding=axes, eager_sharding=False)


def _gain(shape, axes, dtype):
    return nnx.Param(jnp.ones(shape, dtype), out_sharding=axes, eager_sharding=False)


def _norm(x, gain, eps, axes=(-1,)):
    """Gain-only LayerNorm over ``axes``, computed in float32, returned in x's dtype."""
    x32 = x.astype(jnp.float32)
    mean = x32.mean(axes, keepdims=True)
    var = jnp.square(x32 - mean).mean(axes, keepdims=True)
    gain = gain.astype(jnp.float32).reshape((1,) * (x.ndim - gain.ndim) + gain.shape)  # explicit broadcast
    y = (x32 - mean) * jax.lax.rsqrt(var + eps) * gain
    return y.astype(x.dtype)


def _dense(x, w, n_in: int = 1):
    """x's last ``n_in`` axes contracted with w's first ``n_in``, as one 2-D matmul.

    XLA:CPU runs 2-D GEMMs (and the transposes their gradients need) faster than the
    same contraction written on 3-D/4-D operands; on GPU the reshapes are free bitcasts.
    """
    lead, k = x.shape[: x.ndim - n_in], math.prod(w.shape[:n_in])
    y = x.reshape(-1, k) @ w.reshape(k, -1).astype(x.dtype)
    return y.reshape(*lead, *w.shape[n_in:])


def attention_impl(choice: str, q_BxLxHxK) -> str | None:
    """The ``jax.nn.dot_product_attention`` implementation for ``choice``.

    'auto' takes cuDNN's fused (flash) kernel on an Ampere-or-newer GPU for 16-bit inputs with a
    head width it supports: XLA's own attention materializes the B×H×L×L scores, which at seq 2048 costs
    ~2× the step time and, without remat, more memory than an H200 has.
    """
    if choice != "auto":
        return choice
    K = q_BxLxHxK.shape[-1]
    fused = (jax.default_backend() == "gpu" and _compute_capability() >= 8.0
             and q_BxLxHxK.dtype in (jnp.bfloat16, jnp.float16) and K % 8 == 0 and K <= 128)
    return "cudnn" if fused else None


def _compute_capability() -> float:
    """The first device's CUDA compute capability (0 where unknown): cuDNN's fused attention needs
    Ampere (8.0) or newer."""
    try:
        return float(getattr(jax.devices()[0], "compute_capability", 0) or 0)
    except (TypeError, ValueError):
        return 0.0


def _rotary_angles(cfg: ModelConfig, L: int):
    """cos, sin of the rotary angles in float32 (shared by all layers): each 1×L×1×K/2, the angle
    of position l; with ``positional='head_rotary'`` each 1×1×H×K/2, the angle of head h (OpenLM's
    old layout applied the position table along the head axis)."""
    K = cfg.head_dim
    inv_freq = cfg.rope_theta ** (-jnp.arange(0, K, 2, dtype=jnp.float32) / K)
    n = cfg.n_heads if cfg.positional == "head_rotary" else L
    angle_NxK2 = jnp.arange(n, dtype=jnp.float32)[:, None] * inv_freq[None, :]
    if cfg.positional == "head_rotary":
        return jnp.cos(angle_NxK2)[None, None, :, :], jnp.sin(angle_NxK2)[None, None, :, :]
    return jnp.cos(angle_NxK2)[None, :, None, :], jnp.sin(angle_NxK2)[None, :, None, :]


def _rotary(x_BxLxHxK, cos, sin):
    """Rotary position embedding, rotate-half (GPT-NeoX) convention, in float32."""
    x1, x2 = jnp.split(x_BxLxHxK.astype(jnp.float32), 2, axis=-1)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x_BxLxHxK.dtype)


class Block(nnx.Module):
    """Pre-norm causal self-attention then pre-norm SwiGLU, each with a residual."""

    def __init__(self, cfg: ModelConfig, layer_id, *, rngs: nnx.Rngs):
        self.cfg = cfg
        D, H, K, F, pd = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.ffn_dim, cfg.param_dtype
        std = 1.0 / math.sqrt(D)
        depth = jnp.sqrt(2.0 * (jnp.asarray(layer_id, jnp.float32) + 1.0))  # OpenLM's out-proj scaling
        self.attn_norm = _gain((D,), ("norm",), pd)
        self.wq_DxHxK = _param(rngs, (D, H, K), std, ("embed", "heads", "head_dim"), pd)
        self.wk_DxHxK = _param(rngs, (D, H, K), std, ("embed", "heads", "head_dim"), pd)
        self.wv_DxHxK = _param(rngs, (D, H, K), std, ("embed", "heads", "head_dim"), pd)
        if cfg.qk_norm:
            self.q_norm = _gain((H, K), ("heads", "head_dim"), pd)
            self.k_norm = _gain((H, K), ("heads", "head_dim"), pd)
        self.wo_HxKxD = _param(rngs, (H, K, D), std / depth, ("heads", "head_dim", "embed"), pd)
        self.ffn_norm = _gain((D,), ("norm",), pd)
        self.w1_DxF = _param(rngs, (D, F), std, ("embed", "mlp"), pd)  # gate
        self.w2_DxF = _param(rngs, (D, F), std, ("embed", "mlp"), pd)  # up
        self.w3_FxD = _param(rngs, (F, D), 1.0 / math.sqrt(F) / depth, ("mlp", "embed"), pd)

    def attention(self, h_BxLxD, rope):
        """Causal self-attention of the normed input, projected back to width D."""
        cfg = self.cfg
        q_BxLxHxK = _dense(h_BxLxD, self.wq_DxHxK[...])
        k_BxLxHxK = _dense(h_BxLxD, self.wk_DxHxK[...])
        v_BxLxHxK = _dense(h_BxLxD, self.wv_DxHxK[...])
        if cfg.qk_norm:
            q_BxLxHxK = _norm(q_BxLxHxK, self.q_norm[...], cfg.norm_eps, axes=(-2, -1))
            k_BxLxHxK = _norm(k_BxLxHxK, self.k_norm[...], cfg.norm_eps, axes=(-2, -1))
        q_BxLxHxK = _rotary(q_BxLxHxK, *rope)
        k_BxLxHxK = _rotary(k_BxLxHxK, *rope)
        o_BxLxHxK = jax.nn.dot_product_attention(
            q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, is_causal=True, implementation=attention_impl(cfg.attention, q_BxLxHxK)
        )
        return _dense(o_BxLxHxK, self.wo_HxKxD[...], n_in=2)

    def swiglu(self, h_BxLxD):
        """SwiGLU feed-forward of the normed input: (silu(h·w1) ⊙ h·w2)·w3."""
        gate_BxLxF = _dense(h_BxLxD, self.w1_DxF[...])
        up_BxLxF = _dense(h_BxLxD, self.w2_DxF[...])
        return _dense(jax.nn.silu(gate_BxLxF) * up_BxLxF, self.w3_FxD[...])

    def __call__(self, x_BxLxD, rope):
        eps = self.cfg.norm_eps
        x_BxLxD = x_BxLxD + self.attention(_norm(x_BxLxD, self.attn_norm[...], eps), rope)
        return x_BxLxD + self.swiglu(_norm(x_BxLxD, self.ffn_norm[...], eps))


class Transformer(nnx.Module):
    """Decoder-only LM: ``model(tokens_BxL) -> float32 logits_BxLxV``."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        D, V, pd = cfg.d_model, cfg.vocab_size, cfg.param_dtype
        std = 1.0 / math.sqrt(D)
        self.embed_VxD = _param(rngs, (V, D), std, ("embed_vocab", "embed"), pd)
        if cfg.scan_layers:
            @nnx.split_rngs(splits=cfg.n_layers)
            @nnx.vmap(in_axes=(0, 0), out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
            def stacked(rngs, layer_id):
                return Block(cfg, layer_id, rngs=rngs)

            self.blocks = stacked(rngs, jnp.arange(cfg.n_layers))
        else:
            self.blocks = nnx.List([Block(cfg, i, rngs=rngs) for i in range(cfg.n_layers)])
        self.final_norm = _gain((D,), ("norm",), pd)
        self.head_DxV = _param(rngs, (D, V), std, ("embed", "vocab"), pd)

    def hidden(self, tokens_BxL) -> jax.Array:
        """Final-normed hidden states x_BxLxD in the compute dtype."""
        cfg = self.cfg
        if tokens_BxL.shape[1] > cfg.seq_len:
            raise ValueError(f"sequence of {tokens_BxL.shape[1]} tokens exceeds seq_len={cfg.seq_len}")
        # Gather rows from the whole table (all-gathered over fsdp, as FSDP does for weights).
        table_VxD = constrain(self.embed_VxD[...].astype(cfg.dtype), ("embed_vocab", None))
        x_BxLxD = constrain(table_VxD[tokens_BxL], ACT)
        rope = _rotary_angles(cfg, tokens_BxL.shape[1])
        policy = remat.choose(cfg, remat.per_device_batch(tokens_BxL.shape[0]))

        def block_fn(graphdef):
            """(block state, x) -> x, rematerialised per cfg.remat (model/remat.py)."""
            def apply(state, x_BxLxD):
                return constrain(nnx.merge(graphdef, state)(x_BxLxD, rope), ACT)
            if policy == "none":
                return apply
            return jax.checkpoint(apply, policy=remat.POLICIES[policy])

        if cfg.scan_layers:
            graphdef, state = nnx.split(self.blocks)
            apply = block_fn(graphdef)
            x_BxLxD, _ = jax.lax.scan(lambda x, s: (apply(s, x), None), x_BxLxD, state)
        else:
            for block in self.blocks:
                graphdef, state = nnx.split(block)
                x_BxLxD = block_fn(graphdef)(state, x_BxLxD)
        return _norm(x_BxLxD, self.final_norm[...], cfg.norm_eps)

    def logits(self, x_BxLxD) -> jax.Array:
        """Untied head in the compute dtype, accumulated and returned in float32."""
        B, L, D = x_BxLxD.shape
        w_DxV = self.head_DxV[...].astype(self.cfg.dtype)
        logits = jnp.dot(x_BxLxD.reshape(B * L, D), w_DxV, preferred_element_type=jnp.float32)
        return constrain(logits.reshape(B, L, -1), ("batch", "seq", "vocab"))

    def __call__(self, tokens_BxL) -> jax.Array:
        return self.logits(self.hidden(tokens_BxL))
