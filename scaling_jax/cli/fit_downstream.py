"""``scaling-jax fit --law downstream``: a ladder's per-task accuracies forecast at (N, D) by a route
(``paper``, ``two-step``, ``per-task``; ``scaling_jax.laws.downstream``), with fit.json, a figure per
task and (for ``plan --target-error``) the fitted route's draws."""

from __future__ import annotations

import argparse
import csv

ACC_METRICS = ("acc", "acc_norm")


def add_arguments(p) -> None:
    """The downstream law's own flags on ``fit``'s parser. Their values are checked where the route is
    built (``laws.downstream``): importing it here would start JAX (NumPyro) while the CLI parses,
    before ``train --coordinator`` can initialise jax.distributed."""
    g = p.add_argument_group("--law downstream")
    g.add_argument("--route", default=None, metavar="paper|two-step|per-task|auto",
                   help="paper: loss -> task-mean error (Eq. 5); two-step: per task N, D -> the task's loss (bits "
                        "per byte) -> accuracy, then the mean; per-task: loss -> each task's accuracy -> mean; "
                        "auto: the route (and forms) a backtest on the runs' own cuts chooses (default: two-step "
                        "where the runs carry task losses, else paper)")
    g.add_argument("--tasks", default=None, metavar="a,b|all",
                   help="tasks to fit (default: the testbed's 17, the synthetic suite, or for runs evaluated by "
                        "lm-eval every task; all: every task measured on every run)")
    g.add_argument("--forms", default=None, metavar="STEP1/STEP2",
                   help="step 1 eq3|eq4, step 2 sigmoid|eq5 (default: paper eq4/eq5, per-task eq4/sigmoid, "
                        "two-step eq3/sigmoid)")
    g.add_argument("--anchor", default="constraint", metavar="constraint|prior|none",
                   help="the sigmoid's ceiling at loss 0: an exact constraint, a prior (bayes) / the authors' added "
                        "point (lm, huber), or none")


def handles(args: argparse.Namespace) -> bool:
    """Whether ``fit`` is a downstream fit; ``--metric acc|acc_norm`` or a downstream flag on another
    law is refused."""
    from scaling_jax.errors import UserError

    if args.law == "downstream":
        return True
    given = [f"--{k}" for k in ("route", "tasks", "forms") if getattr(args, k) is not None]
    given += ["--anchor"] if args.anchor != "constraint" else []
    if given:  # a flag that would change nothing is refused rather than ignored
        raise UserError(f"{', '.join(given)}: flag(s) of --law downstream; --law {args.law} does not read them")
    if args.metric in ACC_METRICS:
        raise UserError(f"--metric {args.metric}: a per-task accuracy metric, for --law downstream; --law "
                        f"{args.law} fits a mean error (err_17 or err_46)")
    return False


def _given_rows(path: str, names: list[str]) -> list[dict] | None:
    """Rows of ``--predict-file`` holding every intermediate the route's step 2 reads (``loss`` or
    ``task_loss:TASK``): step 2 alone from measured losses; None when the file has not all of them."""
    from scaling_jax.errors import UserError

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if not set(names) <= set(header):
            return None
        out = []
        for line, row in enumerate(reader, start=2):
            try:
                vals = {k: float(row[k]) for k in names}
            except (TypeError, ValueError):
                raise UserError(f"{path}:{line}: {names} must be numbers") from None
            if not all(v > 0 for v in vals.values()):
                raise UserError(f"{path}:{line}: losses must be positive, got {vals}")
            out.append(vals)
    if not out:
        raise UserError(f"{path}: no rows")
    return out


