"""``scaling-jax reproduce``: the paper's default recipe on its released testbed."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="reproduce the paper's fits and predictions from a testbed")
    p.add_argument("--testbed", default=None, help="testbed folder (default: $SCALING_JAX_TESTBED or a cached download)")
    p.add_argument("--out", type=Path, default=Path("out/reproduce"))
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic, plots
    from scaling_jax.reproduce import reproduce
    from scaling_jax.testbed import load_testbed

    tb = load_testbed(args.testbed)
    summary, grid, fits = reproduce(tb)
    print(f"{'dataset':<12} {'target':<12} {'M':>5} {'loss':>7} {'pred':>7} {'rel%':>6} {'err17':>7} {'pred':>7} {'rel%':>6}")
    for ds, d in summary["datasets"].items():
        for t in d["targets"]:
            print(f"{ds:<12} {t['model']:<12} {t['M']:>5.0f} {t['loss_true']:>7.4f} {t['loss_pred']:>7.4f} "
                  f"{t['loss_rel_err']:>6.2f} {t['error_true']:>7.4f} {t['error_pred']:>7.4f} {t['error_rel_err']:>6.2f}")
    out = args.out
    atomic.write_json(out / "reproduce.json", summary)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(grid[0]))
    w.writeheader()
    w.writerows(grid)
    atomic.write_text(out / "relative_error_grid.csv", buf.getvalue())
    written = ["reproduce.json", "relative_error_grid.csv"]
    if not args.no_plots:
        plots.figure5(grid, out / "figure5_relative_error.png")
        plots.figure1(tb, fits, out / "figure1_laws.png")
        written += ["figure5_relative_error.png", "figure1_laws.png"]
    print(f"wrote {', '.join(str(out / f) for f in written)}")
    return 0
