"""The paper's optimizer: AdamW, global-norm clipping, linear warm-up then cosine decay.

Weight decay skips the norm gains (parameters named ``*norm``, stacked over layers or not),
as OpenLM skips all 1-D parameters; optax decays by ``lr · wd · p``
like ``torch.optim.AdamW``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from scaling_jax.config import ConfigError
from scaling_jax.train.config import OptimizerSection


def schedule(opt: OptimizerSection, steps: int | jax.Array) -> optax.Schedule:
    """0 → lr linearly over ``warmup`` steps, then cosine to ``cooldown_lr`` at ``steps`` (optax's
    ``warmup_cosine_decay_schedule``, written in jnp so ``steps`` may be traced: a train step
    compiled with the run length as an argument serves every budget of its shape)."""
    if isinstance(steps, int) and opt.warmup >= steps:
        raise ConfigError(f"optimizer.warmup: {opt.warmup} steps is not below the run's {steps} steps")
    alpha = opt.cooldown_lr / opt.lr

    def lr(count):
        count = jnp.asarray(count, jnp.float32)
        warm = opt.lr * count / max(opt.warmup, 1)
        t = jnp.clip((count - opt.warmup) / (jnp.asarray(steps, jnp.float32) - opt.warmup), 0.0, 1.0)
        cos = opt.lr * ((1.0 - alpha) * 0.5 * (1.0 + jnp.cos(jnp.pi * t)) + alpha)
        return jnp.where(count < opt.warmup, warm, cos)

    return lr


def optimizer(opt: OptimizerSection, steps: int | jax.Array) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(opt.clip),
        optax.adamw(schedule(opt, steps), b1=opt.b1, b2=opt.b2, eps=opt.eps,
                    weight_decay=opt.weight_decay, mask=decay_mask),
    )


def decay_mask(params):
    """True for every parameter that gets weight decay: all but the norm gains."""
    def decays(path, _):
        return not str(getattr(path[-1], "key", path[-1])).endswith("norm")
    return jax.tree_util.tree_map_with_path(decays, params)
