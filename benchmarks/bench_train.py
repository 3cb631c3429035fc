"""Whole training loop (data, step, logging) against the model-only step on the same batch.

    python benchmarks/bench_train.py [--config CONFIG] [--steps 60] [--peak-tflops T] [key=value ...]

Model-only: the jitted train step run back to back on one batch already on the devices.
Fed: the same step fed by the grain pipeline (read, shard, place) as the loop feeds it.
The two alternate in blocks of ``--block`` steps in one process, so both see the same
machine load; the input pipeline's share is the median over block pairs of
fed / model-only − 1, and must stay under 5 %.
Loop: the whole ``scaling_jax.train.loop.train`` (data, step, metrics, checkpoints) on the
same config, tokens/s read from its metrics.jsonl (the first interval, which holds
compilation, dropped). With ``--peak-tflops`` (the accelerator's dense bf16 peak per
device) it also prints the loop's MFU from the exact FLOP count.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaling_jax.data.pipeline import batches, open_source  # noqa: E402
from scaling_jax.model.counts import flops_per_token, paper_params  # noqa: E402
from scaling_jax.model.sharding import make_mesh  # noqa: E402
from scaling_jax.train import loop  # noqa: E402
from scaling_jax.train.config import budget, load_train_config, model_config  # noqa: E402
from scaling_jax.train.optimizer import optimizer  # noqa: E402
from scaling_jax.train.step import global_batch, setup  # noqa: E402


def paired_step_s(cfg, blocks: int, block: int) -> tuple[list[float], list[float]]:
    """Seconds per step, per block: (model-only, fed by the pipeline), alternating."""
    mc = model_config(cfg)
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    s = setup(mc, optimizer(cfg.optimizer, 2 * blocks * block + 1), mesh, seed=cfg.seed,
              grad_accum=cfg.budget.grad_accum, z_loss=cfg.optimizer.z_loss, vocab_chunk=cfg.vocab_chunk)
    src = open_source(cfg.data.corpus, "train", mc.seq_len)
    gb = cfg.budget.global_batch
    data = iter(batches(src, global_batch=gb, seed=0, shuffle=cfg.data.corpus.kind == "tokens",
                        threads=cfg.data.threads, prefetch=cfg.data.prefetch))
    model_s, fed_s = [], []
    with jax.set_mesh(mesh):
        state = s.init()
        tokens = global_batch(next(data), s.batch_sharding, gb)
        state, m = s.train_step(state, tokens)
        jax.block_until_ready(m)
        for _ in range(blocks):
            t = time.perf_counter()
            for _ in range(block):
                state, m = s.train_step(state, tokens)
            jax.block_until_ready(m)
            model_s.append((time.perf_counter() - t) / block)
            t = time.perf_counter()
            for _ in range(block):
                state, m = s.train_step(state, global_batch(next(data), s.batch_sharding, gb))
            jax.block_until_ready(m)
            fed_s.append((time.perf_counter() - t) / block)
    return model_s, fed_s


def loop_step_s(cfg, steps: int, tokens_per_step: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        loop.train(cfg, out)
        rows = [json.loads(ln) for ln in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_s"] for r in rows if r["kind"] == "train"][1:]
    return tokens_per_step / float(np.median(rates))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/train/cpu_smoke.yaml")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--blocks", type=int, default=20)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    every = max(args.steps // 6, 1)
    base = load_train_config(args.config, args.overrides)
    mc = model_config(base)
    per_step = base.budget.global_batch * mc.seq_len
    cfg = load_train_config(args.config, [
        *args.overrides, "budget.multiplier=null", f"budget.tokens={(args.steps + every) * per_step}",
        f"optimizer.warmup={min(base.optimizer.warmup, args.steps // 2)}",
        f"checkpoint.every={10 * args.steps}", f"logging.every={every}", "logging.val_every=0",
        "logging.progress=false", "logging.tensorboard=false", f"data.val_sequences={base.budget.global_batch}"])
    assert budget(cfg, paper_params(mc), mc.seq_len).steps == args.steps + every

    model_s, fed_s = paired_step_s(cfg, args.blocks, args.block)
    lp = loop_step_s(cfg, args.steps, per_step)
    m, fed = float(np.median(model_s)), float(np.median(fed_s))
    share = float(np.median(np.asarray(fed_s) / np.asarray(model_s))) - 1
    print(f"config {args.config} {' '.join(args.overrides)}: model {mc.name}, batch "
          f"{cfg.budget.global_batch}×{mc.seq_len}, {jax.device_count()} × {jax.devices()[0].device_kind}")
    print(f"{'measure':<36}{'s/step':>10}{'tokens/s':>12}")
    print(f"{'model-only step (median block)':<36}{m:>10.4f}{per_step / m:>12.0f}")
    print(f"{'step fed by pipeline (median block)':<36}{fed:>10.4f}{per_step / fed:>12.0f}")
    print(f"{'whole train loop (median interval)':<36}{lp:>10.4f}{per_step / lp:>12.0f}")
    print(f"input pipeline share: {100 * share:+.1f}% of step time (median of {args.blocks} paired "
          f"blocks of {args.block}; goal < 5%)")
    print(f"whole loop / model-only: {lp / m:.3f} (separate run, so machine load differs)")
    if args.peak_tflops:
        mfu = flops_per_token(mc, exact=True) * per_step / lp / (args.peak_tflops * 1e12 * jax.device_count())
        print(f"MFU through the loop: {100 * mfu:.1f}% of {args.peak_tflops} TFLOP/s per device")


if __name__ == "__main__":
    main()
