"""Whole training loop (data, step, logging) against the model-only step on the same batch.

    python benchmarks/bench_train.py [--config CONFIG] [--steps 60] [--peak-tflops T] [key=value ...]

Model-only: the jitted train step run back to back on one batch already on the devices.
Loop: ``scaling_jax.train.loop.train`` on the same config, tokens/s read from its
metrics.jsonl (first interval, which holds compilation, dropped). The two are measured
alternately ``--repeats`` times and medians compared: the input pipeline's share is
loop step time / model step time − 1 and must stay under 5 %. With ``--peak-tflops`` (the
accelerator's dense bf16 peak) it also prints the loop's MFU from the exact FLOP count.
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

from scaling_jax.data.pipeline import open_source  # noqa: E402
from scaling_jax.model.counts import flops_per_token  # noqa: E402
from scaling_jax.model.sharding import make_mesh  # noqa: E402
from scaling_jax.train import loop  # noqa: E402
from scaling_jax.train.config import budget, load_train_config, model_config  # noqa: E402
from scaling_jax.train.optimizer import optimizer  # noqa: E402
from scaling_jax.model.counts import paper_params  # noqa: E402
from scaling_jax.train.step import global_batch, setup  # noqa: E402


def model_only_step_s(cfg, steps: int) -> float:
    mc = model_config(cfg)
    mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    s = setup(mc, optimizer(cfg.optimizer, steps + 1000), mesh, seed=cfg.seed,
              grad_accum=cfg.budget.grad_accum, z_loss=cfg.optimizer.z_loss, vocab_chunk=cfg.vocab_chunk)
    src = open_source(cfg.data.corpus, "train", mc.seq_len)
    gb = cfg.budget.global_batch
    with jax.set_mesh(mesh):
        state = s.init()
        tokens = global_batch(src.read_batch(np.arange(gb)), s.batch_sharding, gb)
        state, m = s.train_step(state, tokens)
        jax.block_until_ready(m)
        t = time.perf_counter()
        for _ in range(steps):
            state, m = s.train_step(state, tokens)
        jax.block_until_ready(m)
        return (time.perf_counter() - t) / steps


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
    p.add_argument("--repeats", type=int, default=3)
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

    model_s, loop_s = [], []
    for _ in range(args.repeats):
        model_s.append(model_only_step_s(cfg, args.steps))
        loop_s.append(loop_step_s(cfg, args.steps, per_step))
    m, lp = float(np.median(model_s)), float(np.median(loop_s))
    print(f"config {args.config} {' '.join(args.overrides)}: model {mc.name}, batch "
          f"{cfg.budget.global_batch}×{mc.seq_len}, {jax.device_count()} × {jax.devices()[0].device_kind}")
    print(f"{'measure':<28}{'s/step':>12}{'tokens/s':>14}")
    print(f"{'model-only step':<28}{m:>12.4f}{per_step / m:>14.0f}")
    print(f"{'whole loop (data incl.)':<28}{lp:>12.4f}{per_step / lp:>14.0f}")
    print(f"runs: model-only {[round(x, 4) for x in model_s]}, loop {[round(x, 4) for x in loop_s]}")
    print(f"input pipeline + loop overhead: {100 * (lp / m - 1):+.1f}% of step time (goal < 5%)")
    if args.peak_tflops:
        mfu = flops_per_token(mc, exact=True) * per_step / lp / (args.peak_tflops * 1e12 * jax.device_count())
        print(f"MFU through the loop: {100 * mfu:.1f}% of {args.peak_tflops} TFLOP/s per device")


if __name__ == "__main__":
    main()
