"""``scaling-jax reproduce``: the paper's default recipe on its released testbed."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the paper's fits and predictions from a testbed")
    p.add_argument("--testbed", default=None,
                   help="testbed folder (default: $SCALING_JAX_TESTBED or a cached download)")
    p.add_argument("--out", type=Path, default=Path("out/reproduce"))
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic
    from scaling_jax.paper.reproduce import write_reproduction
    from scaling_jax.testbed import load_testbed

    atomic.check_out_dir(args.out)
    tb = load_testbed(args.testbed)
    summary, written = write_reproduction(tb, args.out, plots=not args.no_plots)
    print(f"{'dataset':<12} {'target':<12} {'M':>5} {'loss':>7} {'pred':>7} {'rel%':>6} "
          f"{'err17':>7} {'pred':>7} {'rel%':>6}")
    for ds, d in summary["datasets"].items():
        for t in d["targets"]:
            print(f"{ds:<12} {t['model']:<12} {t['M']:>5.0f} {t['loss_true']:>7.4f} {t['loss_pred']:>7.4f} "
                  f"{t['loss_rel_err']:>6.2f} {t['error_true']:>7.4f} {t['error_pred']:>7.4f} "
                  f"{t['error_rel_err']:>6.2f}")
    print(f"wrote {', '.join(map(str, written))}")
    return 0
