"""The downstream evaluator against the model's raw forward pass, and the synthetic suite on a CPU ladder.

    python benchmarks/bench_eval.py [--run RUN_DIR] [--tasks synthetic] [--repeats 5] [--batch-tokens 8192]

Without ``--run`` it trains ``configs/train/cpu_smoke.yaml`` (checkpoints and validation every
25 steps) into a temporary folder first.

Speed: the whole suite (``run_suite``: cached prompts, bucketed batches, the jitted scorer,
per-example records) on the run's last checkpoint, warm, against the model's own ``apply``
jitted alone and run back to back on the very same padded batches already on the device, in the
same process, alternating, ``--repeats`` times each (medians). Ratio = raw seconds / suite
seconds (goal >= 0.8). Compiles: programs built by the scorer's first (cold) run, against the
number of buckets used.

Ladder: every checkpoint of the run scored on the synthetic suite, beside its validation loss
(when the run logged one at that step), the corpus's own mixture scored by the same code, and
each task's exact Bayes accuracy.
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

from scaling_jax.eval import batching  # noqa: E402
from scaling_jax.eval.suite import prepare, resolve_tasks, run_suite  # noqa: E402
from scaling_jax.eval.synthetic_tasks import mixture_lm  # noqa: E402
from scaling_jax.eval.tasks import load_task  # noqa: E402
from scaling_jax.eval.tokenizers import IdTokenizer  # noqa: E402
from scaling_jax.train.lm import load_run, run_tokenizer  # noqa: E402


def train_smoke(out: Path) -> Path:
    from scaling_jax.train.config import load_train_config
    from scaling_jax.train.loop import train

    cfg = load_train_config(Path(__file__).resolve().parents[1] / "configs/train/cpu_smoke.yaml",
                            ["checkpoint.every=25", "checkpoint.keep=20", "logging.val_every=25",
                             "logging.progress=false", "logging.tensorboard=false"])
    train(cfg, out)
    return out


def val_losses(run: Path) -> dict[int, float]:
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        m = json.loads(line)
        if m.get("kind", "").startswith("val/"):
            out[m["step"]] = m["loss"]
    return out


def speed(loaded, tokenizer, specs, repeats: int, batch_tokens: int) -> dict:
    lm = loaded.lm
    t0 = time.perf_counter()
    cold = run_suite(lm, tokenizer, specs, tokens_per_batch=batch_tokens).summary
    cold_s = time.perf_counter() - t0
    ids = IdTokenizer(lm.vocab_size)
    tasks = [t for t in (load_task(s) for s in specs) if t is not None]
    encoded = [e for t in tasks for e in prepare(t, ids if t.spec.token_text else tokenizer, lm.max_seq_len,
                                                     None)[1]]
    batches = list(batching.plan(encoded, lm.max_seq_len, tokens_per_batch=batch_tokens, shards=lm.shards,
                                 smallest_bucket=16))
    on_device = [jax.device_put(b.inputs, lm.batch_sharding) if lm.batch_sharding is not None
                 else jax.device_put(b.inputs) for b in batches]
    forward = jax.jit(lm.apply)

    def raw():
        with jax.set_mesh(lm.mesh):
            outs = [forward(lm.params, x) for x in on_device]
        jax.block_until_ready(outs)

    raw()  # compile
    suite_s, raw_s = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        res = run_suite(lm, tokenizer, specs, tokens_per_batch=batch_tokens)
        suite_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        raw()
        raw_s.append(time.perf_counter() - t)
    padded = sum(b.inputs.size for b in batches)
    real = sum(len(t) - 1 for e in encoded for t in e.tokens)
    n_ex = res.summary["speed"]["examples"]
    s, r = float(np.median(suite_s)), float(np.median(raw_s))
    return {"examples": n_ex, "batches": len(batches), "buckets": len({b.inputs.shape[1] for b in batches}),
            "compiles_cold": cold["speed"]["compiles"], "cold_s": cold_s, "suite_s": s, "raw_s": r,
            "examples_per_s": n_ex / s, "tokens_per_s": padded / s, "raw_tokens_per_s": padded / r,
            "padded_tokens": padded, "real_tokens": real, "ratio": r / s}


def ladder(run: Path, specs) -> list[dict]:
    losses = val_losses(run)
    rows = []
    for step in sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit()):
        loaded = load_run(run / "checkpoints" / str(step))
        s = run_suite(loaded.lm, None, specs).summary
        rows.append({"model": f"step {step}", "loss": losses.get(step),
                     **{k: v["accuracy"] for k, v in s["tasks"].items()}, "err": s["err_synthetic"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a run folder (default: train configs/train/cpu_smoke.yaml first)")
    ap.add_argument("--tasks", default="synthetic")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--tokenizer")
    args = ap.parse_args()
    run = Path(args.run) if args.run else train_smoke(Path(tempfile.mkdtemp(prefix="bench_eval_")) / "run")
    loaded = load_run(run)
    corpus = loaded.config.data.corpus
    syn = corpus.synthetic if corpus.kind == "synthetic" else None
    specs = resolve_tasks(args.tasks, syn)
    tok = run_tokenizer(loaded.config, loaded.lm.vocab_size, args.tokenizer)
    sp = speed(loaded, tok, specs, args.repeats, args.batch_tokens)
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; run {run} step {loaded.step}; "
          f"tasks {args.tasks}")
    print(f"suite: {sp['examples']} examples, {sp['batches']} batches in {sp['buckets']} bucket(s), "
          f"{sp['padded_tokens']} tokens ({sp['real_tokens']} not padding)")
    print(f"{'':24s}{'seconds':>10s}{'examples/s':>12s}{'tokens/s':>12s}")
    print(f"{'eval suite (warm)':24s}{sp['suite_s']:10.3f}{sp['examples_per_s']:12.0f}{sp['tokens_per_s']:12.0f}")
    print(f"{'raw forward':24s}{sp['raw_s']:10.3f}{'':12s}{sp['raw_tokens_per_s']:12.0f}")
    print(f"ratio (raw s / suite s): {sp['ratio']:.2f}; compiles on the cold run: {sp['compiles_cold']} "
          f"for {sp['buckets']} bucket(s); cold run {sp['cold_s']:.2f} s")
    if syn is not None and args.tasks == "synthetic":
        rows = ladder(run, specs)
        oracle = run_suite(mixture_lm(syn), None, specs).summary
        rows.append({"model": "mixture (true LM)", "loss": None,
                     **{k: v["accuracy"] for k, v in oracle["tasks"].items()}, "err": oracle["err_synthetic"]})
        rows.append({"model": "Bayes optimum", "loss": None,
                     **{s.label: s.bayes_accuracy for s in specs},
                     "err": float(np.mean([1 - s.bayes_accuracy for s in specs]))})
        rows.append({"model": "chance", "loss": None, **{s.label: s.chance for s in specs},
                     "err": float(np.mean([1 - s.chance for s in specs]))})
        labels = [s.label for s in specs]
        print(f"\n{'model':20s}{'val loss':>10s}" + "".join(f"{lb:>17s}" for lb in labels) + f"{'mean err':>10s}")
        for r in rows:
            loss = f"{r['loss']:.4f}" if r["loss"] is not None else "-"
            print(f"{r['model']:20s}{loss:>10s}" + "".join(f"{r[lb]:17.3f}" for lb in labels) + f"{r['err']:10.3f}")


if __name__ == "__main__":
    main()
