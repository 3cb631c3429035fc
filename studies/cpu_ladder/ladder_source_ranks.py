"""Where a CPU ladder's loss comes from: each run's excess over the Bayes loss, split by the Zipf
rank of the source that wrote each document (issue 11; behind cpu_ladder_tail.yaml).

    python studies/cpu_ladder/ladder_source_ranks.py /tmp/f16/runs --models ladder_d32_l1,ladder_d48_l1 --seed 0
    python studies/cpu_ladder/ladder_source_ranks.py RUN_DIR [RUN_DIR ...] --docs 4096 --extend-to 1048576

Each run folder's last checkpoint scores the first ``--docs`` validation documents of its own corpus
(the first 256 are the run's validation set). Per document: the model's mean log loss over its
``seq_len`` predicted tokens, minus the corpus's exact Bayes loss of that document. Documents are
grouped by the octave of their source's rank (1, 2-3, 4-7, ...). For each octave the table gives the
excess it adds to the run's mean (its share of documents times its mean excess) and, in brackets,
its mean excess per document: about 0 for sources the run has learned, about 3 nats for sources it
has not.

``--extend-to K2`` estimates the run's excess on a corpus of K2 sources (an estimate, not a
measurement): every octave weighted by its exact share under the K2 prior, the run's own octaves
at their measured excess per document, every octave it has no document of (past its K, or too
rare to be drawn) at the excess of the rarest octave it has: sources past the end no better
learned than the rarest it saw. With ``--slopes`` the runs at one multiplier are
sorted by compute and the slope ln(x1/x2)/ln(C2/C1) of the excess between neighbours is printed for
the measured and the extended columns.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from scaling_jax.data.synthetic import mixture, zipf_prior  # noqa: E402
from scaling_jax.testbed import load_testbed  # noqa: E402
from scaling_jax.train.lm import load_run  # noqa: E402


def doc_losses(lm, tokens_BxT: np.ndarray, batch: int = 256) -> np.ndarray:
    """The model's mean log loss of x_1..x_L per document."""
    @jax.jit
    def loss(params, t_BxT):
        logp_BxLxV = jax.nn.log_softmax(lm.apply(params, t_BxT[:, :-1]).astype(jnp.float32))
        return -jnp.take_along_axis(logp_BxLxV, t_BxT[:, 1:, None], -1)[..., 0].mean(-1)

    return np.concatenate([np.asarray(loss(lm.params, jnp.asarray(tokens_BxT[i:i + batch])))
                           for i in range(0, len(tokens_BxT), batch)])


def octave_shares(K: int, zipf: float, n_oct: int) -> np.ndarray:
    """The prior mass of rank octaves 0..n_oct-1 (ranks 2^j..2^(j+1)-1, 1-based) of K sources."""
    w = zipf_prior(K, zipf)
    return np.array([w[(1 << j) - 1:min((1 << (j + 1)) - 1, K)].sum() for j in range(n_oct)])


