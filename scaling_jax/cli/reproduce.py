"""``scaling-jax reproduce``: a fitting recipe (the paper's Table 1 by default) on a testbed."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("reproduce", help="fit a recipe's laws on a testbed and predict its held-out targets")
    p.add_argument("--testbed", default=None,
                   help="testbed folder (default: $SCALING_JAX_TESTBED or a cached download)")
    p.add_argument("--recipe", default="paper",
                   help="'paper' (Table 1), a recipe name under TESTBED/recipes/ (written by `sweep collect`), "
                        "or a recipe .json file")
    p.add_argument("--out", type=Path, default=Path("out/reproduce"))
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    p.add_argument("--bands", action=argparse.BooleanOptionalAction, default=None,
                   help="Bayesian 95 %% bands for the targets (NUTS; default: on for recipes other than 'paper')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from scaling_jax import atomic
    from scaling_jax.paper.recipe import load_recipe
    from scaling_jax.paper.reproduce import write_reproduction
    from scaling_jax.testbed import load_testbed

    atomic.check_out_dir(args.out)
    tb = load_testbed(args.testbed)
    rec = load_recipe(tb, args.recipe)
    bands = args.bands if args.bands is not None else rec.name != "paper"
    summary, written = write_reproduction(tb, args.out, plots=not args.no_plots, rec=rec, bands=bands)
    metric = rec.metric.replace("_", "")
    print(f"recipe {rec.name}: Eq. 4 on {rec.val_set} loss, Eq. 5 on {rec.metric}")
    print(f"{'dataset':<12} {'target':<16} {'M':>5} {'loss':>7} {'pred':>7} {'rel%':>6} "
          f"{metric:>7} {'pred':>7} {'rel%':>6}" + (f" {'loss 95% band':>17} {'in':>3} {'err 95% band':>15} {'in':>3}"
                                                    if bands else ""))
    for ds, d in summary["datasets"].items():
        bayes = {t["name"]: t for t in d.get("bayes", {}).get("targets", [])}
        for t in d["targets"]:
            line = (f"{ds:<12} {t['model']:<16} {t['M']:>5.0f} {t['loss_true']:>7.4f} {t['loss_pred']:>7.4f} "
                    f"{t['loss_rel_err']:>6.2f} {_num(t['error_true'])} {_num(t['error_pred'])} "
                    f"{_num(t['error_rel_err'], 6, 2)}")
            if t["name"] in bayes:
                b = bayes[t["name"]]
                line += (f" [{b['loss_lo95']:.4f}, {b['loss_hi95']:.4f}] {_yes(b['loss_in_band'])}"
                         f" [{b['error_lo95']:.3f}, {b['error_hi95']:.3f}] {_yes(b['error_in_band'])}")
            print(line)
        for m in d.get("target_seed_means", []):
            line = (f"{'':<12} {'mean of ' + str(m['seeds']):<16} {m['M']:>5.0f} {m['loss_true']:>7.4f} "
                    f"{m['loss_pred']:>7.4f} {m['loss_rel_err']:>6.2f} {_num(m['error_true'])} "
                    f"{_num(m['error_pred'])} {_num(m['error_rel_err'], 6, 2)}")
            if "loss_in_band" in m:
                line += (f" [{m['loss_lo95']:.4f}, {m['loss_hi95']:.4f}] {_yes(m['loss_in_band'])}"
                         f" [{m['error_lo95']:.3f}, {m['error_hi95']:.3f}] {_yes(m['error_in_band'])}")
            print(line + f"  ({m['model']}, loss sd {m['loss_sd']:.4f} over seeds)")
        params = {**d["loss_fit"], **d["error_fit"]}
        print(f"{'':<12} fit: " + ", ".join(f"{k}={v:.4g}" for k, v in params.items()))
        if "bayes" in d:
            E = d["bayes"]["params"]["E"]
            print(f"{'':<12} posterior E: median {E['median']:.4f}, 95 % [{E['lo95']:.4f}, {E['hi95']:.4f}]")
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def _num(v, width: int = 7, digits: int = 4) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.{digits}f}"


def _yes(v) -> str:
    return f"{'-' if v is None else 'yes' if v else 'NO':>3}"
