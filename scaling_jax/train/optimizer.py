"""The paper's optimizer: AdamW, global-norm clipping, linear warm-up then cosine decay.

Weight decay skips vectors (norm gains), as OpenLM does; optax decays by ``lr · wd · p``
like ``torch.optim.AdamW``.
"""

from __future__ import annotations

import jax
import optax

from scaling_jax.config import ConfigError
from scaling_jax.train.config import OptimizerSection


def schedule(opt: OptimizerSection, steps: int) -> optax.Schedule:
    """0 → lr linearly over ``warmup`` steps, then cosine to ``cooldown_lr`` at ``steps``."""
    if opt.warmup >= steps:
        raise ConfigError(f"optimizer.warmup: {opt.warmup} steps is not below the run's {steps} steps")
    return optax.warmup_cosine_decay_schedule(0.0, opt.lr, opt.warmup, steps, opt.cooldown_lr)


def optimizer(opt: OptimizerSection, steps: int) -> optax.GradientTransformation:
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)  # noqa: E731
    return optax.chain(
        optax.clip_by_global_norm(opt.clip),
        optax.adamw(schedule(opt, steps), b1=opt.b1, b2=opt.b2, eps=opt.eps,
                    weight_decay=opt.weight_decay, mask=decay_mask),
    )