@functools.cache
def documents(corpus, n_docs: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n_docs`` validation documents, their Bayes losses and source-rank octaves, once
    per corpus: every run of a ladder is scored on the same documents."""
    mix, idx = mixture(corpus), np.arange(n_docs)
    x = mix.generate("val", idx, length)
    return x, mix.bayes_loss(x), np.floor(np.log2(mix.sources("val", idx) + 1)).astype(int)


def profile(run: str, n_docs: int, extend_to: int | None) -> dict:
    loaded = load_run(run)
    corpus = loaded.config.data.corpus.synthetic
    x, bayes, octave = documents(corpus, n_docs, loaded.lm.max_seq_len + 1)
    excess = doc_losses(loaded.lm, x) - bayes
    K = corpus.n_sources
    n_oct = int(math.floor(math.log2(K))) + 1
    per_doc = np.array([excess[octave == j].mean() if (octave == j).any() else np.nan for j in range(n_oct)])
    added = np.array([excess[octave == j].sum() / n_docs for j in range(n_oct)])
    out = {"run": Path(run).name, "K": K, "excess": float(excess.mean()), "added": added, "per_doc": per_doc}
    if extend_to and extend_to > K:
        n2 = int(math.floor(math.log2(extend_to))) + 1
        shares = octave_shares(extend_to, corpus.zipf_exponent, n2)
        seen = np.isfinite(per_doc)
        last = per_doc[np.flatnonzero(seen)[-1]]
        # the run's own octaves re-weighted to their share of the longer prior; octaves it never
        # saw a document of (past its K, or too rare) at the last one's excess
        per_doc2 = np.concatenate([np.where(seen, per_doc, last), np.full(n2 - n_oct, last)])
        out["extended"] = float((per_doc2 * shares).sum())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders, or one folder of run folders")
    ap.add_argument("--models", default="", help="with a folder of runs: only these models (comma list)")
    ap.add_argument("--seed", type=int, default=None, help="with a folder of runs: only this seed's runs")
    ap.add_argument("--docs", type=int, default=4096)
    ap.add_argument("--extend-to", type=int, default=None, metavar="K2")
    ap.add_argument("--slopes", type=float, default=None, metavar="M",
                    help="slopes of the excess between neighbouring runs at this multiplier")
    args = ap.parse_args(argv)

    runs = [str(p) for p in args.runs]
    folder = len(runs) == 1 and not (Path(runs[0]) / "checkpoints").is_dir()
    if folder:
        runs = [str(p) for p in sorted(Path(runs[0]).iterdir())
                if (p / "checkpoints").is_dir() and (p / "record.json").is_file()]
    recs = {r.name: r for parent in sorted({str(Path(p).parent) for p in runs}) for r in load_testbed(parent).runs}
    if folder:
        models = set(filter(None, args.models.split(",")))
        runs = [p for p in runs if Path(p).name in recs
                and (not models or recs[Path(p).name].model in models)
                and (args.seed is None or recs[Path(p).name].hyperparameters.get("seed") == args.seed)]
    if not runs:
        raise SystemExit(f"{args.runs[0]}: no run folders with checkpoints match")

    rows = [profile(r, args.docs, args.extend_to) for r in runs]
    n_oct = max(len(r["added"]) for r in rows)
    K = max(r["K"] for r in rows)
    head = " ".join(f"{(1 << j)}-{min((1 << (j + 1)) - 1, K)}" for j in range(n_oct))
    print(f"excess over the Bayes loss by source-rank octave: added to the mean (per document); {args.docs} docs")
    print(f"{'run':36s} {'N':>8s} {'D':>9s} {'excess':>7s} " + ("extended " if args.extend_to else "") + "| " + head)
    for r in rows:
        rec = recs.get(r["run"])
        cells = " ".join(f"{a:.4f}({d:.2f})" for a, d in zip(r["added"], r["per_doc"]))
        ext = f"{r['extended']:8.4f} " if "extended" in r else ""
        print(f"{r['run']:36s} {rec.N if rec else 0:8d} {rec.D if rec else 0:9d} {r['excess']:7.4f} {ext}| {cells}")

    if args.slopes is not None:
        at_M = sorted(((recs[r["run"]].C, r) for r in rows
                       if r["run"] in recs and abs(recs[r["run"]].M / args.slopes - 1) < 0.05), key=lambda t: t[0])
        print(f"\nslope of the excess along M = {args.slopes:g} (ln(x1/x2) / ln(C2/C1)):")
        for (c1, r1), (c2, r2) in zip(at_M, at_M[1:]):
            slope = math.log(r1["excess"] / r2["excess"]) / math.log(c2 / c1)
            line = f"  {r1['run']} -> {r2['run']}: measured {slope:.3f}"
            if "extended" in r1:
                line += f", extended {math.log(r1['extended'] / r2['extended']) / math.log(c2 / c1):.3f}"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
