"""``scaling-jax fit``: fit a law to a user's runs, with bootstrap intervals."""

from __future__ import annotations

import argparse
from pathlib import Path

LAW_INPUTS = {
    # law -> (inputs from points, target column)
    "chinchilla": (lambda p: {"N": p["N"], "D": p["D"]}, "loss"),
    "overtrain": (lambda p: {"C": 6.0 * p["N"] * p["D"], "M": p["D"] / p["N"]}, "loss"),
    "error": (lambda p: {"L": p["loss"]}, "error"),
}


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit a scaling law to runs (CSV with N, D, loss[, error] or a testbed folder)")
    p.add_argument("--runs", required=True, help="CSV file or testbed folder")
    p.add_argument("--law", choices=sorted(LAW_INPUTS), default="overtrain")
    p.add_argument("--estimator", choices=("lm", "huber"), default="lm")
    p.add_argument("--out", type=Path, default=None, help="folder for fit.json")
    p.add_argument("--val-set", default=None,
                   help="validation set whose loss is fitted (testbed input; default: each run's own set, "
                        "else the paper's c4_val)")
    p.add_argument("--metric", default="err_17", choices=("err_17", "err_46"), help="downstream error (testbed input)")
    p.add_argument("--dataset", default=None, help="only this training set of a testbed")
    p.add_argument("--bootstrap", type=int, default=200, help="resamples for intervals (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic
    from scaling_jax.errors import UserError
    from scaling_jax.laws.bootstrap import bootstrap
    from scaling_jax.laws.fit import fit_law
    from scaling_jax.laws.huber import bootstrap_starts, fit_huber
    from scaling_jax.testbed.points_io import read_points

    if args.out is not None:
        atomic.check_out_dir(args.out)
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap: must be >= 0, got {args.bootstrap}")
    make_inputs, target = LAW_INPUTS[args.law]
    pts = read_points(args.runs, val_set=args.val_set, metric=args.metric, dataset=args.dataset,
                      need_error=args.law == "error")
    inputs, y = make_inputs(pts), pts[target]
    fit = (fit_huber if args.estimator == "huber" else fit_law)(args.law, inputs, y)
    out = fit.to_json(args.estimator)
    intervals = {}
    if args.bootstrap > 0:
        # Resamples are refitted by the estimator that made the point estimate; the Huber
        # refits start from its optimum (and a few grid corners) rather than the full grid.
        starts = bootstrap_starts(args.law, fit.params) if args.estimator == "huber" else None
        bs = bootstrap(args.law, inputs, y, n_resamples=args.bootstrap, seed=args.seed, estimator=args.estimator,
                       starts=starts)
        out["bootstrap"] = bs.summary()
        if bs.n_kept:
            intervals = bs.param_intervals(0.95)
            out["bootstrap"]["intervals_95"] = {k: list(v) for k, v in intervals.items()}
    print(f"{args.law} law, {args.estimator} estimator, {len(y)} points: objective {fit.rss:.4g}, "
          f"converged {fit.converged} ({fit.n_converged}/{fit.n_starts} starts)")
    for k, v in fit.params.items():
        ci = f"  95% [{intervals[k][0]:.5g}, {intervals[k][1]:.5g}]" if k in intervals else ""
        print(f"  {k:>8} = {v:.6g}{ci}")
    if args.bootstrap > 0:
        b = out["bootstrap"]
        print(f"  bootstrap ({b['estimator']} refits): {b['n_kept']}/{b['n_resamples']} resamples kept, "
              f"{b['n_underdetermined']} dropped as underdetermined, {b['n_unconverged']} unconverged")
    for w in fit.identifiability["warnings"]:
        print(f"  warning: {w}")
    if args.out is not None:
        path = atomic.write_json(args.out / "fit.json", out)
        print(f"wrote {path}")
    return 0