def _print(body: dict) -> None:
    print(f"downstream law, route {body['route']} ({body['step1']}/{body['step2']}), {body['estimator']} estimator, "
          f"{body['n_runs']} runs, {len(body['tasks'])} task(s), metric {body['metric']}")
    if "diagnostics" in body:
        d = body["diagnostics"]
        print(f"  NUTS: R-hat max {d['max_rhat']:.4f}, ESS min {d['min_ess']:.0f}, divergences {d['divergences']}")
    if "bootstrap" in body:
        b = body["bootstrap"]
        print(f"  bootstrap: {b['n_kept']}/{b['n_resamples']} resamples refitted every step of every task")
    rows = body["predictions"]
    if not rows:
        return
    print("predictions (median and 95 % predictive interval):")
    for r in rows:
        where = f"N={r['N']:.4g} D={r['D']:.4g}" if "N" in r else ", ".join(f"{k}={v:.4g}" for k, v in r.items()
                                                                               if isinstance(v, float))
        m = r["mean_accuracy"]
        print(f"  {where}: mean accuracy {m['median']:.4f} [{m['lo95']:.4f}, {m['hi95']:.4f}], mean error "
              f"{r['mean_error']['median']:.4f}")
        for task, t in r["tasks"].items():
            a = t["accuracy"]
            tl = t.get("task_loss", {})
            extra = f", task loss {tl['median']:.4f}" if "median" in tl else ""
            print(f"    {task:<28} {a['median']:.4f} [{a['lo95']:.4f}, {a['hi95']:.4f}]{extra}")


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic
    from scaling_jax.cli.fit import NOT_CONVERGED, _nuts_config
    from scaling_jax.errors import UserError
    from scaling_jax.laws.downstream import Route, layout, save_fit
    from scaling_jax.paper.downstream import fit_report, task_figures
    from scaling_jax.testbed.points_io import parse_target, read_targets_csv
    from scaling_jax.testbed.task_points import read_task_points

    if args.out is not None:
        atomic.check_out_dir(args.out)
    for flag in ("n_column", "d_column", "loss_column", "error_column"):
        if getattr(args, flag, None):
            raise UserError(f"--{flag.replace('_', '-')}: not for --law downstream (its CSV columns are N, D, loss, "
                            "acc:TASK, task_loss:TASK)")
    if args.calibration:
        raise UserError("--calibration: a downstream fit's discrepancies are the priors or --calibrate self")
    metric = args.metric if args.metric in ACC_METRICS else "acc"
    tasks = args.tasks
    if tasks is None and args.metric == "err_46":
        from scaling_jax.testbed.tasks import SUITES

        tasks = ",".join(SUITES["err_46"])
    points = read_task_points(args.runs, dataset=args.dataset, metric=metric, tasks=tasks, val_set=args.val_set)
    choice = None
    if args.route == "auto":
        from scaling_jax.backtest.downstream import backtest_downstream, recipe_route, summary_lines

        choice = backtest_downstream(points, None, cuts_by=getattr(args, "cuts_by", "auto"), anchor=args.anchor,
                                     seed=args.seed)
        print("\n".join(summary_lines(choice)))
        route = recipe_route(choice["chosen"]["recipe"], args.anchor)
    else:
        route = Route.make(args.route or ("two-step" if points.task_loss is not None else "paper"), args.forms,
                           args.anchor)
    targets = [parse_target(s, "overtrain") for s in args.predict]
    given = []
    if args.predict_file:
        names = list(layout(points, route).names)
        rows = _given_rows(args.predict_file, names)
        if rows is None:
            targets += read_targets_csv(args.predict_file, "overtrain")
        else:
            given = rows
    config = _nuts_config(args) if args.estimator == "bayes" else None
    fit, body = fit_report(points, route, args.estimator, targets=targets, given=given, n_bootstrap=args.bootstrap,
                           seed=args.seed, config=config, calibrate=getattr(args, "calibrate", None),
                           cuts_by=getattr(args, "cuts_by", "auto"))
    if choice is not None:
        body["route_choice"] = {k: choice[k] for k in ("cuts_by", "selection_cuts", "selection_rule", "chosen")} | {
            "scores": {k: v.get("selection_score") for k, v in choice["recipes"].items()}}
    _print(body)
    if args.out is not None:
        written = [atomic.write_json(args.out / "fit.json", body), save_fit(fit, args.out / "downstream_draws.npz")]
        if not args.no_plots:
            written += task_figures(points, fit, body, args.out, seed=args.seed)
        print(f"wrote {len(written)} file(s) to {args.out} (fit.json, downstream_draws.npz"
              f"{', tasks/*.png' if not args.no_plots else ''})")
    problems = body.get("diagnostics", {}).get("problems", [])
    for p in problems:
        print(f"  not converged: {p}; rerun with more warm-up (--num-warmup) or draws (--num-samples)")
    if problems and not args.allow_unconverged:
        return NOT_CONVERGED
    return 0


def plan_from_draws(args: argparse.Namespace, ask) -> int:
    """``plan --posterior downstream_draws.npz``: plan with a downstream route's draws (``plan.downstream``)."""
    from scaling_jax import atomic
    from scaling_jax.errors import UserError
    from scaling_jax.laws.downstream import load_fit
    from scaling_jax.plan.downstream import downstream_plan, table

    if ask.target_loss is not None or ask.next_run:
        raise UserError(f"--posterior {args.posterior}: a downstream route forecasts the task-mean error; plan it with "
                        "--target-error, --budget or --candidates (--target-loss and --next-run need posterior.nc)")
    fit = load_fit(args.posterior)
    plan = downstream_plan(fit, budget=ask.budget, target_error=ask.target_error, D_inf=ask.inference_tokens,
                           p=ask.p, candidates=ask.candidates, seed=ask.seed, source=str(args.posterior))
    print(table(plan))
    print(f"wrote {atomic.write_json(args.out / 'plan.json', plan)}")
    return 0
