"""``scaling-jax posterior``: Bayesian bands per training set, checked on held-out testbed models."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("posterior",
                       help="fit Bayesian Eq. 4/5 on Table-1 points and check band coverage on the testbed")
    p.add_argument("--testbed", default=None,
                   help="testbed folder (default: $SCALING_JAX_TESTBED or a cached download)")
    p.add_argument("--out", type=Path, default=Path("out/posterior"))
    p.add_argument("--datasets", nargs="+", default=None, help="training sets to check (default: all in the testbed)")
    p.add_argument("--num-warmup", type=int, default=1000)
    p.add_argument("--num-samples", type=int, default=2000)  # NutsConfig.num_samples
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bootstrap", type=int, default=1000, help="LM bootstrap resamples for the comparison")
    p.add_argument("--calibrate", default="others", metavar="others|none|self|self+FILE",
                   help="discrepancy of each set's bands: learned from the other sets' held-out runs (default; "
                        "also writes calibration.json, learned from all sets, for reuse), the prior's only, or "
                        "learned from the set's own ladder (runs up to the fit's compute: rolling-origin cuts), "
                        "updating the prior or a calibration FILE")
    p.add_argument("--no-pooling", action="store_true", help="skip the hierarchical vs independent comparison")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.set_defaults(func=run)


HEADER = (f"{'':17} {'n':>3} {'cov50':>6} {'cov90':>6} {'cov95':>6} {'medw95':>8} {'mederr':>8} {'w/err':>6}"
          f"   | {'n':>9} {'cov95':>5} {'w/err':>5}")
ROWS = (("loss", "bayes loss"), ("loss_prior_discrepancy", "  prior-only Δ"), ("bootstrap_loss", "LM boot loss"),
        ("error", "bayes error"), ("error_prior_discrepancy", "  prior-only Δ"))


def _row(name: str, s: dict) -> str:
    c, m = s["coverage"], s["m_ge_10"]
    ratio, ratio_m = s["median_width_95"] / s["median_abs_err"], m["median_width_95"] / m["median_abs_err"]
    line = (f"  {name:<15} {s['n_heldout']:>3} {c['50']:>6.2f} {c['90']:>6.2f} {c['95']:>6.2f} "
            f"{s['median_width_95']:>8.4f} {s['median_abs_err']:>8.4f} {ratio:>6.1f}"
            f"   | M>=10: {m['n_heldout']:>3} {m['coverage']['95']:>5.2f} {ratio_m:>5.1f}")
    b = s.get("beyond_ladder")  # --calibrate self: runs no calibration cut saw
    if b:
        line += (f"   | beyond ladder: {b['n_heldout']:>3} {b['coverage']['95']:>5.2f} "
                 f"{b['median_width_95'] / b['median_abs_err']:>5.1f}")
    return line


def _print_set(ds: str, check, first: bool) -> None:
    if first:
        print(HEADER)
    d = check.summary["diagnostics"]
    print(f"{ds}: R-hat max {d['max_rhat']:.4f}, ESS min {d['min_ess']:.0f}, divergences {d['divergences']}; "
          f"discrepancy: {check.loss_law.discrepancy.source}")
    if "self_calibration" in check.summary:
        print("  (--calibrate self: runs up to the ladder's compute fed the calibration; out of sample: beyond ladder)")
    for key, name in ROWS:
        if key in check.summary:
            print(_row(name, check.summary[key]))


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic
    from scaling_jax.laws.bayes import NutsConfig
    from scaling_jax.paper.posterior import run_posterior
    from scaling_jax.testbed import load_testbed

    atomic.check_out_dir(args.out)
    tb = load_testbed(args.testbed)
    config = NutsConfig(num_warmup=args.num_warmup, num_samples=args.num_samples, num_chains=args.chains,
                        seed=args.seed)
    printed: list[str] = []

    def on_set(ds, check):
        _print_set(ds, check, first=not printed)
        printed.append(ds)

    result = run_posterior(tb, args.out, datasets=args.datasets, config=config, n_bootstrap=args.bootstrap,
                           calibrate=args.calibrate, pooling=not args.no_pooling, plots=not args.no_plots,
                           on_set=on_set)
    if result.pooling is not None:
        print("pooling eta (hierarchical) vs independent fits, same held-out models (loss):")
        for design, block in result.pooling.items():
            print(f" design {design} ({block['n_fit_points_per_set']} fit points per set)")
            for ds in result.checks:
                for kind in ("hierarchical", "independent"):
                    print(_row(f"{ds[:6]} {kind[:5]}", block[kind][ds]))
    print(f"wrote {', '.join(str(p) for p in result.written)}")
    return 0
