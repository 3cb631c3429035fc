"""Extrapolation check of the three estimators on the paper's testbed, each set's runs taken as the
CSV a user brings (N, D, c4_val loss): fit on the runs with C below a compute cut, predict every run
above it, and score the 95 % predictive intervals by extrapolation distance log10(C / C_max_fit).

Per estimator (lm bootstrap, huber bootstrap, bayes NUTS), training set (and all sets pooled) and
distance bin: n, 95 % coverage, median 95 % width relative to the measured loss, median |relative
error| of the predictive median; then each estimator's wall time (``fit_points`` end to end,
compilation included: the first set of each estimator pays it). Reference: the estimators compared
with each other in the same run, lm (the CLI's default) as the baseline; no timing goal.
Every fit goes through ``scaling_jax.laws.fit_report.fit_points``, as ``scaling-jax fit`` does.

Run: ``PYTHONPATH=. python benchmarks/bench_extrapolation.py [--testbed DIR] [--c-cut 1e19]
[--law chinchilla --law overtrain] [--chains 4 --num-warmup 1000 --num-samples 2000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scaling_jax.laws.bayes import NutsConfig
from scaling_jax.laws.fit_report import fit_points
from scaling_jax.testbed import load_testbed
from scaling_jax.testbed.points_io import PAPER_VAL_SET, parse_target

BINS = ((0.0, 0.5), (0.5, 1.0), (1.0, np.inf))  # log10(C / C_max_fit), right-closed


def bin_label(lo: float, hi: float) -> str:
    return f">{lo:g}" if hi == np.inf else f"({lo:g},{hi:g}]"


def split(runs, c_cut: float):
    """The user's CSV (runs with C < c_cut) as points, and the runs above it as targets."""
    fit = [r for r in runs if r.C < c_cut]
    held = [r for r in runs if r.C >= c_cut]
    pts = {"N": np.array([r.N for r in fit], float), "D": np.array([r.D for r in fit], float),
           "loss": np.array([r.loss(PAPER_VAL_SET) for r in fit], float)}  # fmt: skip
    return pts, held, max(r.C for r in fit)


def score(report, held, c_max_fit: float) -> list[dict]:
    """One row per held-out run: distance, covered by the 95 % interval, relative width and error."""
    rows = []
    for r, p in zip(held, report.body["predictions"]):
        y, s = r.loss(PAPER_VAL_SET), p["loss"]
        rows.append({"dist": float(np.log10(r.C / c_max_fit)), "covered": s["lo95"] <= y <= s["hi95"],
                     "width": (s["hi95"] - s["lo95"]) / y, "relerr": abs(s["median"] - y) / y})  # fmt: skip
    return rows


