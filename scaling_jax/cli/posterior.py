"""``scaling-jax posterior``: Bayesian bands per training set, checked on held-out testbed models."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("posterior", help="fit Bayesian Eq. 4/5 on Table-1 points and check band coverage on the testbed")
    p.add_argument("--testbed", default=None, help="testbed folder (default: $SCALING_JAX_TESTBED or a cached download)")
    p.add_argument("--out", type=Path, default=Path("out/posterior"))
    p.add_argument("--datasets", nargs="+", default=None, help="training sets to check (default: all in the testbed)")
    p.add_argument("--num-warmup", type=int, default=1000)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bootstrap", type=int, default=1000, help="LM bootstrap resamples for the comparison")
    p.add_argument("--calibrate", choices=("others", "none"), default="others",
                   help="discrepancy of each set's bands: learned from the other sets' held-out runs (default) "
                        "or the prior's only")
    p.add_argument("--no-pooling", action="store_true", help="skip the hierarchical vs independent comparison")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.set_defaults(func=run)


def _row(name: str, s: dict) -> str:
    c = s["coverage"]
    m = s["m_ge_10"]
    return (f"  {name:<15} {s['n_heldout']:>3} {c['50']:>6.2f} {c['90']:>6.2f} {c['95']:>6.2f} "
            f"{s['median_width_95']:>8.4f} {s['median_abs_err']:>8.4f} {s['median_width_95'] / s['median_abs_err']:>6.1f}"
            f"   | M>=10: {m['n_heldout']:>3} {m['coverage']['95']:>5.2f} {m['median_width_95'] / m['median_abs_err']:>5.1f}")


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic, posterior_plots
    from scaling_jax.laws.bayes import NutsConfig
    from scaling_jax.posterior_check import calibrate_from, check_set, fit_set, pooling_comparison
    from scaling_jax.testbed import load_testbed

    tb = load_testbed(args.testbed)
    datasets = args.datasets or list(tb.datasets)
    unknown = sorted(set(datasets) - set(tb.datasets))
    if unknown:
        raise ValueError(f"--datasets: {unknown} not in the testbed (it has {list(tb.datasets)})")
    config = NutsConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.chains, seed=args.seed)
    # Calibration needs every set's fit; the checked sets are among them.
    fitted = list(tb.datasets) if args.calibrate == "others" else datasets
    fits = {ds: fit_set(tb, ds, config) for ds in fitted}
    checks = {}
    print(f"{'':17} {'n':>3} {'cov50':>6} {'cov90':>6} {'cov95':>6} {'medw95':>8} {'mederr':>8} {'w/err':>6}"
          f"   | {'n':>9} {'cov95':>5} {'w/err':>5}")
    rows = (("loss", "bayes loss"), ("loss_prior_discrepancy", "  prior-only Δ"), ("bootstrap_loss", "LM boot loss"),
            ("error", "bayes error"), ("error_prior_discrepancy", "  prior-only Δ"))
    for ds in datasets:
        calibrated = calibrate_from(fits, ds, config) if args.calibrate == "others" else None
        checks[ds] = c = check_set(tb, fits[ds], config, n_bootstrap=args.bootstrap, calibrated=calibrated)
        d = c.summary["diagnostics"]
        print(f"{ds}: R-hat max {d['max_rhat']:.4f}, ESS min {d['min_ess']:.0f}, divergences {d['divergences']}; "
              f"discrepancy: {c.loss_law.discrepancy.source}")
        for key, name in rows:
            if key in c.summary:
                print(_row(name, c.summary[key]))
    summary = {"datasets": {ds: c.summary for ds, c in checks.items()},
               "config": {"num_warmup": config.num_warmup, "num_samples": config.num_samples,
                          "num_chains": config.num_chains, "seed": config.seed, "bootstrap": args.bootstrap,
                          "calibrate": args.calibrate}}
    atomic.write_json(args.out / "posterior.json", summary)
    written = ["posterior.json"]
    if not args.no_pooling and len(datasets) > 1:
        table1 = {ds: c.loss_law for ds, c in checks.items()}
        disc = {ds: c.loss_law.discrepancy for ds, c in checks.items()}
        pooling = pooling_comparison(tb, datasets, config, table1=table1, discrepancy=disc)
        print("pooling eta (hierarchical) vs independent fits, same held-out models (loss):")
        for design, block in pooling.items():
            print(f" design {design} ({block['n_fit_points_per_set']} fit points per set)")
            for ds in datasets:
                for kind in ("hierarchical", "independent"):
                    print(_row(f"{ds[:6]} {kind[:5]}", block[kind][ds]))
        atomic.write_json(args.out / "pooling.json", pooling)
        written.append("pooling.json")
    if not args.no_plots:
        posterior_plots.figure1_bands(tb, checks, args.out / "figure1_bands.png")
        posterior_plots.calibration(checks, args.out / "calibration.png")
        written += ["figure1_bands.png", "calibration.png"]
    print(f"wrote {', '.join(str(args.out / f) for f in written)}")
    return 0
