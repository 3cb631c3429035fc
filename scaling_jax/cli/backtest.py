"""``scaling-jax backtest``: which law and fit design to trust, by how they extrapolated."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("backtest", help="backtest scaling-law recipes on rolling compute cuts and choose one")
    p.add_argument("--runs", required=True, help="CSV (N, D, loss[, error]), testbed or sweep folder (record.json)")
    p.add_argument("--dataset", default=None, help="one training set of a testbed (default: each set in turn)")
    p.add_argument("--val-set", default=None, help="validation set whose loss is fitted (testbed input)")
    p.add_argument("--recipes", default="all",
                   help="comma-separated recipes law/estimator/design, e.g. eq4/lsq/paper,eq3/huber/m10 (default all)")
    p.add_argument("--error-recipes", default="all",
                   help="downstream-error recipes law/aggregation: eq5/avg, eq5/per_task, sigmoid/avg, "
                        "sigmoid/per_task (default all)")
    p.add_argument("--cuts", type=int, default=5, help="compute selection cuts below the final cut (default 5)")
    p.add_argument("--cuts-by", choices=("compute", "size", "auto"), default="auto",
                   help="selection cuts in compute (fit C <= C0), in model size (fit the smallest sizes, all their "
                        "multipliers; score each larger size), or auto (default: compute where 15 runs lie below a "
                        "cut, else size, as on a 4-size x 4-multiplier ladder)")
    p.add_argument("--final-cut", default="auto",
                   help="compute of the largest run the final fit may use: max, paper, a FLOP count, or auto "
                        "(paper on the released testbed, else max)")
    p.add_argument("--predict", action="append", default=[], metavar="N,D",
                   help="predict at N,D (or N=..,D=.. / C=..,M=.. / N=..,M=..) with the chosen recipe; repeatable")
    p.add_argument("--bootstrap", type=int, default=200, help="resamples for the chosen recipe's bands")
    p.add_argument("--calibrate", default=None, metavar="self|self+FILE",
                   help="widen the chosen recipe's --predict bands by the discrepancy its law showed on the sweep's "
                        "own cuts (updating the prior, or a calibration FILE)")
    p.add_argument("--allow-partial-suites", action="store_true",
                   help="fit error recipes to runs whose err_17 averages only part of the 17 tasks (else refused, "
                        "naming the runs and tasks); backtest.json lists them under error_law.partial_suites")
    p.add_argument("--downstream", default=None, metavar="all|ROUTE:STEP1/STEP2,...",
                   help="also backtest the downstream routes on the same cuts (the task-mean error forecast from "
                        "N, D through both steps: paper:eq4/eq5, per-task:eq4/sigmoid, two-step:eq3/sigmoid, ...; "
                        "all: every route the runs allow) and choose one; needs per-task accuracies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder for backtest.json and the figures")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic
    from scaling_jax.backtest.recipes import by_name
    from scaling_jax.errors import UserError
    from scaling_jax.paper.backtest import run_backtest, summary_lines, write_backtest
    from scaling_jax.testbed.points_io import parse_target

    if args.out is not None:
        atomic.check_out_dir(args.out)
    if args.bootstrap < 0:
        raise UserError(f"--bootstrap: must be >= 0, got {args.bootstrap}")
    from scaling_jax.backtest.error_recipes import error_recipes_by_name

    recipes = by_name(args.recipes)
    err_recipes = error_recipes_by_name(args.error_recipes)
    if args.calibrate is not None:
        from scaling_jax.laws.bayes.calibration_file import parse_calibrate

        parse_calibrate(args.calibrate, ("self",))
        if not args.predict:
            raise UserError("--calibrate widens the chosen recipe's --predict bands: give --predict N,D")
    targets = [parse_target(s, "overtrain") for s in args.predict]
    bt = run_backtest(args.runs, dataset=args.dataset, val_set=args.val_set, recipes=recipes, n_cuts=args.cuts,
                      final_cut=args.final_cut, targets=targets, n_bootstrap=args.bootstrap, seed=args.seed,
                      error_law_recipes=err_recipes, cuts_by=args.cuts_by, calibrate=args.calibrate,
                      allow_partial_suites=args.allow_partial_suites)
    for line in summary_lines(bt):
        print(line)
    if args.downstream:
        from scaling_jax.backtest.downstream import summary_lines as downstream_lines
        from scaling_jax.paper.downstream import backtest_routes

        for ds, block in backtest_routes(bt, args.runs, args.downstream, cuts_by=args.cuts_by, seed=args.seed,
                                         val_set=args.val_set).items():
            for line in downstream_lines(block):
                print(f"{ds}: {line}" if len(bt.body["datasets"]) > 1 else line)
    if args.out is not None:
        written = write_backtest(bt, args.out, plots=not args.no_plots)
        print(f"wrote {len(written)} file(s) to {args.out} (backtest.json{', figures' if not args.no_plots else ''})")
    return 0
