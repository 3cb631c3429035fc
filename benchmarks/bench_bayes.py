"""NUTS speed on Eq. 4: 4 chains × (1,000 warm-up + 1,000 draws) on RedPajama's Table-1
points, wall time including compilation, effective samples per second, worst R-hat.

Chains vectorised (the project's default) against the same chains run sequentially, in the
same process, each on a fresh ``MCMC``; the goal is under 60 s including compilation.
Run: ``python benchmarks/bench_bayes.py [--testbed DIR] [--dataset rpj]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

from scaling_jax.laws.bayes import NutsConfig, loss_model, run_nuts
from scaling_jax.paper import recipe
from scaling_jax.paper.posterior_check import loss_data
from scaling_jax.testbed import load_testbed

GOAL_S = 60.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--testbed", default=None)
    ap.add_argument("--dataset", default="rpj")
    ap.add_argument("--num-warmup", type=int, default=1000)
    ap.add_argument("--num-samples", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    args = ap.parse_args()
    data = loss_data(recipe.loss_fit_runs(load_testbed(args.testbed), args.dataset))
    rows = []
    for method in ("vectorized", "sequential"):
        cfg = NutsConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.chains,
                         chain_method=method)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            post = run_nuts(loss_model, data, config=cfg)
        wall = time.perf_counter() - t0
        d = post.diagnostics
        ess = min(d.ess[k] for k in ("E", "a", "b", "eta"))
        rows.append((method, wall, ess, ess / wall, d.max_rhat, d.divergences, len(caught)))
    print(f"Eq. 4 NUTS on {args.dataset} Table-1 points ({len(data.L)}), {args.chains} chains x "
          f"({args.num_warmup} warm-up + {args.num_samples} draws), float64, compilation included")
    print(f"{'chain_method':<12} {'wall s':>8} {'min ESS(E,a,b,eta)':>19} {'ESS/s':>7} {'max R-hat':>10} "
          f"{'diverg.':>8}")
    for method, wall, ess, ess_s, rhat, div, _ in rows:
        print(f"{method:<12} {wall:>8.1f} {ess:>19.0f} {ess_s:>7.1f} {rhat:>10.4f} {div:>8d}")
    vec, seq = rows[0][1], rows[1][1]
    print(f"vectorized vs sequential: {seq / vec:.2f}x faster; vectorized vs the {GOAL_S:.0f} s goal: "
          f"{vec / GOAL_S:.2f} of the budget ({'met' if vec < GOAL_S else 'missed'})")


if __name__ == "__main__":
    main()
