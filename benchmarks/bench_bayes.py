"""NUTS speed, in three parts.

1. Eq. 4 on RedPajama's Table-1 points, 4 chains × (1,000 warm-up + N draws): wall time
   including compilation, effective samples per second, worst R-hat; chains vectorised (the
   project's default) against the same chains run sequentially, each on a fresh ``MCMC``.
2. ``fit --estimator bayes`` on a user's runs (``laws.fit_report.fit_points``, the CLI's code
   path) on 20 and 250 simulated runs of Eq. 3 and Eq. 4, with the default sampler settings:
   wall time including compilation (goal: under 60 s each).
3. Predictive draws for 10,000 targets from 4,000 posterior draws (``BayesFit.draws``: one
   vectorised evaluation plus noise) against a NumPy loop over the same draws (reference),
   in the same run (goal: under 1 s).
Run: ``python benchmarks/bench_bayes.py [--testbed DIR] [--dataset rpj] [--skip-table1]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

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
    ap.add_argument("--num-samples", type=int, default=NutsConfig().num_samples)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--skip-table1", action="store_true", help="only parts 2 and 3")
    args = ap.parse_args()
    if not args.skip_table1:
        table1(args)
    fits = user_fits()
    predictions(fits)


def table1(args) -> None:
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


def _simulated(law: str, n: int, seed: int = 0) -> dict:
    """``n`` runs over N in [1e7, 1e9] and M in [5, 320] with 0.3 % scatter about a known law."""
    from scaling_jax.laws.fit import predict

    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e9), n))
    M = np.exp(rng.uniform(np.log(5.0), np.log(320.0), n))
    D = N * M
    if law == "chinchilla":
        L = predict("chinchilla", {"E": 1.8, "A": 400.0, "B": 900.0, "alpha": 0.32, "beta": 0.28}, N=N, D=D)
    else:
        L = predict("overtrain", {"E": 1.9, "a": 180.0, "b": 420.0, "eta": 0.14}, C=6 * N * D, M=M)
    return {"N": N, "D": D, "loss": L * np.exp(0.003 * rng.standard_normal(n))}


def user_fits() -> dict:
    from scaling_jax.laws.fit_report import fit_points

    cfg = NutsConfig()
    print(f"\nfit --estimator bayes on simulated runs, {cfg.num_chains} chains x ({cfg.num_warmup} warm-up + "
          f"{cfg.num_samples} draws), compilation included (goal < {GOAL_S:.0f} s)")
    print(f"{'law':<11} {'runs':>5} {'wall s':>8} {'max R-hat':>10} {'min ESS':>8} {'diverg.':>8} {'goal':>7}")
    fits = {}
    for law in ("chinchilla", "overtrain"):
        for n in (20, 250):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = fit_points(_simulated(law, n), law, "bayes", config=cfg)
            wall = time.perf_counter() - t0
            d = report.bayes.posterior.diagnostics
            fits[(law, n)] = report.bayes
            print(f"{law:<11} {n:>5} {wall:>8.1f} {d.max_rhat:>10.4f} {d.min_ess:>8.0f} {d.divergences:>8d} "
                  f"{'met' if wall < GOAL_S else 'missed':>7}")
    return fits


def predictions(fits: dict, n_targets: int = 10_000, n_draws: int = 4_000) -> None:
    """10,000 targets x 4,000 draws: the vectorised predictive against a NumPy loop over draws."""
    fit = fits[("chinchilla", 250)]
    law = fit.loss_law
    take = lambda x: x[:n_draws]  # noqa: E731
    law = type(law)(**{k: take(getattr(law, k)) for k in ("E", "A", "B", "alpha", "beta", "sigma")},
                    support=law.support, discrepancy=law.discrepancy.take(n_draws))
    fit = type(fit)(fit.law, fit.posterior, law, None, fit.priors)
    rng = np.random.default_rng(1)
    N = np.exp(rng.uniform(np.log(1e9), np.log(1e11), n_targets))
    M = np.exp(rng.uniform(np.log(5.0), np.log(640.0), n_targets))
    C = 6 * N * N * M
    fit.draws(C=C, M=M)  # compile for these shapes (a smaller warm-up left compilation in the timing)
    times = []
    for _ in range(3):  # median of three calls
        t0 = time.perf_counter()
        draws = fit.draws(C=C, M=M)["loss"]
        times.append(time.perf_counter() - t0)
    t_jax = float(np.median(times))
    t0 = time.perf_counter()
    Nd, Dd = N, M * N
    ref = np.empty((n_draws, n_targets))
    for i in range(n_draws):  # reference: the law per draw in NumPy, no noise or discrepancy
        ref[i] = law.E[i] + law.A[i] * Nd ** -law.alpha[i] + law.B[i] * Dd ** -law.beta[i]
    t_np = time.perf_counter() - t0
    print(f"\npredictive draws, {n_targets:,} targets x {n_draws:,} posterior draws (Eq. 3; with noise and "
          "discrepancy) vs a NumPy loop over draws (law only)")
    print(f"{'method':<28} {'wall s':>8}")
    print(f"{'BayesFit.draws (jax)':<28} {t_jax:>8.3f}")
    print(f"{'NumPy loop over draws':<28} {t_np:>8.3f}")
    med = np.median(draws / ref, axis=0)
    print(f"ratio numpy/jax {t_np / t_jax:.1f}x; goal < 1 s: {'met' if t_jax < 1 else 'missed'}; "
          f"median draw / law within {np.max(np.abs(med - 1)):.3f} of 1 at every target")


if __name__ == "__main__":
    main()
