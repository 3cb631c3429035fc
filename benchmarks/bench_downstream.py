"""Downstream forecasts (issue 30): the goals recorded in BENCHMARKS.md ("Downstream forecasts").

    python benchmarks/bench_downstream.py testbed   # the paper's route on the testbed's Table-1 recipe
    python benchmarks/bench_downstream.py ladder    # the CPU ladder: routes side by side on its targets
    python benchmarks/bench_downstream.py speed     # the Bayesian two-step, 8 tasks x 16 runs

``testbed``: per training set, the ``paper`` route (Eq. 4 on the five Table-1 runs, Eq. 5 on those and
the 1.4B M = 20 run, the 17-task mean error) with the lm and bayes estimators: relative error of the
two Table-1 targets' 17-task error, and the bands' coverage of every held-out run's 17-task error.
``ladder``: runs/cpu_ladder_downstream (configs/sweeps/cpu_ladder_downstream.yaml), the 16 ladder runs
fitted, the 4 runs 2.4-9.7x beyond forecast by every route and estimator, and the route a backtest on
the ladder's own cuts chooses. ``speed``: a simulated ladder of 8 tasks and 16 runs, the Bayesian
two-step with its default NUTS settings, wall time including compilation (a fresh process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from scaling_jax.laws.downstream import Route, fit_downstream  # noqa: E402


def _band(d):
    lo, q25, med, q75, hi = np.percentile(d, [2.5, 25, 50, 75, 97.5], axis=0)
    return lo, q25, med, q75, hi


def testbed(args) -> dict:
    from scaling_jax.backtest.downstream import point_forecast
    from scaling_jax.paper import recipe
    from scaling_jax.testbed import load_testbed
    from scaling_jax.testbed.task_points import task_points_from_runs

    tb = load_testbed(args.testbed)
    out = {}
    for ds in ("c4_original", "rpj", "rw_original"):
        p = task_points_from_runs(tb, ds)  # the 17 tasks, C4 loss
        lf = {r.name for r in recipe.loss_fit_runs(tb, ds)}
        ef = {r.name for r in recipe.error_fit_runs(tb, ds)}
        m1 = np.array([n in lf for n in p.labels])
        m2 = np.array([n in ef for n in p.labels])
        held = ~m2
        targets = [p.labels.index(r.name) for r in recipe.targets(tb, ds)]
        rows = {}
        for est in ("lm", "bayes"):
            t0 = time.perf_counter()
            f = fit_downstream(p, Route.make("paper"), est, n_bootstrap=1000, step1_mask=m1, step2_mask=m2)
            secs = time.perf_counter() - t0
            d = 1.0 - f.draws(p.N, p.D, seed=0)["mean_accuracy"]
            lo, q25, med, q75, hi = _band(d)
            y = p.mean_error
            point = 1.0 - point_forecast(f, p.N, p.D)  # the point laws (lm) / posterior medians (bayes)
            rows[est] = {
                "seconds": secs,
                "targets": {p.labels[i]: {"measured": float(y[i]), "point": float(point[i]), "median": float(med[i]),
                                          "rel_err_point_pct": float(abs(point[i] - y[i]) / y[i] * 100),
                                          "rel_err_median_pct": float(abs(med[i] - y[i]) / y[i] * 100),
                                          "lo95": float(lo[i]), "hi95": float(hi[i])} for i in targets},
                "held_out": {"n": int(held.sum()), "cov95": float(np.mean(((lo <= y) & (y <= hi))[held])),
                             "cov50": float(np.mean(((q25 <= y) & (y <= q75))[held])),
                             "median_width95": float(np.median((hi - lo)[held])),
                             "median_abs_err": float(np.median(np.abs(med - y)[held]))},
                "params": f.point_params(),
                **({"diagnostics": {k: f.info["diagnostics"][k] for k in ("max_rhat", "min_ess", "divergences")}}
                   if est == "bayes" else {"bootstrap": f.info["bootstrap"]}),
            }
        out[ds] = rows
        for est, r in rows.items():
            tg = ", ".join(f"{k}: {v['rel_err_point_pct']:.2f} % (median {v['rel_err_median_pct']:.2f} %)"
                           for k, v in r["targets"].items())
            h = r["held_out"]
            print(f"{ds:12s} {est:5s} targets {tg}; held out n={h['n']} cov95 {h['cov95']:.2f} cov50 "
                  f"{h['cov50']:.2f} width {h['median_width95']:.4f} abs err {h['median_abs_err']:.4f} "
                  f"({r['seconds']:.0f} s)", flush=True)
    return out


def ladder(args) -> dict:
    from scaling_jax.backtest.downstream import backtest_downstream
    from scaling_jax.testbed.task_points import read_task_points

    p = read_task_points(args.runs)
    fit_runs = p.N < args.ladder_max_n
    lp = p.subset(fit_runs)
    tgt = np.flatnonzero(~fit_runs)
    y = p.mean_error[tgt]
    out = {"tasks": list(p.tasks), "ceiling": p.ceiling.tolist(), "chance": p.chance.tolist(),
           "ceiling_mean_error": float(1 - p.ceiling.mean()), "fit_runs": list(lp.labels),
           "targets": [{"run": p.labels[i], "N": float(p.N[i]), "D": float(p.D[i]), "C_over_ladder":
                        float(p.C[i] / lp.C.max()), "mean_error": float(p.mean_error[i]),
                        "acc": dict(zip(p.tasks, p.acc[i].tolist()))} for i in tgt], "routes": {}}
    for name in ("paper", "per-task", "two-step"):
        for est in ("lm", "bayes"):
            t0 = time.perf_counter()
            f = fit_downstream(lp, Route.make(name), est, n_bootstrap=1000)
            d = 1.0 - f.draws(p.N[tgt], p.D[tgt])["mean_accuracy"]
            lo, q25, med, q75, hi = _band(d)
            rel = np.abs(med - y) / y * 100
            r = {"seconds": time.perf_counter() - t0, "median": med.tolist(), "lo95": lo.tolist(), "hi95": hi.tolist(),
                 "rel_err_pct": rel.tolist(), "mean_rel_err_pct": float(rel.mean()),
                 "cov95": float(np.mean((lo <= y) & (y <= hi))),
                 "half_width95_rel_pct": ((hi - lo) / 2 / y * 100).tolist()}
            if est == "bayes":
                r["diagnostics"] = {k: f.info["diagnostics"][k] for k in ("max_rhat", "min_ess", "divergences")}
            out["routes"][f"{name}/{est}"] = r
            print(f"{name:9s} {est:5s} mean err pred {np.round(med, 4)} true {np.round(y, 4)} rel % {np.round(rel, 2)} "
                  f"cov95 {r['cov95']:.2f} half-width % {np.round(r['half_width95_rel_pct'], 1)} "
                  f"({r['seconds']:.0f} s)", flush=True)
    bt = backtest_downstream(lp, None)
    scores = {k: v.get("selection_score") for k, v in bt["recipes"].items()}
    out["backtest"] = {"chosen": bt["chosen"], "scores": scores, "cuts_by": bt["cuts_by"],
                       "selection_cuts": bt["selection_cuts"]}
    print("backtest chooses", bt["chosen"]["recipe"], {k: round(v, 2) if v else v for k, v in
                                                       out["backtest"]["scores"].items()})
    return out


def speed(args) -> dict:
    """8 tasks x 16 runs drawn like the tests' two-step ladders (tests/laws/downstream_sim.py), in
    a fresh process: compilation included."""
    from scaling_jax.testbed.task_points import TaskPoints

    rng = np.random.default_rng(0)
    sizes, mults = (2e7, 4e7, 8e7, 1.6e8), (5.0, 10.0, 20.0, 40.0)
    N = np.array([n for n in sizes for _ in mults])
    D = np.array([n * m for n in sizes for m in mults])
    T = 8
    E = rng.uniform(0.2, 0.4, T)
    A, B = rng.uniform(30, 120, T), rng.uniform(60, 200, T)
    al, be = rng.uniform(0.25, 0.33, T), rng.uniform(0.25, 0.33, T)
    tl = E + A * N[:, None] ** -al + B * D[:, None] ** -be
    tl *= np.exp(0.01 * rng.standard_normal(tl.shape))
    chance = rng.choice([0.0, 0.25, 0.5], T)
    k, L0 = rng.uniform(3, 7, T), rng.uniform(0.7, 1.0, T)
    a = (1 - chance) * (1 + np.exp(-k * L0))
    acc = np.clip(chance + a / (1 + np.exp(k * (tl - L0))) + 0.01 * rng.standard_normal(tl.shape), 0, 1)
    loss = 1.8 + 300 * (6 * N * D) ** -0.13
    p = TaskPoints(N, D, loss, tuple(f"t{i}" for i in range(T)), acc, tl, chance, np.ones(T),
                   tuple(map(str, range(16))))
    t0 = time.perf_counter()
    f = fit_downstream(p, Route.make("two-step"), "bayes")
    secs = time.perf_counter() - t0
    d = f.info["diagnostics"]
    print(f"bayes two-step, 8 tasks x 16 runs: {secs:.1f} s (R-hat max {d['max_rhat']:.4f}, ESS min "
          f"{d['min_ess']:.0f}, divergences {d['divergences']}); load average {os.getloadavg()}")
    return {"seconds": secs, "max_rhat": d["max_rhat"], "min_ess": d["min_ess"], "divergences": d["divergences"],
            "nuts": f.info["nuts"], "loadavg": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("testbed", "ladder", "speed"))
    ap.add_argument("--testbed", default=os.environ.get("SCALING_JAX_TESTBED", "../shared/testbed"))
    ap.add_argument("--runs", default="runs/cpu_ladder_downstream")
    ap.add_argument("--ladder-max-n", type=float, default=3e4, help="ladder runs: N below this; the rest targets")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    res = {"testbed": testbed, "ladder": ladder, "speed": speed}[args.what](args)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
