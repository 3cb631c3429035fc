"""``scaling-jax fit``: fit a law to a user's runs, with intervals and predictions."""

from __future__ import annotations

import argparse
from pathlib import Path

LAWS = ("chinchilla", "error", "overtrain", "downstream")  # downstream: cli/fit_downstream.py
COLUMNS = ("N", "D", "loss", "error")  # a CSV's columns, renamed by --n-column, --d-column, ...
COLUMN_EXAMPLES = {"N": "N", "D": "D", "loss": "losses.synthetic", "error": "err_17"}
NOT_CONVERGED = 3  # exit status of a Bayesian fit that did not converge (without --allow-unconverged)


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="fit a scaling law to runs (CSV with N, D, loss[, error] or a testbed folder)")
    p.add_argument("--runs", required=True,
                   help="CSV file or testbed folder (the paper's release or record.json files)")
    p.add_argument("--law", choices=LAWS, default="overtrain")
    p.add_argument("--estimator", choices=("lm", "huber", "bayes"), default="lm")
    p.add_argument("--out", type=Path, default=None, help="folder for fit.json (and, for bayes, posterior.nc, figures)")
    p.add_argument("--val-set", default=None,
                   help="validation set whose loss is fitted (testbed input; default: each run's own set, "
                        "else the paper's c4_val)")
    p.add_argument("--metric", default="err_17", choices=("err_17", "err_46", "acc", "acc_norm"),
                   help="downstream error (testbed input); --law downstream: acc or acc_norm per task")
    p.add_argument("--dataset", default=None, help="the training set of a testbed to fit")
    p.add_argument("--allow-partial-suites", action="store_true",
                   help="fit runs whose --metric averages only part of its tasks (else refused, naming the runs "
                        "and tasks); fit.json lists them under partial_suites")
    for key in COLUMNS:
        p.add_argument(f"--{key.lower()}-column", metavar="NAME", dest=f"{key}_column",
                       help=f"CSV input: the column holding {key} (default {key!r}; e.g. a W&B run-table export's "
                            f"{COLUMN_EXAMPLES[key]!r})")
    p.add_argument("--bootstrap", type=int, default=200, help="resamples for lm/huber intervals (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--predict", action="append", default=[], metavar="N,D",
                   help="predict at N,D (or N=..,D=.. / C=..,M=.. / N=..,M=..; L=.. for --law error); repeatable")
    p.add_argument("--predict-file", default=None, help="CSV of targets: columns N, D (or C, M; L for --law error)")
    p.add_argument("--calibration", default=None,
                   help="bayes: discrepancy learned from past sweeps (calibration.json written by `posterior`); "
                        "with --calibrate self, the prior the ladder's own residuals update")
    p.add_argument("--calibrate", default=None, metavar="self|self+FILE",
                   help="learn the discrepancy from the runs' own rolling-origin residuals (fit below a compute or "
                        "size cut, score above: see `backtest --cuts-by`) and widen the predictions by it; "
                        "self+FILE updates a calibration file instead of the prior (any estimator)")
    p.add_argument("--cuts-by", choices=("compute", "size", "auto"), default="auto",
                   help="--calibrate self: the ladder's cuts (default auto: compute, or size on a small ladder)")
    p.add_argument("--num-warmup", type=int, default=None, help="bayes: NUTS warm-up steps per chain")
    p.add_argument("--num-samples", type=int, default=None, help="bayes: NUTS draws per chain")
    p.add_argument("--chains", type=int, default=None, help="bayes: NUTS chains")
    p.add_argument("--allow-unconverged", action="store_true",
                   help=f"bayes: exit 0 even when NUTS did not converge (else exit {NOT_CONVERGED})")
    p.add_argument("--no-plots", action="store_true", help="bayes: skip the trace, pair and band figures")
    from scaling_jax.cli import fit_downstream

    fit_downstream.add_arguments(p)
    p.set_defaults(func=run)


def _fmt(x: float) -> str:
    return f"{x:.5g}"


