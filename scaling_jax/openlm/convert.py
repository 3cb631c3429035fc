"""OpenLM state dict <-> our parameters, in NumPy.

Names and shapes are checked against the model config first (a missing, extra or mis-shaped
tensor is an error naming it); torch's (out, in) weights are transposed to our (in, out), the
fused q/k/v and gate/up projections split, and the per-layer tensors stacked on a leading layer
axis (``flat`` dicts below: ``blocks.<name>`` is n_layers×..., as the scanned model keeps them).
"""

from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling_jax.errors import UserError
from scaling_jax.model.config import ModelConfig
from scaling_jax.model.transformer import Transformer
from scaling_jax.openlm.names import buffer_shapes, layer, parameter_shapes


def inv_freq(cfg: ModelConfig) -> np.ndarray:
    """The rotary inverse frequencies, as OpenLM's RotaryEmbedding keeps them (float32, K/2)."""
    K = cfg.head_dim
    return (1.0 / cfg.rope_theta ** (np.arange(0, K, 2, dtype=np.float32) / K)).astype(np.float32)


def _hint(name: str, cfg: ModelConfig) -> str:
    if name.endswith(".bias"):
        return " (the paper's models use gain-only LayerNorms and bias-free linears)"
    if name.split(".")[-2] in ("q_norm", "k_norm"):
        return f" (qk-norm: the checkpoint and the config disagree; the config has qk_norm={cfg.qk_norm})"
    return ""


def check(sd: Mapping[str, np.ndarray], cfg: ModelConfig, where: str) -> None:
    """Every OpenLM parameter of ``cfg`` present with its shape, nothing else but rotary buffers,
    and those buffers' frequencies ``cfg.rope_theta``'s."""
    expected, buffers = parameter_shapes(cfg), buffer_shapes(cfg)
    for k, shape in {**expected, **buffers}.items():  # shapes first: a wrong --model shows on the first tensor
        if k in sd and tuple(np.shape(sd[k])) != shape:
            raise UserError(f"{where}: tensor {k} has shape {tuple(np.shape(sd[k]))}; model {cfg.name!r} (d_model="
                            f"{cfg.d_model}, n_heads={cfg.n_heads}, vocab_size={cfg.vocab_size}) expects {shape}")
    missing = [k for k in expected if k not in sd]
    if missing:
        raise UserError(f"{where}: tensor {missing[0]} is missing ({len(missing)} of model {cfg.name!r}'s "
                        f"{len(expected)} tensors missing){_hint(missing[0], cfg)}")
    extra = [k for k in sd if k not in expected and k not in buffers]
    if extra:
        raise UserError(f"{where}: tensor {extra[0]} of shape {tuple(np.shape(sd[extra[0]]))} is not in model "
                        f"{cfg.name!r} ({len(extra)} unexpected){_hint(extra[0], cfg)}")
    want = inv_freq(cfg)
    for b in buffers:
        if b in sd and not np.allclose(np.asarray(sd[b], np.float32), want, rtol=1e-5, atol=0):
            raise UserError(f"{where}: tensor {b} holds other rotary frequencies than rope_theta="
                            f"{cfg.rope_theta:g} gives")


def to_flat(sd: Mapping[str, np.ndarray], cfg: ModelConfig, where: str) -> dict[str, np.ndarray]:
    """A checked OpenLM state dict (wrapper prefixes stripped) -> our parameters, float32. Also runs
    under ``jax.eval_shape`` on abstract tensors, to check a big model's mapping without its memory."""
    check(sd, cfg, where)
    D, H, K, F = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.ffn_dim

    def get(name: str) -> np.ndarray:  # traced under jax.eval_shape (shape checks of big models), else NumPy
        x = sd[name]
        return x.astype(np.float32) if isinstance(x, jax.Array) else np.asarray(x, np.float32)

    def stack(fn) -> np.ndarray:
        xs = [fn(i) for i in range(cfg.n_layers)]
        return (jnp if isinstance(xs[0], jax.Array) else np).stack(xs)

    def qkv(i: int, j: int) -> np.ndarray:  # in_proj rows j·D..(j+1)·D are q, k, v; head h is rows h·K..
        return get(layer(i, "attention.in_proj.weight"))[j * D:(j + 1) * D].T.reshape(D, H, K)

    def w12(i: int, j: int) -> np.ndarray:  # rows 0..F are the gate, F..2F the up projection
        return get(layer(i, "feed_forward.w12.weight"))[j * F:(j + 1) * F].T

    blocks = {
        "attn_norm": stack(lambda i: get(layer(i, "attention_norm.weight"))),
        "wq_DxHxK": stack(lambda i: qkv(i, 0)),
        "wk_DxHxK": stack(lambda i: qkv(i, 1)),
        "wv_DxHxK": stack(lambda i: qkv(i, 2)),
        "wo_HxKxD": stack(lambda i: get(layer(i, "attention.out_proj.weight")).T.reshape(H, K, D)),
        "ffn_norm": stack(lambda i: get(layer(i, "ffn_norm.weight"))),
        "w1_DxF": stack(lambda i: w12(i, 0)),
        "w2_DxF": stack(lambda i: w12(i, 1)),
        "w3_FxD": stack(lambda i: get(layer(i, "feed_forward.w3.weight")).T),
    }
    if cfg.qk_norm:
        blocks["q_norm"] = stack(lambda i: get(layer(i, "attention.q_norm.weight")).reshape(H, K))
        blocks["k_norm"] = stack(lambda i: get(layer(i, "attention.k_norm.weight")).reshape(H, K))
    return {"embed_VxD": get("tok_embeddings.weight"), **{f"blocks.{k}": v for k, v in blocks.items()},
            "final_norm": get("norm.weight"), "head_DxV": get("output.weight").T}


