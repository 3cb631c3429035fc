"""The paper's optimizer: AdamW, global-norm clipping, linear warm-up then cosine decay (or
warmup-stable-decay, ``optimizer.schedule: wsd``).

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

FRACTION_UNITS = 10_000  # wsd.decay_fraction in 1/10000ths: decay steps in exact int32 arithmetic


def decay_steps(opt: OptimizerSection, steps):
    """A WSD run's decay length: round(steps · decay_fraction), at least 1, in integers alone
    (``steps`` an int or a traced int32), so the host and the compiled step agree on every step."""
    f = round(opt.wsd.decay_fraction * FRACTION_UNITS)
    q, r = steps // FRACTION_UNITS, steps % FRACTION_UNITS
    n = q * f + (r * f + FRACTION_UNITS // 2) // FRACTION_UNITS
    return max(n, 1) if isinstance(n, int) else jnp.maximum(n, 1)


def decay_start(opt: OptimizerSection, steps: int) -> int:
    """The step at which a WSD run of ``steps`` steps leaves its stable rate: the steps before it
    are those of every longer run too, so it is where a branch of that length leaves its trunk."""
    return steps - decay_steps(opt, steps)


def schedule(opt: OptimizerSection, steps: int | jax.Array) -> optax.Schedule:
    """0 → lr linearly over ``warmup`` steps, then cosine to ``cooldown_lr`` at ``steps`` (optax's
    ``warmup_cosine_decay_schedule``, written in jnp so ``steps`` may be traced: a train step
    compiled with the run length as an argument serves every budget of its shape). With
    ``schedule: wsd``: lr until :func:`decay_start`, then ``wsd.decay_shape`` down to
    ``cooldown_lr`` at ``steps``; the stable part is the same value whatever the run length."""
    if isinstance(steps, int) and opt.warmup >= steps:
        raise ConfigError(f"optimizer.warmup: {opt.warmup} steps is not below the run's {steps} steps")
    if opt.schedule == "wsd":
        return _wsd(opt, steps)
    alpha = opt.cooldown_lr / opt.lr

    def lr(count):
        count = jnp.asarray(count, jnp.float32)
        warm = opt.lr * count / max(opt.warmup, 1)
        t = jnp.clip((count - opt.warmup) / (jnp.asarray(steps, jnp.float32) - opt.warmup), 0.0, 1.0)
        cos = opt.lr * ((1.0 - alpha) * 0.5 * (1.0 + jnp.cos(jnp.pi * t)) + alpha)
        return jnp.where(count < opt.warmup, warm, cos)

    return lr


DECAY = {"linear": lambda t: 1.0 - t, "sqrt": lambda t: 1.0 - jnp.sqrt(t),
         "cosine": lambda t: 0.5 * (1.0 + jnp.cos(jnp.pi * t))}


def _wsd(opt: OptimizerSection, steps: int | jax.Array) -> optax.Schedule:
    """A decay that starts inside the warm-up takes over where the warm-up ends (a trunk refuses such
    branches, ``train/branches.py``; a checkpoint reader builds the optimizer for warm-up + 1 steps)."""
    shape = DECAY[opt.wsd.decay_shape]

    def lr(count):
        count = jnp.asarray(count, jnp.float32)
        n = jnp.asarray(steps, jnp.int32)
        start = (n - decay_steps(opt, n)).astype(jnp.float32)
        warm = opt.lr * count / max(opt.warmup, 1)
        t = jnp.clip((count - start) / (n.astype(jnp.float32) - start), 0.0, 1.0)
        decayed = opt.cooldown_lr + (opt.lr - opt.cooldown_lr) * shape(t)
        return jnp.where(count < opt.warmup, warm, jnp.where(count <= start, jnp.float32(opt.lr), decayed))

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
