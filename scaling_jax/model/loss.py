"""Language-model loss: next-token cross-entropy plus z-loss, in float32.

Per token, with Z the softmax normaliser: ce = log Z − logit[target], z = log² Z; the loss is
mean(ce) + z_loss_weight · mean(z) over unmasked tokens (OpenLM's z-loss, weight 1e-4).
``vocab_chunk`` computes log Z and the target logit over vocabulary chunks with an online
logsumexp, recomputing each chunk's logits in the backward pass, so the full float32
B×L×V logits never exist at once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _lse_and_target_full(model, x_BxLxD, targets_BxL):
    logits_BxLxV = model.logits(x_BxLxD)
    lse_BxL = jax.nn.logsumexp(logits_BxLxV, axis=-1)
    tgt_BxL = jnp.take_along_axis(logits_BxLxV, targets_BxL[..., None], axis=-1)[..., 0]
    return lse_BxL, tgt_BxL


def _lse_and_target_chunked(model, x_BxLxD, targets_BxL, chunk: int):
    w_DxV = model.head_DxV[...].astype(model.cfg.dtype)
    D, V = w_DxV.shape
    n = -(-V // chunk)
    w_NxDxC = jnp.pad(w_DxV, ((0, 0), (0, n * chunk - V))).reshape(D, n, chunk).transpose(1, 0, 2)
    B, L = targets_BxL.shape

    @jax.checkpoint
    def step(carry, inp):
        m_BxL, s_BxL, tgt_BxL = carry
        i, w_DxC = inp
        logits_BxLxC = jnp.dot(x_BxLxD.reshape(B * L, D), w_DxC, preferred_element_type=jnp.float32)
        logits_BxLxC = logits_BxLxC.reshape(B, L, chunk)
        col_1x1xC = (i * chunk + jnp.arange(chunk))[None, None, :]
        logits_BxLxC = jnp.where(col_1x1xC < V, logits_BxLxC, -jnp.inf)
        new_m = jnp.maximum(m_BxL, jax.lax.stop_gradient(logits_BxLxC.max(-1)))
        s_BxL = s_BxL * jnp.exp(m_BxL - new_m) + jnp.exp(logits_BxLxC - new_m[..., None]).sum(-1)
        hit_BxLxC = targets_BxL[..., None] == col_1x1xC
        tgt_BxL = tgt_BxL + jnp.where(hit_BxLxC, logits_BxLxC, 0.0).sum(-1)
        return (new_m, s_BxL, tgt_BxL), None

    init = (jnp.full((B, L), -jnp.inf), jnp.zeros((B, L)), jnp.zeros((B, L)))
    (m_BxL, s_BxL, tgt_BxL), _ = jax.lax.scan(step, init, (jnp.arange(n), w_NxDxC))
    return m_BxL + jnp.log(s_BxL), tgt_BxL


def lm_loss(model, tokens_BxL, targets_BxL, *, z_loss_weight: float = 1e-4,
            vocab_chunk: int | None = None, mask_BxL=None):
    """(loss, aux): loss = mean CE + z_loss_weight · mean log²Z over tokens where mask is 1.

    aux: 'ce' (mean cross-entropy, nats), 'z_loss' (the weighted z term),
    'ce_per_seq_B' (each sequence's mean cross-entropy, for intervals over sequences).
    """
    x_BxLxD = model.hidden(tokens_BxL)
    if vocab_chunk is None:
        lse_BxL, tgt_BxL = _lse_and_target_full(model, x_BxLxD, targets_BxL)
    else:
        if vocab_chunk <= 0:
            raise ValueError(f"vocab_chunk: must be positive, got {vocab_chunk}")
        lse_BxL, tgt_BxL = _lse_and_target_chunked(model, x_BxLxD, targets_BxL, vocab_chunk)
    ce_BxL = lse_BxL - tgt_BxL
    mask_BxL = jnp.ones_like(ce_BxL) if mask_BxL is None else mask_BxL.astype(jnp.float32)
    n_tokens = jnp.maximum(mask_BxL.sum(), 1.0)
    ce = (ce_BxL * mask_BxL).sum() / n_tokens
    z_loss = z_loss_weight * (jnp.square(lse_BxL) * mask_BxL).sum() / n_tokens
    ce_per_seq_B = (ce_BxL * mask_BxL).sum(-1) / jnp.maximum(mask_BxL.sum(-1), 1.0)
    return ce + z_loss, {"ce": ce, "z_loss": z_loss, "ce_per_seq_B": ce_per_seq_B}
