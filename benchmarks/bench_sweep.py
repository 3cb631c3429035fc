"""A sweep's overhead: the ladder's wall time against the sum of its runs' pure step times.

    python benchmarks/bench_sweep.py [--spec configs/sweeps/cpu_ladder_ci.yaml] [--probe-steps 20]
                                     [--probe-repeats 1]

Runs every run of the spec as the local runner does (one ``sweep worker`` process training the
runs one after another; the first run's wall time includes the worker's start) into a fresh
folder with a fresh persistent compilation cache, then, in this process, measures the training
throughput of each distinct shape (``sweep.estimate.probe``: jitted steps on random
tokens after a warm-up step; with ``--probe-repeats R``, R rounds over all shapes, each shape's
median round used and its spread printed, since one short probe on a shared machine can be off by
tens of percent). Pure step time of a run = its steps × tokens per step / that throughput.
Overhead = 1 − Σ pure / Σ wall (process start, imports, compilation, validation, downstream
evaluation, checkpoints; goal < 15 %). A second reference is measured inside each run at the same
time as its wall time: the run's tokens over the median throughput of its logged training
intervals (the first, which holds compilation, left out): the loop's own stepping, so that
overhead is what lies outside the steps, and the gap between the two references is the loop's
per-step cost over the bare step plus the probe's noise. Compiles: the compilation-cache entries each
run added (a run whose programs were all compiled before adds none).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(REPO / "configs" / "sweeps" / "cpu_ladder_ci.yaml"))
    ap.add_argument("--probe-steps", type=int, default=20)
    ap.add_argument("--probe-repeats", type=int, default=1)
    ap.add_argument("--out", default=None, help="sweep root (default: a temporary folder)")
    args = ap.parse_args()

    work = Path(args.out or tempfile.mkdtemp(prefix="bench_sweep_"))
    cache = work / "jax_cache"
    env = {**os.environ, "SCALING_JAX_COMPILATION_CACHE": str(cache)}
    os.environ["SCALING_JAX_COMPILATION_CACHE"] = str(cache)  # the probes below too

    from scaling_jax.config import parse_overrides
    from scaling_jax.sweep import estimate
    from scaling_jax.sweep.folders import write_run_configs
    from scaling_jax.sweep.local import Worker
    from scaling_jax.sweep.spec import expand, load_spec
    from scaling_jax.sweep.state import LOG_FILE, checkpoint_steps

    spec = load_spec(args.spec, parse_overrides([f"out={work / 'runs'}"]))
    runs = expand(spec)
    write_run_configs(spec, runs)
    rows, t_all = [], time.perf_counter()
    worker = Worker(env)  # as the local runner trains them: one worker process, runs one after another
    for r in runs:  # one at a time, so each run's wall time and cache entries are its own
        before = set(os.listdir(cache)) if cache.is_dir() else set()
        t0 = time.perf_counter()
        rc = worker.train(r, Path(r.out) / LOG_FILE)
        wall = time.perf_counter() - t0
        if rc != 0 or checkpoint_steps(r.out)[-1:] != [r.steps]:
            sys.exit(f"{r.name}: exit {rc}; see {Path(r.out) / LOG_FILE}")
        new = set(os.listdir(cache)) - before if cache.is_dir() else set()
        rows.append({"run": r, "wall": wall, "compiles": len(new),
                     "programs": sorted(n.split("-")[0] for n in new)})
    worker.close()
    sweep_wall = time.perf_counter() - t_all
    rounds = [estimate.throughputs(runs, {}, steps=args.probe_steps) for _ in range(args.probe_repeats)]
    tps = {k: float(np.median([r[k] for r in rounds])) for k in rounds[0]}
    print(f"spec {args.spec}: {len(runs)} runs, jobs=1, probe {args.probe_steps} steps per shape, "
          f"{args.probe_repeats} round(s), median used")
    for k, v in tps.items():
        lo, hi = min(r[k] for r in rounds), max(r[k] for r in rounds)
        print(f"  probe {k[0]:<22} {v:>10.0f} tokens/s (rounds {lo:.0f} .. {hi:.0f}, spread {hi / lo - 1:.1%})")
    print(f"{'run':<28} {'steps':>6} {'wall s':>8} {'probe s':>8} {'overhead':>9} {'loop s':>8} {'overhead':>9} "
          f"{'compiles':>8}  programs compiled")
    tot_wall = tot_pure = tot_loop = 0.0
    for row in rows:
        r = row["run"]
        pure, loop = estimate.seconds(r, tps), loop_seconds(r.out, r.start_step)
        tot_wall, tot_pure, tot_loop = tot_wall + row["wall"], tot_pure + pure, tot_loop + loop
        print(f"{r.name:<28} {r.steps:>6} {row['wall']:>8.1f} {pure:>8.1f} {1 - pure / row['wall']:>8.1%} "
              f"{loop:>8.1f} {1 - loop / row['wall']:>8.1%} {row['compiles']:>8}  {' '.join(row['programs'])}")
    shapes = len({estimate.shape_key(r) for r in runs})
    print(f"{'total':<28} {sum(r.steps for r in runs):>6} {tot_wall:>8.1f} {tot_pure:>8.1f} "
          f"{1 - tot_pure / tot_wall:>8.1%} {tot_loop:>8.1f} {1 - tot_loop / tot_wall:>8.1%} "
          f"{sum(x['compiles'] for x in rows):>8}")
    print(f"sweep wall {sweep_wall:.1f} s; {shapes} distinct shapes; overhead against the probe "
          f"{1 - tot_pure / tot_wall:.1%}, against the loop's own steps {1 - tot_loop / tot_wall:.1%} (goal < 15 %)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


def loop_seconds(run_dir: str, start_step: int = 0) -> float:
    """The run's tokens over the median throughput of its logged training intervals after the first
    (a WSD branch: those of its own steps, after ``start_step``, where it left its trunk)."""
    rows = [json.loads(line) for line in Path(run_dir, "metrics.jsonl").read_text().splitlines()]
    train = [m for m in rows if m["kind"] == "train" and m["step"] > start_step]
    rates = [m["tokens_per_s"] for m in train[1:]] or [train[0]["tokens_per_s"]]
    return (train[-1]["tokens"] - train[0]["tokens"] / train[0]["step"] * start_step) / float(np.median(rates))


if __name__ == "__main__":
    main()
