"""Backtest speed: every recipe × cut × training set of the testbed fitted by the batched JAX
calls (one Levenberg–Marquardt call per law form and estimator; Huber rows by LM on square-root
Huber residuals), against the same fits in a SciPy loop (``curve_fit`` per start for LM rows,
``minimize(L-BFGS-B)`` on the same Huber objective per start for Huber rows, capped at 500 steps
as before the JAX side changed solver), in the same run.

The SciPy loop is timed on ``--scipy-rows`` rows of each (law, solver) group, drawn at random,
and scaled to the group's row count (fitting all of them takes tens of minutes). JAX times
exclude compilation (reported separately). Bootstraps are excluded. Run:
``python benchmarks/bench_backtest.py [--testbed DIR] [--cuts 5] [--scipy-rows 4]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, minimize

from scaling_jax.backtest import cuts as cuts_mod
from scaling_jax.backtest import recipes as recipes_mod
from scaling_jax.backtest import score
from scaling_jax.backtest.fits import LM_MAX_ITER, huber_starts, law_inputs
from scaling_jax.laws.huber import DELTA
from scaling_jax.laws.starts import start_grid
from scaling_jax.paper.backtest import final_cut_of, load_sweeps


def _eq4(x, E, a, b, eta):
    C, M = x
    return E + (a * M**eta + b * M ** (-eta)) * C ** (-eta)


def _eq3(x, E, A, B, alpha, beta):
    N, D = x
    return E + A * N ** (-alpha) + B * D ** (-beta)


LAW_FN = {"overtrain": _eq4, "chinchilla": _eq3}
SCIPY_HUBER_MAX_ITER = 500  # the reference L-BFGS-B cap (the JAX L-BFGS cap before issue 14's LM Huber rows)


def _log_law(law, t, x):
    u, v = np.log(x[0]), np.log(x[1])
    if law == "overtrain":
        e, a, b, eta = t
        terms = [np.full_like(u, e), a + eta * (v - u), b - eta * (v + u)]
    else:
        e, a, b, alpha, beta = t
        terms = [np.full_like(u, e), a - alpha * u, b - beta * v]
    return np.logaddexp.reduce(np.stack(terms), axis=0)


def scipy_row(law, estimator, xs, y, w, max_iter):
    keep = w > 0
    x = tuple(np.asarray(v)[keep] for v in xs)
    yk = y[keep]
    if estimator == "huber":
        def obj(t):
            r = np.abs(_log_law(law, t, x) - np.log(yk))
            return np.sum(np.where(r < DELTA, 0.5 * r**2, DELTA * (r - 0.5 * DELTA)))

        for t0 in huber_starts(law):
            minimize(obj, t0, method="L-BFGS-B", options={"maxiter": SCIPY_HUBER_MAX_ITER})
        return
    sigma = yk if estimator == "lsq_log" else None
    for p0 in start_grid(law):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                curve_fit(LAW_FN[law], x, yk, p0=p0, sigma=sigma, maxfev=LM_MAX_ITER * 10)
        except (RuntimeError, OptimizeWarning):
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--testbed", default=str(Path(__file__).resolve().parents[2] / "shared" / "testbed"))
    ap.add_argument("--cuts", type=int, default=5)
    ap.add_argument("--scipy-rows", type=int, default=4)
    ap.add_argument("--coverage", action="store_true", help="band coverage of the chosen recipes instead of speed")
    args = ap.parse_args()
    if args.coverage:
        coverage(args.testbed)
        return
    sweeps, tb = load_sweeps(args.testbed)
    finals = {s.name: final_cut_of(s, tb, "auto") for s in sweeps}
    cuts = {s.name: cuts_mod.selection_cuts(s.C, finals[s.name], args.cuts) for s in sweeps}
    recipes = recipes_mod.candidates()
    t0 = time.perf_counter()
    results = score.run_backtest(sweeps, recipes, cuts, finals)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    c0 = time.process_time()
    results = score.run_backtest(sweeps, recipes, cuts, finals)
    jax_s, jax_cpu = time.perf_counter() - t0, time.process_time() - c0
    n_fit = sum(r.status != "skipped" for r in results)
    print(f"{len(recipes)} recipes x {args.cuts} selection cuts + final cut x {len(sweeps)} sets: "
          f"{len(results)} (recipe, cut) rows, {n_fit} fitted")
    print(f"JAX batched: {jax_s:.1f} s wall ({jax_cpu:.1f} s CPU), first call {first:.1f} s (compilation "
          f"{first - jax_s:.1f} s)")
    # SciPy: a sample of each group's rows, scaled to the group.
    rng = np.random.default_rng(0)
    by_sweep = {s.name: s for s in sweeps}
    groups: dict = {}
    for r in results:
        if r.status != "skipped":
            groups.setdefault((r.recipe.law, r.recipe.estimator == "huber"), []).append(r)
    total = 0.0
    for (law, is_huber), rows in groups.items():
        pick = rng.choice(len(rows), size=min(args.scipy_rows, len(rows)), replace=False)
        t0 = time.perf_counter()
        for i in pick:
            r = rows[i]
            s = by_sweep[r.sweep]
            w = np.zeros(len(s))
            w[list(r.fit_idx)] = 1.0
            xs = law_inputs(law, s.pts)
            scipy_row(law, r.recipe.estimator, tuple(xs.values()), s.pts["loss"], w,
                      SCIPY_HUBER_MAX_ITER if is_huber else LM_MAX_ITER)
        dt = (time.perf_counter() - t0) / len(pick)
        total += dt * len(rows)
        print(f"  SciPy {law:<10} {'huber' if is_huber else 'lm':<5}: {dt:.2f} s per row x {len(rows)} rows "
              f"= {dt * len(rows):.0f} s (timed on {len(pick)} rows)")
    print(f"SciPy loop (scaled): {total:.0f} s; JAX batched {jax_s:.1f} s: {total / jax_s:.0f}x")


def coverage(testbed: str, num_warmup: int = 500, num_samples: int = 500, chains: int = 2) -> None:
    """Coverage of the chosen recipe's bands on the runs above the final cut: the bootstrap bands
    the CLI writes, and Bayesian (NUTS, weakly informative discrepancy prior) bands of the same
    law on the same fit runs. ``python benchmarks/bench_backtest.py --coverage``."""
    from scaling_jax.laws.bayes import NutsConfig
    from scaling_jax.laws.fit_report import fit_points
    from scaling_jax.paper.backtest import run_backtest

    bt = run_backtest(testbed, n_bootstrap=0)
    for s in bt.sweeps:
        d = bt.body["datasets"][s.name]
        name = d["chosen"]["recipe"]
        recipe = recipes_mod.by_name(name)[0]
        fit_idx = np.array(next(c for c in d["recipes"][name]["cuts"] if c["role"] == "final")["fit_idx"])
        above = np.flatnonzero(s.C > d["final_cut"] * (1 + 1e-9))
        targets = [{"N": float(s.pts["N"][i]), "D": float(s.pts["D"][i]), "C": float(s.C[i]), "M": float(s.M[i])}
                   for i in above]
        truth = s.pts["loss"][above]
        sub = {k: np.asarray(v)[fit_idx] for k, v in s.pts.items() if k != "error"}
        from scaling_jax.backtest.bands import refit_and_predict

        boot = refit_and_predict(s, recipe, d["final_cut"], targets, n_bootstrap=200)
        t0 = time.perf_counter()
        cfg = NutsConfig(num_warmup=num_warmup, num_samples=num_samples, num_chains=chains)
        rep = fit_points(sub, recipe.law, "bayes", targets=targets, config=cfg)
        dt = time.perf_counter() - t0
        for label, preds in (("bootstrap", boot.predictions), ("bayes", rep.body["predictions"])):
            lo = np.array([p["loss"]["lo95"] for p in preds])
            hi = np.array([p["loss"]["hi95"] for p in preds])
            med = np.array([p["loss"]["median"] for p in preds])
            cov = np.mean((lo <= truth) & (truth <= hi)) * 100
            err = np.mean(np.abs(med - truth) / truth) * 100
            print(f"{s.name:<12} {name:<16} {label:<9} 95% coverage {cov:5.1f} % of {len(truth)} runs above the "
                  f"final cut; median rel. error {err:.2f} %; median width {np.median((hi - lo) / med) * 100:.1f} %"
                  + (f"; NUTS {dt:.0f} s, converged {rep.converged}" if label == "bayes" else ""))


if __name__ == "__main__":
    main()
