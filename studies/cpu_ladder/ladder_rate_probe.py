"""A learning-rate probe of a CPU ladder family: which rate suits each width, and does the family's
loss follow one power of C at those rates? (issue 11; the probes behind cpu_ladder_lr.yaml and
cpu_ladder_ffn16.yaml.)

    python studies/cpu_ladder/ladder_rate_probe.py --out /tmp/probe2 --widths 32,48,64,96,128 --rates 0.5,1,2 \\
        --set model.set.ffn_multiple=16                       # rates x (1e-2 * 32 / d): the fifth ladder's probe
    python studies/cpu_ladder/ladder_rate_probe.py --out /tmp/probe --widths 32,48,96 --rates 2,1,0.5,0.3 \\
        --fixed                                               # one rate for every width: the third ladder's probe

For each rate multiple r it writes a sweep spec (``OUT/x{r}.yaml``: one grid block per width, model
``ladder_d{w}_l1`` by default, M = 20, seed 0, the CPU ladder's base config) and trains it with
``scaling-jax sweep run`` (idempotent: done runs are skipped, so a rerun only prints). The rate is
``r * 1e-2 * 32 / d`` (muP's width rule for Adam), or ``r * 1e-2`` for every width with ``--fixed``.
Prints final loss per rate and width (the best of each width starred), then the slope
ln((L1 - L*) / (L2 - L*)) / ln(C2 / C1) of the reducible loss between neighbouring widths, along
each rate and along each width's best, with L* the corpus's exact Bayes loss from the records.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scaling_jax.cli import main as cli  # noqa: E402
from scaling_jax.testbed import load_testbed  # noqa: E402


def spec_for(out: Path, r: float, widths: list[int], overrides: dict, args) -> dict:
    """The sweep spec of rate multiple ``r``: one block per width with its own learning rate."""
    def lr(w: int) -> float:  # six significant digits, as the specs write them
        return float(f"{r * args.base_lr * (1.0 if args.fixed else args.base_width / w):.6g}")

    return {
        "name": f"rate_probe_x{r:g}", "base": str(REPO / "configs" / "train" / "cpu_ladder.yaml"),
        "out": str(out / f"x{r:g}"), "run_name": "{model}-{M:g}", "seeds": [0],
        "set": overrides,
        "grid": [{"models": [args.model.format(w=w)], "multipliers": [args.M], "set": {"optimizer.lr": lr(w)}}
                 for w in widths],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--widths", default="32,48,64,96,128")
    ap.add_argument("--rates", default="0.5,1,2", help="multiples of the rule's rate")
    ap.add_argument("--base-lr", type=float, default=1e-2)
    ap.add_argument("--base-width", type=int, default=32)
    ap.add_argument("--fixed", action="store_true", help="the same rate for every width (no 1/d scaling)")
    ap.add_argument("--model", default="ladder_d{w}_l1", help="preset name pattern")
    ap.add_argument("--M", type=float, default=20.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="spec-wide train override, e.g. model.set.ffn_multiple=16 (repeatable)")
    args = ap.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    rates = [float(r) for r in args.rates.split(",")]
    if any(w <= 0 for w in widths) or any(r <= 0 for r in rates) or args.M <= 0:
        ap.error("--widths, --rates and --M must be positive")
    if any("=" not in kv for kv in args.set):
        ap.error(f"--set takes KEY=VALUE, got {[kv for kv in args.set if '=' not in kv]}")
    overrides = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    args.out.mkdir(parents=True, exist_ok=True)

    loss, C, bayes = {}, {}, set()
    for r in rates:
        spec = spec_for(args.out, r, widths, overrides, args)
        path = args.out / f"x{r:g}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        if cli(["sweep", "run", str(path), "--jobs", "1"]) != 0:
            raise SystemExit(f"{path}: some runs failed (see `scaling-jax sweep status {path}`)")
        tb = load_testbed(spec["out"])
        for w in widths:
            rec = tb.get(f"{args.model.format(w=w)}-{args.M:g}")
            loss[r, w], C[w] = rec.loss("synthetic"), rec.C
            bayes.add(round(rec.hyperparameters["bayes_loss"]["synthetic"], 9))
    if len(bayes) != 1:
        raise SystemExit(f"{args.out}: the runs disagree on the Bayes loss {sorted(bayes)}")
    L_star = bayes.pop()

    best = {w: min(rates, key=lambda r: loss[r, w]) for w in widths}
    rule = f"x {args.base_lr:g}" if args.fixed else f"x {args.base_lr:g} * {args.base_width} / d"
    print(f"\nfinal loss at M = {args.M:g}, seed 0 (rate {rule}; * best of its width)")
    print(f"{'rate':>6s}" + "".join(f" {'d' + str(w):>9s}" for w in widths))
    print(f"{'C':>6s}" + "".join(f" {C[w]:9.3g}" for w in widths))
    for r in rates:
        print(f"{'x' + format(r, 'g'):>6s}" + "".join(f" {loss[r, w]:8.4f}{'*' if best[w] == r else ' '}"
                                                    for w in widths))
    print(f"\nslope of L - L* (L* = {L_star:.4f}) between neighbouring widths, along each rate and along the best:")
    rows = [(f"x{r:g}", {w: r for w in widths}) for r in rates] + [("best", best)]
    for label, at in rows:
        slopes = [math.log((loss[at[a], a] - L_star) / (loss[at[b], b] - L_star)) / math.log(C[b] / C[a])
                  for a, b in zip(widths, widths[1:])]
        pairs = zip(widths, widths[1:])
        print(f"{label:>6s}  " + "  ".join(f"d{a}->d{b} C^-{x:.3f}" for (a, b), x in zip(pairs, slopes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