def summarize(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    return {"n": len(rows), "cov95": float(np.mean([r["covered"] for r in rows])),
            "width": float(np.median([r["width"] for r in rows])),
            "relerr": float(np.median([r["relerr"] for r in rows]))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--testbed", default=None)
    ap.add_argument("--dataset", action="append", default=None, help="training set (repeatable; default all)")
    ap.add_argument("--law", action="append", default=None, choices=("chinchilla", "overtrain"),
                    help="law (repeatable; default chinchilla, Eq. 3)")
    ap.add_argument("--c-cut", type=float, default=1e19, help="fit on runs with C below this (FLOPs)")
    ap.add_argument("--estimator", action="append", default=None, choices=("lm", "huber", "bayes"))
    ap.add_argument("--lm-bootstrap", type=int, default=200)
    ap.add_argument("--huber-bootstrap", type=int, default=100)
    defaults = NutsConfig()
    ap.add_argument("--chains", type=int, default=defaults.num_chains)
    ap.add_argument("--num-warmup", type=int, default=defaults.num_warmup)
    ap.add_argument("--num-samples", type=int, default=defaults.num_samples)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tb = load_testbed(args.testbed)
    datasets = args.dataset or list(tb.datasets)
    laws = args.law or ["chinchilla"]
    estimators = args.estimator or ["lm", "huber", "bayes"]
    nuts = NutsConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.chains,
                      seed=args.seed)
    n_boot = {"lm": args.lm_bootstrap, "huber": args.huber_bootstrap, "bayes": 0}
    print(f"testbed {tb.root}: fit on each set's runs with C < {args.c_cut:.3g} FLOPs ({PAPER_VAL_SET} loss), "
          f"predict every run with C >= it; lm bootstrap {args.lm_bootstrap}, huber bootstrap "
          f"{args.huber_bootstrap}, bayes NUTS {nuts.num_chains} chains x ({nuts.num_warmup} warm-up + "
          f"{nuts.num_samples} draws), seed {args.seed}")
    for law in laws:
        scored: dict[tuple[str, str], list[dict]] = {}
        walls: dict[tuple[str, str], float] = {}
        notes = []
        for ds in datasets:
            pts, held, c_max = split(tb.select(dataset=ds).runs, args.c_cut)
            targets = [parse_target(f"N={r.N!r},D={r.D!r}", law) for r in held]
            print(f"[{law}] {ds}: {len(pts['loss'])} fit runs (C_max_fit {c_max:.3g}), {len(held)} held out "
                  f"(C up to {max(r.C for r in held):.3g})", flush=True)
            for est in estimators:
                t0 = time.perf_counter()
                rep = fit_points(pts, law, est, n_bootstrap=n_boot[est], seed=args.seed, targets=targets,
                                 config=nuts if est == "bayes" else None)
                walls[est, ds] = time.perf_counter() - t0
                scored[est, ds] = score(rep, held, c_max)
                if est == "bayes":
                    d = rep.body["diagnostics"]
                    sig = rep.body["params"].get("sigma_loss", float("nan"))
                    notes.append(f"bayes {ds}: sigma_loss {sig:.4f}, max R-hat {d['max_rhat']:.4f}, "
                                 f"min ESS {d['min_ess']:.0f}, "
                                 f"divergences {d['divergences']}" + ("" if rep.converged else
                                                                       f", NOT converged: {rep.problems}"))
                elif "bootstrap" in rep.body:
                    b = rep.body["bootstrap"]
                    sigma = rep.body["prediction_method"]["loss"]["log_residual_scale"]
                    notes.append(f"{est} {ds}: bootstrap {b['n_kept']}/{b['n_resamples']} resamples kept, "
                                 f"log residual scale {sigma if sigma is None else round(sigma, 4)}")
                print(f"  {est:<6} {walls[est, ds]:7.1f} s", flush=True)
        print(f"\n{law} law: 95 % predictive intervals of held-out runs by distance d = log10(C / C_max_fit)")
        print(f"{'estimator':<9} {'set':<12} {'d bin':<9} {'n':>3} {'cov95':>6} {'med width/L':>12} "
              f"{'med |rel err|':>14}")
        table: dict[tuple[str, str, str], dict] = {}
        for est in estimators:
            for ds in [*datasets, "all"]:
                rows = [r for d in datasets for r in scored[est, d]] if ds == "all" else scored[est, ds]
                for label, sel in [*((bin_label(lo, hi), [r for r in rows if lo < r["dist"] <= hi])
                                     for lo, hi in BINS), ("all", rows)]:
                    s = table[est, ds, label] = summarize(sel)
                    if s["n"]:
                        print(f"{est:<9} {ds:<12} {label:<9} {s['n']:>3} {s['cov95']:>6.2f} {s['width']:>12.4f} "
                              f"{s['relerr']:>14.4f}")
        print("\nwall time per fit_points call (s; fit + intervals + predictions, compilation included):")
        print(f"{'estimator':<9} " + " ".join(f"{ds:>12}" for ds in datasets) + f" {'total':>8}")
        for est in estimators:
            print(f"{est:<9} " + " ".join(f"{walls[est, ds]:>12.1f}" for ds in datasets)
                  + f" {sum(walls[est, ds] for ds in datasets):>8.1f}")
        for n in notes:
            print("  " + n)
        if "lm" in estimators:
            print("\nreference: lm in the same run (all sets pooled); coverage minus lm's, width / lm's width")
            for est in (e for e in estimators if e != "lm"):
                cells = []
                for label in [*(bin_label(lo, hi) for lo, hi in BINS), "all"]:
                    a, b = table[est, "all", label], table["lm", "all", label]
                    if a["n"] and b["n"]:
                        dcov, ratio = a["cov95"] - b["cov95"], a["width"] / b["width"]
                        cells.append(f"{label}: cov {dcov:+.2f}, width x{ratio:.2f}")
                print(f"  {est:<6} " + "; ".join(cells))


if __name__ == "__main__":
    main()
