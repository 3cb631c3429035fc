"""Parameter, FLOP and memory counts of a ModelConfig, from the abstract model (no weights).

N as the paper counts it: every parameter except the qk-norm gains, i.e.
N = 2·V·d + L·(4d² + 3·d·f + 2d) + d (embedding, untied head, blocks, final norm).
FLOPs per token for training: ``model/flops.py`` (6·N, or the exact matmul count with causal
attention counted half, which MFU uses).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from flax import nnx

from scaling_jax.model.config import ModelConfig
from scaling_jax.model.transformer import Transformer

QK_NORM_NAMES = ("q_norm", "k_norm")  # qk-norm gains: trainable, not in the paper's N


@functools.lru_cache(maxsize=64)
def _param_sizes(cfg: ModelConfig) -> tuple[tuple[str, int], ...]:
    """(dotted path, size) of every parameter, from nnx.eval_shape: no memory spent."""
    abstract = nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))
    flat = nnx.to_flat_state(nnx.state(abstract, nnx.Param))
    return tuple((".".join(map(str, path)), int(np.prod(var.shape))) for path, var in flat)


def trainable_params(cfg: ModelConfig) -> int:
    """The model's true trainable parameter count (qk-norm gains included)."""
    return sum(n for _, n in _param_sizes(cfg))


def paper_params(cfg: ModelConfig) -> int:
    """N as the paper (and its testbed ``params``) counts it: qk-norm gains excluded."""
    return sum(n for path, n in _param_sizes(cfg) if path.split(".")[-1] not in QK_NORM_NAMES)


def params_no_embed(cfg: ModelConfig) -> int:
    """N without the input embedding (the testbed's ``params_no_embed``)."""
    return paper_params(cfg) - cfg.vocab_size * cfg.d_model


def flops_per_token(cfg: ModelConfig, exact: bool = False) -> int:
    """Training FLOPs per token: 6·N, or with ``exact`` the matmul count (``model/flops.py``)."""
    from scaling_jax.model import flops

    return flops.flops_per_token(cfg, exact)


def memory_bytes(cfg: ModelConfig) -> dict[str, int]:
    """Bytes of the parameters (in param_dtype) and of AdamW's two float32 moments."""
    n = trainable_params(cfg)
    return {"param_bytes": n * jnp.dtype(cfg.param_dtype).itemsize, "optimizer_bytes": 2 * 4 * n}
