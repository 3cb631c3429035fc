"""``scaling-jax plan``: what to train next, how big, how long, and how sure."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="plan runs from a posterior: compute-optimal split, inference-aware size, "
                                    "candidates' odds of reaching a target, the next run to add")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--posterior", type=Path, help="posterior.nc written by `fit --estimator bayes` (or `plan`), or "
                                                    "downstream_draws.npz of `fit --law downstream` (--target-error: "
                                                    "the task-mean error)")
    src.add_argument("--testbed", help="testbed or sweep folder to fit on the fly (with --dataset)")
    p.add_argument("--dataset", default=None, help="training set (required with --testbed; checked with --posterior)")
    p.add_argument("--recipe", default="table1", help="fit points: table1 (the paper's) or all (every run of the set)")
    p.add_argument("--allow-partial-suites", action="store_true",
                   help="--testbed: fit Eq. 5 on runs whose err_17 averages part of its tasks (else refused, named)")
    p.add_argument("--calibrate", default="prior", metavar="prior|self|self+FILE",
                   help="--testbed: the discrepancy's prior, or learned from the set's own runs up to the fit's "
                        "compute (rolling-origin cuts), updating the prior or a calibration FILE")
    p.add_argument("--budget", type=float, default=None, metavar="FLOPS", help="compute budget C to allocate")
    tgt = p.add_mutually_exclusive_group()
    tgt.add_argument("--target-loss", type=float, default=None, metavar="L")
    tgt.add_argument("--target-error", type=float, default=None, metavar="E")
    p.add_argument("--inference-tokens", type=float, default=0.0, metavar="D_INF",
                   help="tokens the model will serve (lifetime FLOPs = 6ND + 2N·D_INF)")
    p.add_argument("--p", type=float, default=0.9, help="required probability of reaching the target")
    p.add_argument("--candidates", default=None, metavar="N:M,N:M,...|SPEC.yaml",
                   help="runs to score (N:D=tokens for a D), or a sweep spec: its runs that are not fitted")
    p.add_argument("--next-run", action="store_true", help="rank cheap runs by how much they sharpen the target")
    p.add_argument("--trunks", default=None, metavar="DIR",
                   help="--next-run: also rank branches of the WSD trunks (trunk.json) under DIR, each costing its "
                        "decay alone (default: the --testbed folder)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num-warmup", type=int, default=None, help="on-the-fly fit: NUTS warm-up steps per chain")
    p.add_argument("--num-samples", type=int, default=None, help="on-the-fly fit: NUTS draws per chain")
    p.add_argument("--chains", type=int, default=None, help="on-the-fly fit: NUTS chains")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic
    from scaling_jax.cli.fit import _nuts_config
    from scaling_jax.errors import UserError
    from scaling_jax.plan.report import Ask, make_plan, table, write_plan

    atomic.check_out_dir(args.out)
    ask = Ask(budget=args.budget, target_loss=args.target_loss, target_error=args.target_error,
              inference_tokens=args.inference_tokens, p=args.p,
              candidates=_candidates(args.candidates) if args.candidates is not None else None,
              next_run=args.next_run, seed=args.seed,
              trunks=args.trunks or (args.testbed if args.next_run else None))
    ask.check()
    if args.posterior is not None and args.posterior.suffix == ".npz":  # a downstream route's draws (issue 30)
        from scaling_jax.cli.fit_downstream import plan_from_draws

        return plan_from_draws(args, ask)
    if args.posterior is not None:
        from scaling_jax.laws.bayes.posterior_file import read_posterior

        post = read_posterior(args.posterior, dataset=args.dataset)
    else:
        from scaling_jax.paper.plan import check_fit_inputs, fit_for_plan
        from scaling_jax.testbed import load_testbed

        if args.dataset is None:
            raise UserError("--testbed needs --dataset: the training set to fit")
        tb = load_testbed(args.testbed)
        check_fit_inputs(tb, args.dataset, args.recipe)
        ask.check(chained=True)
        post = fit_for_plan(tb, args.dataset, args.recipe, _nuts_config(args), save=args.out / "posterior.nc",
                            calibrate=args.calibrate, allow_partial_suites=args.allow_partial_suites)
    if args.posterior is not None and args.calibrate != "prior":
        raise UserError("--calibrate applies to --testbed (an on-the-fly fit); a posterior file carries its own "
                        "discrepancy")
    plan = make_plan(post.loss_law, post.error_law, ask, diagnostics=post.diagnostics,
                     source={"from": post.source, "law": post.law, "dataset": post.dataset,
                             "calibration": post.calibration or {"method": "stored with the posterior"}})
    print(table(plan))
    written = write_plan(plan, post.loss_law, args.out, plots=not args.no_plots)
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def _candidates(value: str):
    """``N:M,...`` pairs, or a sweep spec's runs that are not in its fit set (its targets and others)."""
    import numpy as np

    from scaling_jax.plan.candidates import parse_candidates

    if not value.endswith((".yaml", ".yml")):
        return parse_candidates(value)
    from scaling_jax.errors import UserError
    from scaling_jax.sweep.spec import expand, load_spec

    runs = [r for r in expand(load_spec(value)) if r.role not in ("fit", "trunk")]
    if not runs:
        raise UserError(f"--candidates {value}: every run of the sweep is in its fit set; nothing to score")
    return np.array([float(r.N) for r in runs]), np.array([r.M for r in runs])