def _print_report(args, report, n_points: int) -> None:
    body = report.body
    if args.estimator == "bayes":
        d = body["diagnostics"]
        print(f"{args.law} law, bayes estimator (NUTS), {n_points} points: R-hat max {d['max_rhat']:.4f}, "
              f"ESS min {d['min_ess']:.0f}, divergences {d['divergences']}")
        for k, (lo, hi) in body["intervals_95"].items():
            print(f"  {k:>11} = {_fmt(body['params'][k])}  95% [{_fmt(lo)}, {_fmt(hi)}]")
    else:
        print(f"{args.law} law, {args.estimator} estimator, {n_points} points: objective {body['objective']:.4g}, "
              f"converged {body['converged']} ({body['starts']['converged']}/{body['starts']['total']} starts)")
        intervals = body.get("bootstrap", {}).get("intervals_95", {})
        for k, v in body["params"].items():
            ci = f"  95% [{_fmt(intervals[k][0])}, {_fmt(intervals[k][1])}]" if k in intervals else ""
            print(f"  {k:>8} = {v:.6g}{ci}")
        if "bootstrap" in body:
            b = body["bootstrap"]
            print(f"  bootstrap ({b['estimator']} refits): {b['n_kept']}/{b['n_resamples']} resamples kept, "
                  f"{b['n_underdetermined']} dropped as underdetermined, {b['n_unconverged']} unconverged")
        for w in body["identifiability"]["warnings"]:
            print(f"  warning: {w}")
    rows = body.get("predictions", [])
    if rows:
        keys = [k for k in ("loss", "error") if k in rows[0]]
        inputs = ("L",) if args.law == "error" else ("N", "D", "M")
        print("predictions (median and 50/95 % predictive intervals):")
        print("  " + " ".join(f"{k:>10}" for k in inputs) + "".join(f" {k:>8} {'50%':>17} {'95%':>17}" for k in keys))
        for r in rows:
            cells = " ".join(f"{r[k]:>10.4g}" for k in inputs)
            for k in keys:
                s = r[k]
                cells += (f" {s['median']:>8.4f} [{s['lo50']:.4f}, {s['hi50']:.4f}] "
                          f"[{s['lo95']:.4f}, {s['hi95']:.4f}]")
            print("  " + cells)
    for problem in report.problems:
        print(f"  not converged: {problem}; rerun with more warm-up (--num-warmup) or draws (--num-samples)")


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic
    from scaling_jax.cli import fit_downstream
    from scaling_jax.laws.fit_report import fit_points
    from scaling_jax.testbed.points_io import parse_target, read_targets_csv

    if fit_downstream.handles(args):
        return fit_downstream.run(args)
    if args.out is not None:
        atomic.check_out_dir(args.out)
    targets = [parse_target(s, args.law) for s in args.predict]
    if args.predict_file:
        targets += read_targets_csv(args.predict_file, args.law)
    calibrate, cal_file = _calibrate_args(args)
    config = _nuts_config(args) if args.estimator == "bayes" else None
    pts, partial = _read_points(args)
    loss_disc = error_disc = None
    calibration = {"method": "file", "file": cal_file} if cal_file else None
    if cal_file:
        from scaling_jax.laws.bayes.calibration_file import load_calibration

        loss_disc = load_calibration(cal_file, "loss") if args.law != "error" else None
        error_disc = load_calibration(cal_file, "error") if "error" in pts else None
    if calibrate == "self":
        from scaling_jax.backtest.self_calibration import self_calibrate

        sc = self_calibrate(args.law, pts, cuts_by=args.cuts_by, prior_loss=loss_disc, prior_error=error_disc,
                            seed=args.seed)
        loss_disc, error_disc = sc.loss, sc.error
        calibration = {"method": "self", "prior": cal_file or "the weakly informative prior", **sc.info}
        for kind, info in sc.info.items():
            print(f"  calibrated on the runs' own {info['cuts_by']} cuts: {info['n_residuals']} {kind} residuals "
                  f"from {len(info['cuts'])} cut(s)")
    report = fit_points(pts, args.law, args.estimator, n_bootstrap=args.bootstrap, seed=args.seed, targets=targets,
                        config=config, loss_discrepancy=loss_disc, error_discrepancy=error_disc,
                        calibration=calibration)
    if partial:
        report.body["partial_suites"] = {"metric": args.metric, "runs": {k: list(v) for k, v in partial.items()}}
        print(f"  {args.metric} of {len(partial)} run(s) averages part of its tasks (--allow-partial-suites): "
              + "; ".join(f"{k} lacks {', '.join(v)}" for k, v in partial.items()))
    _print_report(args, report, len(pts["loss"]))
    if args.out is not None:
        written = [atomic.write_json(args.out / "fit.json", report.body)]
        if report.bayes is not None:
            from scaling_jax.laws import figures

            written += figures.write_bayes_files(report.bayes, pts, report.targets, args.out, plots=not args.no_plots,
                                                  dataset=args.dataset)
        print(f"wrote {', '.join(map(str, written))}")
    if not report.converged and not args.allow_unconverged:
        return NOT_CONVERGED
    return 0


