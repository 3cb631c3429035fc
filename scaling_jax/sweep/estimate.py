"""Cost of a sweep before it runs: FLOPs and wall time per run.

Wall time is D / throughput, with throughput (tokens per second) for each model taken from the
spec's ``throughput`` table or measured by :func:`probe`: a few jitted optimizer steps of the
run's own model, optimizer and batch on random tokens, after one warm-up step (compilation
excluded). Runs of one shape share one probe.
"""

from __future__ import annotations

import functools
import time

import numpy as np

from scaling_jax.sweep.spec import Run


def shape_key(run: Run) -> tuple:
    """Runs with equal keys compile to the same train step."""
    c = run.config
    return (run.model, tuple(sorted(c.model.set.items())), c.budget.global_batch, c.budget.grad_accum,
            c.vocab_chunk, c.mesh.data, c.mesh.fsdp, c.mesh.tensor)


def probe(run: Run, steps: int = 5) -> float:
    """Measured training throughput (tokens/s) of ``run``'s step on this machine."""
    import jax

    from scaling_jax.model.sharding import make_mesh
    from scaling_jax.train.config import model_config
    from scaling_jax.train.optimizer import optimizer
    from scaling_jax.train.step import global_batch, setup

    cfg = run.config
    mc = model_config(cfg)
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    # The same jitted step as the run's (the run length an argument), so a probe warms the cache for it.
    s = setup(mc, functools.partial(optimizer, cfg.optimizer), mesh, seed=cfg.seed,
              total_steps=max(run.steps, cfg.optimizer.warmup + 1), grad_accum=cfg.budget.grad_accum,
              z_loss=cfg.optimizer.z_loss, vocab_chunk=cfg.vocab_chunk)
    gb = cfg.budget.global_batch
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, mc.vocab_size, (gb, mc.seq_len + 1), dtype=np.int32)
    with jax.set_mesh(mesh):
        batch = global_batch(tokens, s.batch_sharding, gb)
        state = s.init()
        state, m = s.train_step(state, batch)  # compile
        jax.block_until_ready(m)
        t0 = time.perf_counter()
        for _ in range(steps):
            state, m = s.train_step(state, batch)
        jax.block_until_ready(m)
        dt = time.perf_counter() - t0
    return steps * gb * mc.seq_len / dt


def throughputs(runs: list[Run], table: dict[str, float], steps: int = 0) -> dict[tuple, float]:
    """Tokens/s per shape: from ``table`` (by model name) or, with ``steps > 0``, probed."""
    out: dict[tuple, float] = {}
    for r in runs:
        key = shape_key(r)
        if key in out:
            continue
        if r.model in table:
            out[key] = float(table[r.model])
        elif steps > 0:
            out[key] = probe(r, steps)
    return out


def seconds(run: Run, tps: dict[tuple, float]) -> float | None:
    """Estimated training wall time of ``run``'s own steps (a branch: its decay) (None without a
    throughput for its shape)."""
    t = tps.get(shape_key(run))
    return None if t is None else (run.steps - run.start_step) * run.config.budget.global_batch * _seq_len(run) / t


def _seq_len(run: Run) -> int:
    from scaling_jax.train.config import model_config

    return model_config(run.config).seq_len


def exact_flops(run: Run) -> float:
    """Training FLOPs with attention (``model/flops.py``'s exact count: the step's matmuls, causal
    attention counted half) times the tokens the run trains itself (a branch: its decay; a trunk:
    up to its last branch point)."""
    from scaling_jax.model.counts import flops_per_token
    from scaling_jax.train.config import model_config

    tokens = run.D if run.kind == "run" else (run.steps - run.start_step) * run.step_tokens
    return float(flops_per_token(model_config(run.config), exact=True)) * tokens
