"""lm-evaluation-harness throughput: the ``scaling_jax`` lm-eval model against our own evaluator on the
same requests.

    python benchmarks/bench_harness.py [--run RUN_DIR] [--examples 400] [--repeats 5] [--batch-tokens 8192]

Without ``--run`` it trains ``configs/train/cpu_smoke.yaml`` into a temporary folder first (as
``bench_eval.py``). The requests are the synthetic suite's rows (3 tasks × ``--examples``): each
row's prompt and continuation as an lm-eval ``loglikelihood`` request (token-id text, the ``ids``
tokenizer). Both sides start from text and are warm (compiled):

- ours: ``run_suite`` with its prompt and batch caches emptied before each call (tokenize, plan
  the buckets, score, judge);
- harness: ``HarnessLM.loglikelihood`` on the requests (lm-eval's tokenization of each pair, rows
  bucketed and scored by the same scorer).

Alternating, ``--repeats`` times each, medians; ratio = our seconds / harness seconds, i.e. the
harness's throughput as a fraction of ours (goal >= 0.7). Also printed: the largest difference
between the two sides' log-likelihoods of the same pair, per token, and our evaluator on a repeat
call (prompts and batches cached), which lm-eval's requests cannot have.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lm_eval.api.instance import Instance  # noqa: E402

from benchmarks.bench_eval import train_smoke  # noqa: E402
from scaling_jax.eval import suite  # noqa: E402
from scaling_jax.eval.harness import HarnessLM  # noqa: E402
from scaling_jax.eval.synthetic_tasks import synthetic_suite  # noqa: E402
from scaling_jax.eval.tasks import load_task  # noqa: E402
from scaling_jax.eval.tokenizers import IdTokenizer  # noqa: E402
from scaling_jax.train.lm import load_run  # noqa: E402


def requests(lm, specs) -> list[Instance]:
    """Every scored row of the suite as an lm-eval loglikelihood request (prompt, continuation)."""
    ids = IdTokenizer(lm.vocab_size)
    out = []
    for spec in specs:
        items, _ = suite.prepare(load_task(spec), ids, lm.max_seq_len, None)
        out += [Instance("loglikelihood", {}, (p, c), len(out)) for it in items for p, c in zip(it.prompts,
                                                                                                 it.continuations)]
    return out


def ours(lm, specs, batch_tokens: int, cold: bool = True):
    if cold:
        suite._ENCODED.clear()
        suite._LAYOUTS.clear()
    return suite.run_suite(lm, None, specs, tokens_per_batch=batch_tokens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a run folder on the synthetic language (default: train cpu_smoke first)")
    ap.add_argument("--examples", type=int, default=400, help="examples per synthetic task")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    args = ap.parse_args()
    run = Path(args.run) if args.run else train_smoke(Path(tempfile.mkdtemp(prefix="bench_harness_")) / "run")
    loaded = load_run(run)
    lm = loaded.lm
    specs = synthetic_suite(loaded.config.data.corpus.synthetic, n_examples=args.examples)
    reqs = requests(lm, specs)
    model = HarnessLM.from_lm(lm, IdTokenizer(lm.vocab_size), batch_tokens=args.batch_tokens)

    first = ours(lm, specs, args.batch_tokens)  # compiles
    got = model.loglikelihood(reqs, disable_tqdm=True)
    ref = np.array([lp for e in first.examples for lp in e["logprobs"]])
    n_tok = np.array([n for e in first.examples for n in e["n_tokens"]])
    worst = float(np.max(np.abs(np.array([g for g, _ in got]) - ref) / n_tok))

    ours_s, harness_s, cached_s = [], [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ours(lm, specs, args.batch_tokens)
        ours_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        model.loglikelihood(reqs, disable_tqdm=True)
        harness_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        ours(lm, specs, args.batch_tokens, cold=False)
        cached_s.append(time.perf_counter() - t)
    o, h, c = float(np.median(ours_s)), float(np.median(harness_s)), float(np.median(cached_s))
    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}; run {run} step {loaded.step}; "
          f"{len(reqs)} requests ({len(specs)} tasks x {args.examples} examples); --batch-tokens {args.batch_tokens}")
    print(f"{'':28s}{'seconds':>10s}{'requests/s':>12s}")
    print(f"{'our evaluator (run_suite)':28s}{o:10.3f}{len(reqs) / o:12.0f}")
    print(f"{'harness (loglikelihood)':28s}{h:10.3f}{len(reqs) / h:12.0f}")
    print(f"{'ours, prompts cached':28s}{c:10.3f}{len(reqs) / c:12.0f}   (a repeat call: nothing to tokenize)")
    print(f"ratio (ours s / harness s): {o / h:.2f} (goal >= 0.7); largest |difference| of a pair's "
          f"log-likelihood per token: {worst:.2e}; scorer compiles: {model.scorer.compiles}")


if __name__ == "__main__":
    main()