def _calibrate_args(args) -> tuple[str | None, str | None]:
    """(``self`` or None, the calibration file or None) from --calibrate and --calibration."""
    from scaling_jax.errors import UserError
    from scaling_jax.laws.bayes.calibration_file import parse_calibrate

    mode, cal_file = (None, None) if args.calibrate is None else parse_calibrate(args.calibrate, ("self",))
    if cal_file and args.calibration and cal_file != args.calibration:
        raise UserError(f"--calibrate {args.calibrate} and --calibration {args.calibration} name two files")
    cal_file = cal_file or args.calibration
    if cal_file and mode is None and args.estimator != "bayes":
        raise UserError("--calibration applies to --estimator bayes only (or as the prior of --calibrate self)")
    return mode, cal_file


def _read_points(args) -> tuple[dict, dict]:
    """The points of ``--runs`` and, for a testbed folder whose runs carry ``--metric``, the runs
    whose value averages only part of its tasks (refused unless ``--allow-partial-suites``)."""
    from scaling_jax import paths
    from scaling_jax.testbed import load_testbed
    from scaling_jax.testbed.points_io import read_points, testbed_points
    from scaling_jax.testbed.schema import check_full_suites

    kw = {"val_set": args.val_set, "metric": args.metric, "dataset": args.dataset, "need_error": args.law == "error"}
    columns = {k: getattr(args, f"{k}_column") for k in COLUMNS if getattr(args, f"{k}_column", None)}
    if not paths.is_gcs(args.runs) and not Path(args.runs).is_dir():
        return read_points(args.runs, columns=columns, **kw), {}  # a CSV, or nothing there (read_points says which)
    if columns:
        from scaling_jax.errors import UserError

        raise UserError(f"--{next(iter(columns)).lower()}-column: applies to a CSV, and --runs {args.runs} is a folder")
    tb = load_testbed(args.runs)
    pts = testbed_points(tb, **kw)
    if "error" not in pts:
        return pts, {}
    runs = tb.select(dataset=args.dataset).runs if args.dataset else tb.runs
    return pts, check_full_suites(runs, args.metric, args.allow_partial_suites, f"--runs {args.runs}")


def _nuts_config(args):
    from scaling_jax.errors import UserError
    from scaling_jax.laws.bayes import NutsConfig

    given = {"num_warmup": ("--num-warmup", args.num_warmup), "num_samples": ("--num-samples", args.num_samples),
             "num_chains": ("--chains", args.chains)}  # fmt: skip
    for flag, v in given.values():
        if v is not None and v < 1:
            raise UserError(f"{flag}: must be >= 1, got {v}")
    return NutsConfig(seed=args.seed, **{k: v for k, (_, v) in given.items() if v is not None})
