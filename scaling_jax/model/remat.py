"""Rematerialisation (activation checkpointing) of the blocks, and the per-size table of ``remat: auto``.

Policies: 'none' keeps every activation of a block for the backward pass; 'block' keeps only
each block's input and recomputes the rest (the least memory); 'dots' also keeps the outputs of
matmuls without batch dimensions (the projections and the SwiGLU's, not attention's scores).

'auto' looks the model up in ``TABLE`` by its name, with the tokens per device in one micro-batch
(sequences × seq_len against the bound × 2048): the first row whose bound is not exceeded gives
the policy; past the last row, for a model not in the table, or at sequences longer than 2048,
'block'. The rows are the fastest policy measured to fit on one
H100 80GB at seq 2048 in bf16 through the whole training loop (BENCHMARKS.md, "Training loop";
d576 at 32 sequences with vocab_chunk 8192). The micro-batch is read where the policy is applied,
from the traced batch and the mesh in context, so every caller (the loop, benchmarks, probes) gets
the same choice.
"""

from __future__ import annotations

import math

import jax

from scaling_jax.model.config import ModelConfig
from scaling_jax.model.sharding import LOGICAL_RULES

POLICIES = {
    "block": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}

# model name -> ((largest sequences per device, policy), ...), ascending.
TABLE: dict[str, tuple[tuple[int, str], ...]] = {
    "d=576_l=24_h=8": ((16, "none"), (32, "dots")),  # 20.0 % (batch 16, none) and 22.5 % MFU (32, dots)
    "d=1024_l=24_h=8": ((32, "dots"),),  # 33.2 % (16) and 34.3 % (32); 'none' at 16 did not fit
}
FALLBACK = "block"


TABLE_SEQ = 2048  # the sequence length the table was measured at


def choose(cfg: ModelConfig, per_device_batch: int) -> str:
    """The policy a block of ``cfg`` runs under for micro-batches of ``per_device_batch`` sequences
    per device: ``cfg.remat``, or for 'auto' the table's, its bounds read as tokens per device (a
    shorter sequence fits more of them); longer sequences than measured (attention's scores grow
    with its square) take 'block'."""
    if cfg.remat != "auto":
        return cfg.remat
    if cfg.seq_len > TABLE_SEQ:
        return FALLBACK
    tokens = per_device_batch * cfg.seq_len
    return next((p for bound, p in TABLE.get(cfg.name, ()) if tokens <= bound * TABLE_SEQ), FALLBACK)


def per_device_batch(batch: int) -> int:
    """Sequences per device of a (traced, global) batch of ``batch`` rows under the mesh in context
    (split over the 'batch' rule's axes); the whole batch without a mesh."""
    mesh = jax.sharding.get_abstract_mesh()
    axes = LOGICAL_RULES["batch"]
    axes = (axes,) if isinstance(axes, str) else axes
    if mesh.empty or not set(axes) <= set(mesh.axis_names):
        return batch
    return math.ceil(batch / math.prod(mesh.shape[a] for a in axes))
