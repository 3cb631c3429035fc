"""OpenLM's tensor names and shapes for one ModelConfig (open_lm/model.py's module tree).

Torch Linear weights are (out, in). Per layer: ``attention.in_proj`` stacks q, k, v along its
out axis (3D×D), ``attention.q_norm``/``k_norm`` are gain-only LayerNorms over all heads (D),
``feed_forward.w12`` stacks the SwiGLU gate then up halves (2F×D), ``feed_forward.w3`` is F→D.
``attention.pos_embed.inv_freq`` is the rotary module's buffer, not a parameter.
"""

from __future__ import annotations

from scaling_jax.model.config import ModelConfig

# Module wrappers whose names prefix every tensor: FSDP, DDP, torch.compile, activation checkpointing.
WRAPPERS = ("_fsdp_wrapped_module", "module", "_orig_mod", "_checkpoint_wrapped_module")


def strip_wrappers(name: str) -> str:
    """``name`` without the wrapper components that FSDP/DDP/compile insert anywhere in it."""
    return ".".join(part for part in name.split(".") if part not in WRAPPERS)


def layer(i: int, rest: str) -> str:
    return f"layers.{i}.{rest}"


def parameter_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every OpenLM parameter of ``cfg`` and its shape, in the model's order."""
    D, F, V = cfg.d_model, cfg.ffn_dim, cfg.vocab_size
    shapes = {"tok_embeddings.weight": (V, D)}
    for i in range(cfg.n_layers):
        shapes[layer(i, "attention.in_proj.weight")] = (3 * D, D)
        shapes[layer(i, "attention.out_proj.weight")] = (D, D)
        if cfg.qk_norm:
            shapes[layer(i, "attention.q_norm.weight")] = (D,)
            shapes[layer(i, "attention.k_norm.weight")] = (D,)
        shapes[layer(i, "feed_forward.w12.weight")] = (2 * F, D)
        shapes[layer(i, "feed_forward.w3.weight")] = (D, F)
        shapes[layer(i, "attention_norm.weight")] = (D,)
        shapes[layer(i, "ffn_norm.weight")] = (D,)
    shapes["norm.weight"] = (D,)
    shapes["output.weight"] = (V, D)
    return shapes


def buffer_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The rotary buffers OpenLM's state dicts carry (one inverse-frequency vector per layer)."""
    return {layer(i, "attention.pos_embed.inv_freq"): (cfg.head_dim // 2,) for i in range(cfg.n_layers)}
