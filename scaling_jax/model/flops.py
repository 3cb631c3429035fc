"""Training FLOPs of a ModelConfig, in the two conventions MFU is quoted in.

- ``6N``: 6·N per token, N counted as the paper counts it (its C = 6·N·D).
- exact: the matmuls one training step performs per token, the forward pass × 3 (each forward
  matmul has two of the same size in the backward pass). Forward, per token: per layer the
  q, k, v and output projections (2·4·d²) and the SwiGLU (2·3·d·f); the untied head (2·d·V;
  the input embedding is a lookup, not a matmul); attention's QKᵀ and AV, 2·seq·d each per
  layer, counted half for the causal mask (only the lower triangle is needed, as MaxText counts
  it; PaLM's appendix B counts it whole). Norms, rotary, softmax, the loss and the optimizer are
  elementwise and not counted. Rematerialised matmuls are not counted either: MFU counts the
  model's FLOPs, not the hardware's.
"""

from __future__ import annotations

from scaling_jax.model.config import ModelConfig
from scaling_jax.model.counts import paper_params


def forward_matmuls(cfg: ModelConfig, *, causal: bool = True) -> dict[str, int]:
    """Forward matmul FLOPs per token by part: 'projections' (q, k, v, o), 'ffn', 'head',
    'attention' (QKᵀ and AV; halved with ``causal``)."""
    d, L, f, V, S = cfg.d_model, cfg.n_layers, cfg.ffn_dim, cfg.vocab_size, cfg.seq_len
    attention = 2 * 2 * L * S * d  # QKᵀ and AV: S keys (values) of width H·K = d per query
    return {"projections": 2 * L * 4 * d * d, "ffn": 2 * L * 3 * d * f, "head": 2 * d * V,
            "attention": attention // 2 if causal else attention}


def flops_per_token(cfg: ModelConfig, exact: bool = False, *, causal: bool = True) -> int:
    """Training FLOPs per token: 6·N, or with ``exact`` 3 × the forward matmuls (causal attention
    counted half unless ``causal=False``)."""
    if not exact:
        return 6 * paper_params(cfg)
    return 3 * sum(forward_matmuls(cfg, causal=causal).values())


def step_flops_per_device(cfg: ModelConfig, sequences: int, devices: int = 1, *, exact: bool = True) -> float:
    """Model FLOPs of one optimizer step over ``sequences`` sequences of ``cfg.seq_len`` tokens,
    split evenly over ``devices``."""
    return flops_per_token(cfg, exact) * sequences * cfg.seq_len / devices
