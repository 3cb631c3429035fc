"""Self-calibrated bands on synthetic 16-run ladders drawn from a known law: coverage and width.

Each draw is a 4-size x 4-multiplier ladder (the testbed's four small sizes, M = 10, 20, 40, 80)
from Eq. 4 with RedPajama-like parameters and log-normal run noise, plus one target run 8x beyond
the largest fit run's compute (N = 2.33e9 at M = 20) drawn with the same noise. Per estimator and
calibration, every draw is fitted as ``scaling-jax fit`` does (``fit_points``; ``--calibrate self``
through ``backtest.self_calibration``) and its 95 % predictive band at the target is scored:
coverage of the drawn truth, median half-width and median |relative error| of the band's median,
and their ratio (a normal band that is exactly calibrated has 1.96 / 0.674 = 2.91). The
reference is the same estimator without self-calibration (``none``: the bootstrap alone for lm,
the weakly informative prior's discrepancy for bayes) and with a zero discrepancy (the bound:
the law is the truth here, so no band can be narrower and still calibrated).

Run: ``PYTHONPATH=. python studies/self_calibration/self_calibration_coverage.py --draws 200 --estimator lm``
(``--estimator bayes --draws 40`` for NUTS: ~25 s a draw on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from scaling_jax.backtest.self_calibration import self_calibrate
from scaling_jax.laws.bayes import NutsConfig
from scaling_jax.laws.bayes.discrepancy import Discrepancy
from scaling_jax.laws.fit import predict
from scaling_jax.laws.fit_report import fit_points

LAW = {"E": 1.8366, "a": 212.24, "b": 366.69, "eta": 0.13643}  # Eq. 4 on RedPajama's Table-1 runs
SIZES = (10569312.0, 78914048.0, 153677376.0, 411616256.0)
MULTIPLIERS = (10.0, 20.0, 40.0, 80.0)
TARGET = {"N": 2.33e9, "M": 20.0}  # 8.0x the largest fit run's compute
NOISE = 0.003


def draw(seed: int) -> tuple[dict, dict, float]:
    rng = np.random.default_rng(seed)
    N, M = (a.ravel() for a in np.meshgrid(SIZES, MULTIPLIERS, indexing="ij"))
    D = N * M
    loss = predict("overtrain", LAW, C=6 * N * D, M=M) * np.exp(NOISE * rng.standard_normal(N.size))
    t = {"N": TARGET["N"], "D": TARGET["N"] * TARGET["M"], "C": 6 * TARGET["N"] ** 2 * TARGET["M"], "M": TARGET["M"]}
    truth = float(predict("overtrain", LAW, C=t["C"], M=t["M"])) * float(np.exp(NOISE * rng.standard_normal()))
    return {"N": N, "D": D, "loss": loss}, t, truth


def zero_discrepancy() -> Discrepancy:
    return Discrepancy(np.zeros(1), np.zeros((1, 3)), ("C", "M_below", "M_above"), "zero (the bound)")


def score(rows) -> dict:
    r = np.array(rows)
    err, half, cov = r[:, 0], r[:, 1], r[:, 2]
    return {"n": len(r), "cov95": float(cov.mean()), "median_halfwidth": float(np.median(half)),
            "median_abs_err": float(np.median(err)), "ratio": float(np.median(half) / np.median(err))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--estimator", choices=("lm", "bayes"), default="lm")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--num-warmup", type=int, default=500)
    ap.add_argument("--num-samples", type=int, default=500)
    args = ap.parse_args()
    rows = {"none": [], "self": [], "zero": []}
    seconds = {k: 0.0 for k in rows}
    for seed in range(args.draws):
        pts, t, truth = draw(seed)
        for how in rows:
            t0 = time.perf_counter()
            disc = None
            if how == "self":
                disc = self_calibrate("overtrain", pts, seed=seed).loss
            elif how == "zero":
                disc = zero_discrepancy()
            config = NutsConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.chains,
                                seed=seed) if args.estimator == "bayes" else None
            rep = fit_points(pts, "overtrain", args.estimator, n_bootstrap=200, seed=seed, targets=[t],
                             config=config, loss_discrepancy=disc)
            q = rep.body["predictions"][0]["loss"]
            rows[how].append((abs(q["median"] - truth) / truth, (q["hi95"] - q["lo95"]) / 2 / q["median"],
                              q["lo95"] <= truth <= q["hi95"]))
            seconds[how] += time.perf_counter() - t0
        if (seed + 1) % 10 == 0:
            print(f"  {seed + 1} draws: " + ", ".join(f"{k} cov95 {score(v)['cov95']:.2f} ratio {score(v)['ratio']:.2f}"
                                                     for k, v in rows.items()), flush=True)
    print(f"\n{args.estimator}, {args.draws} synthetic 16-run ladders, target 8x beyond the largest fit run:")
    print(f"{'calibration':<12} {'n':>4} {'cov95':>6} {'med half-width':>15} {'med |err|':>10} {'ratio':>6} "
          f"{'s/draw':>7}")
    for k, v in rows.items():
        s = score(v)
        print(f"{k:<12} {s['n']:>4} {s['cov95']:>6.3f} {s['median_halfwidth']:>15.4f} {s['median_abs_err']:>10.4f} "
              f"{s['ratio']:>6.2f} {seconds[k] / args.draws:>7.2f}")
    print("ratio = median 95 % half-width / median |relative error|; goal: cov95 >= 0.90 and ratio <= 3")


if __name__ == "__main__":
    main()