def from_flat(flat: Mapping[str, np.ndarray], cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Our parameters -> an OpenLM state dict (float32, contiguous, rotary buffers included)."""
    D = cfg.d_model

    def b(name: str, i: int) -> np.ndarray:
        return np.asarray(flat[f"blocks.{name}"][i], np.float32)

    sd = {"tok_embeddings.weight": np.asarray(flat["embed_VxD"], np.float32)}
    for i in range(cfg.n_layers):
        q, k, v = (b(n, i).reshape(D, D) for n in ("wq_DxHxK", "wk_DxHxK", "wv_DxHxK"))
        sd[layer(i, "attention.in_proj.weight")] = np.concatenate([q, k, v], axis=1).T
        sd[layer(i, "attention.out_proj.weight")] = b("wo_HxKxD", i).reshape(D, D).T
        if cfg.qk_norm:
            sd[layer(i, "attention.q_norm.weight")] = b("q_norm", i).reshape(D)
            sd[layer(i, "attention.k_norm.weight")] = b("k_norm", i).reshape(D)
        sd[layer(i, "attention.pos_embed.inv_freq")] = inv_freq(cfg)
        sd[layer(i, "feed_forward.w12.weight")] = np.concatenate([b("w1_DxF", i), b("w2_DxF", i)], axis=1).T
        sd[layer(i, "feed_forward.w3.weight")] = b("w3_FxD", i).T
        sd[layer(i, "attention_norm.weight")] = b("attn_norm", i)
        sd[layer(i, "ffn_norm.weight")] = b("ffn_norm", i)
    sd["norm.weight"] = np.asarray(flat["final_norm"], np.float32)
    sd["output.weight"] = np.asarray(flat["head_DxV"], np.float32).T
    return {k: np.ascontiguousarray(v) for k, v in sd.items()}


def _name(path: tuple) -> tuple[str, int | None]:
    """A state path -> (flat name, layer index of an unscanned block or None)."""
    if path[0] == "blocks" and isinstance(path[1], int):
        return f"blocks.{path[2]}", path[1]
    return ".".join(map(str, path)), None


def to_state(flat: Mapping[str, np.ndarray], cfg: ModelConfig) -> nnx.State:
    """Our parameters as the model's ``nnx.State`` (host arrays in ``cfg.param_dtype``), in the
    layout ``cfg.scan_layers`` gives."""
    abstract = nnx.state(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))), nnx.Param)
    leaves = []
    for path, var in nnx.to_flat_state(abstract):
        name, i = _name(path)
        value = flat[name] if i is None else flat[name][i]
        leaves.append((path, var.replace(value=np.asarray(value, var.dtype))))
    return nnx.from_flat_state(leaves)


def from_state(state: nnx.State) -> dict[str, np.ndarray]:
    """A model's parameter state (any layout, arrays gathered to the host) -> our flat parameters."""
    flat: dict[str, dict | np.ndarray] = {}
    for path, var in nnx.to_flat_state(state):
        name, i = _name(path)
        value = np.asarray(jax.device_get(var.get_value()))
        if i is None:
            flat[name] = value
        else:
            flat.setdefault(name, {})[i] = value
    return {k: np.stack([v[i] for i in sorted(v)]) if isinstance(v, dict) else v for k, v in flat.items()}
