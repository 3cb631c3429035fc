"""Forward+backward speed of the model: JAX vs a PyTorch twin on CPU, or MFU on a GPU.

CPU mode (default): for each config, tokens/s of one forward+backward step (loss = CE +
z-loss, gradients of every parameter) in JAX and in benchmarks/torch_openlm.py (eager
PyTorch, same architecture, shapes and thread count), alternating the two for --rounds
rounds and keeping each side's best step; prints a table with the JAX/torch ratio.
The torch side runs in a subprocess with --torch-python (or $TORCH_PYTHON).

    python benchmarks/bench_model.py --torch-python /work/torchvenv/bin/python

MFU mode (GPU): tokens/s of a bf16 forward+backward step at seq 2048 for the 0.154B and
0.411B configs, MFU = flops_per_token(exact) · tokens/s / peak bf16 FLOP/s of the device
(model/flops.py's count, causal attention counted half; the peak from train/peak.py).

    python benchmarks/bench_model.py --mfu
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="tiny_d256:16:128,d=96_l=8_h=4:4:256",
                   help="comma list of CONFIG:BATCH:SEQ (CPU mode)")
    p.add_argument("--rounds", type=int, default=3, help="alternating JAX/torch rounds")
    p.add_argument("--steps", type=int, default=5, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both sides")
    p.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON"),
                   help="python with torch installed (default $TORCH_PYTHON)")
    p.add_argument("--mfu", action="store_true", help="GPU MFU mode for the 0.154B and 0.411B configs")
    p.add_argument("--mfu-configs", default="d=576_l=24_h=8:16:none,d=1024_l=24_h=8:8:dots",
                   help="comma list of CONFIG:BATCH:REMAT for --mfu (seq 2048, bf16)")
    p.add_argument("--peak-tflops", type=float,
                   help="--mfu: peak bf16 TFLOP/s of the device, for devices not in train/peak.py's table")
    p.add_argument("--json", help="also write results to this JSON file")
    return p.parse_args(argv)


def jax_step_seconds(cfg, batch, steps, warmup):
    """Best wall seconds of one jitted forward+backward step over ``steps`` runs."""
    import jax
    from flax import nnx

    from scaling_jax.model.loss import lm_loss
    from scaling_jax.model.transformer import Transformer

    graphdef, state = nnx.split(nnx.jit(lambda: Transformer(cfg, rngs=nnx.Rngs(0)))())
    tokens = jax.random.randint(jax.random.key(0), (batch, cfg.seq_len + 1), 0, cfg.vocab_size)

    @jax.jit
    def step(state, tokens):
        loss = lambda s: lm_loss(nnx.merge(graphdef, s), tokens[:, :-1], tokens[:, 1:])[0]
        return jax.grad(loss)(state)

    for _ in range(warmup):
        jax.block_until_ready(step(state, tokens))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        jax.block_until_ready(step(state, tokens))
        times.append(time.perf_counter() - t0)
    return min(times)


def torch_step_seconds(python, cfg, batch, steps, warmup, threads):
    spec = {"d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
            "vocab_size": cfg.vocab_size, "ffn_dim": cfg.ffn_dim, "batch": batch,
            "seq": cfg.seq_len, "steps": steps, "warmup": warmup, "threads": threads}
    out = subprocess.run([python, str(ROOT / "benchmarks" / "torch_openlm.py"), json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_mode(args):
    import jax

    from scaling_jax.model import counts
    from scaling_jax.model.config import load_model_config

    torch_ok = False
    if args.torch_python:
        probe = subprocess.run([args.torch_python, "-c", "import torch; print(torch.__version__)"],
                               capture_output=True, text=True)
        torch_ok = probe.returncode == 0
        torch_version = probe.stdout.strip()
    if not torch_ok:
        print("torch not available (pass --torch-python or set TORCH_PYTHON): JAX side only")
    rows = []
    for item in args.configs.split(","):
        name, batch, seq = item.rsplit(":", 2)
        cfg = load_model_config(name, [f"seq_len={seq}", "dtype=float32", "remat=none"])
        batch = int(batch)
        best_jax, best_torch = float("inf"), float("inf")
        for _ in range(args.rounds):
            best_jax = min(best_jax, jax_step_seconds(cfg, batch, args.steps, args.warmup))
            if torch_ok:
                t = torch_step_seconds(args.torch_python, cfg, batch, args.steps, args.warmup, args.threads)
                assert t["params"] == counts.trainable_params(cfg), (t["params"], counts.trainable_params(cfg))
                best_torch = min(best_torch, t["seconds"])
        tokens = batch * cfg.seq_len
        rows.append({"config": name, "params": counts.paper_params(cfg), "batch": batch, "seq": cfg.seq_len,
                     "jax_tok_s": tokens / best_jax,
                     "torch_tok_s": tokens / best_torch if torch_ok else None})
    print(f"\nforward+backward, float32, CPU: {args.threads} threads, jax {jax.__version__}"
          + (f", torch {torch_version} (eager)" if torch_ok else "") + f", best of {args.rounds}x{args.steps} steps")
    print(f"{'config':<16} {'N':>12} {'batch':>5} {'seq':>5} {'JAX tok/s':>11} {'torch tok/s':>11} {'JAX/torch':>9}")
    for r in rows:
        t = f"{r['torch_tok_s']:11.0f}" if r["torch_tok_s"] else f"{'-':>11}"
        ratio = f"{r['jax_tok_s'] / r['torch_tok_s']:9.2f}" if r["torch_tok_s"] else f"{'-':>9}"
        print(f"{r['config']:<16} {r['params']:>12,} {r['batch']:>5} {r['seq']:>5} {r['jax_tok_s']:11.0f} {t} {ratio}")
    return rows


def mfu_mode(args):
    import jax

    from scaling_jax.model import counts
    from scaling_jax.model.config import load_model_config
    from scaling_jax.train.peak import ACCELERATORS, peak_flops

    kind = jax.devices()[0].device_kind
    peak = peak_flops(kind, args.peak_tflops * 1e12 if args.peak_tflops else None)
    if peak is None:
        raise SystemExit(f"no bf16 peak known for device {kind!r} (known: {', '.join(a.name for a in ACCELERATORS)}); "
                         "pass --peak-tflops")
    rows = []
    for item in args.mfu_configs.split(","):
        name, batch, remat = item.rsplit(":", 2)
        cfg = load_model_config(name, ["dtype=bfloat16", "seq_len=2048", f"remat={remat}"])
        seconds = jax_step_seconds(cfg, int(batch), args.steps, args.warmup)
        tok_s = int(batch) * cfg.seq_len / seconds
        rows.append({"config": name, "batch": int(batch), "remat": cfg.remat, "tok_s": tok_s,
                     "mfu": counts.flops_per_token(cfg, exact=True) * tok_s / peak,
                     "mfu_6N": counts.flops_per_token(cfg) * tok_s / peak})
    print(f"\nforward+backward, bf16, seq 2048 on {kind} (peak {peak / 1e12:g} TFLOP/s)")
    print(f"{'config':<16} {'batch':>5} {'remat':>6} {'tok/s':>10} {'MFU':>6} {'MFU(6N)':>8}")
    for r in rows:
        print(f"{r['config']:<16} {r['batch']:>5} {r['remat']:>6} {r['tok_s']:10.0f} {r['mfu']:6.1%} "
              f"{r['mfu_6N']:8.1%}")
    return rows


def main(argv=None):
    args = parse_args(argv)
    if not args.mfu and args.threads != os.cpu_count():
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={args.threads}")
    sys.path.insert(0, str(ROOT))
    rows = mfu_mode(args) if args.mfu else cpu_mode(args)
    if args.json:
        from scaling_jax.atomic import write_json

        write_json(args.json, rows)


if __name__ == "__main__":
    main()
