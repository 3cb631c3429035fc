"""Which form does the CPU ladder's loss surface take? A hindsight check for issue 11's loss goal.

    python studies/cpu_ladder/ladder_surface.py TESTBED [TESTBED ...] [--val-set synthetic]
                                         [--spec SPEC --seed-sd PCT] [--slopes M]
    python studies/cpu_ladder/ladder_surface.py --seeds TESTBED    # seed noise of a multi-seed sweep

TESTBED: a folder written by ``scaling-jax sweep collect`` (several are pooled). One row per
(model, M): its loss is the mean over the seeds trained at that size. Every size is fitted,
targets included: this peeks at the answers on purpose and bounds what a law of each form could
do, it does not predict.

Forms, each fitted to all runs at once, with the in-sample relative error |fit − L| / L per run:
  eq4     Eq. 4, L = E + (a·M^η + b·M^−η)·C^−η (the paper's law; the package's LM fit)
  eq3     Eq. 3, L = E + A·N^−α + B·D^−β (Chinchilla; the package's LM fit)
  mult    L = L* + G·N^−p·D^−q with L* the corpus's exact Bayes loss from the records: a product,
          not a sum, of the N and D terms (least squares on log(L − L*))
Eq. 3 and Eq. 4 are sums: at a fixed N they level off at E + A·N^−α as D grows. If a ladder's
runs at a fixed N keep falling as a power of D, a sum cannot follow them and the product can.

With ``--spec`` (the sweep spec whose recipe names the fit runs and targets) and ``--seed-sd``
(the seed-to-seed standard deviation of one run's final loss, in %), it also propagates that
noise: every loss-fit size's loss is redrawn 400 times with it (divided by the square root of
the size's seeds, as the fit pools them), independently per size, Eq. 4
refitted on each draw (one vmapped LM fit; only converged refits count), and the spread of each
target's prediction printed. That spread, and the target's own seed noise, bound how close a fit
on one seed per run can come to one measured run. The same table adds Eq. 4 refitted with E fixed
at the exact Bayes loss (``E=L*``; squared relative error of L, least squares in a and b on a fine
grid of eta): how close the law's form would come if the fit knew the floor, which no real corpus
tells.

``--seeds TESTBED`` (a collected multi-seed sweep such as studies/cpu_ladder/specs/cpu_ladder_seeds.yaml;
``--models`` keeps some sizes) prints each size's final losses across seeds and the pooled sd of
one run's log loss. It also splits that noise, log L = size mean + seed effect + own noise: the
seed fixes the batch order, the same for every size, so part of the noise may be shared by every
size of one seed. The split is a two-way analysis of variance without replication, with the
method-of-moments estimate of the shared sd. Which sd to propagate: the own part moves fit runs
against each other; a shared part moves them together, and cancels against a target only if the
target shares it (same seed and architecture). The own sd gives the smaller spread, the pooled sd
the larger. Sizes trained on different seeds (a block's own ``seeds``) are compared on the seeds
they all have.

``--slopes M`` prints the slope ln(x1/x2) / ln(C2/C1) of the reducible loss x = L − L* (seed means)
between neighbouring sizes at multiplier M: one power law keeps it constant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scaling_jax.laws.fit import fit_law, fit_own_rows, predict  # noqa: E402
from scaling_jax.laws.forms import law as law_form  # noqa: E402
from scaling_jax.sweep.spec import expand, load_spec, recipe_runs  # noqa: E402
from scaling_jax.testbed import load_testbed  # noqa: E402


def size_of(run) -> tuple[str, float]:
    """A run's (model, M): its place in a ladder, whatever its seed."""
    return run.model, round(run.M, 3)


def ladder_runs(folders: list[str], val_set: str) -> list[dict]:
    """One row per (model, M) with N, D, C, M, the Bayes loss L*, and L the mean over the row's
    seeds (``n`` of them; a size found in several testbeds pools their seeds), in the order first seen."""
    rows: dict[tuple, dict] = {}
    for folder in folders:
        for r in load_testbed(folder).runs:
            if val_set not in r.losses:
                raise SystemExit(f"{folder}: run {r.name} has no {val_set!r} loss (has {sorted(r.losses)})")
            bayes = (r.hyperparameters.get("bayes_loss") or {}).get(val_set)
            if bayes is None:
                raise SystemExit(f"{folder}: run {r.name} records no bayes_loss for {val_set!r}")
            row = rows.setdefault(size_of(r), dict(name=r.name, N=r.N, D=r.D, C=r.C, M=r.M, names=[], seeds=[],
                                                   bayes=float(bayes)))
            row["names"].append(r.name)
            row["seeds"].append(r.losses[val_set])
    if len({round(r["bayes"], 6) for r in rows.values()}) != 1:
        raise SystemExit("the runs disagree on the Bayes loss: they are not one corpus")
    for row in rows.values():
        row["L"], row["n"] = float(np.mean(row["seeds"])), len(row["seeds"])
    return list(rows.values())


def fitted(form: str, runs: list[dict]) -> tuple[np.ndarray, str]:
    """In-sample fitted losses of ``form`` and its parameters as text."""
    col = {k: np.array([r[k] for r in runs], np.float64) for k in ("N", "D", "C", "M", "L", "bayes")}
    if form == "mult":
        X = np.stack([np.ones_like(col["N"]), -np.log(col["N"]), -np.log(col["D"])], axis=1)
        (logG, p, q), *_ = np.linalg.lstsq(X, np.log(col["L"] - col["bayes"]), rcond=None)
        fit = col["bayes"] + np.exp(X @ np.array([logG, p, q]))
        return fit, f"L*={col['bayes'][0]:.4f} G={np.exp(logG):.4g} p={p:.3f} q={q:.3f}"
    law, inputs = {"eq4": ("overtrain", ("C", "M")), "eq3": ("chinchilla", ("N", "D"))}[form]
    res = fit_law(law, {k: col[k] for k in inputs}, col["L"])
    fit = np.asarray(predict(law, res.params, **{k: col[k] for k in inputs}))
    return fit, " ".join(f"{k}={v:.4g}" for k, v in res.params.items())


def eq4_known_floor(fit: list[dict]) -> tuple[float, float, float]:
    """Eq. 4 with E fixed at the corpus's exact Bayes loss L*: (a, b, eta) minimising the squared
    relative error of L over the fit rows. At a fixed eta the law is linear in (a, b), so a fine
    grid of eta with a linear least-squares solve at each point finds the optimum exactly enough."""
    C, M, L, Ls = (np.array([r[k] for r in fit]) for k in ("C", "M", "L", "bayes"))
    best = None
    for eta in np.linspace(0.02, 1.0, 9801):
        X = np.stack([M ** eta * C ** -eta, M ** -eta * C ** -eta], axis=1) / L[:, None]
        coef, *_ = np.linalg.lstsq(X, (L - Ls) / L, rcond=None)
        rss = float(np.sum((X @ coef - (L - Ls) / L) ** 2))
        if best is None or rss < best[0]:
            best = (rss, float(coef[0]), float(coef[1]), float(eta))
    return best[1:]


def seed_noise_spread(runs: list[dict], spec_path: str, sd_pct: float, draws: int = 400, seed: int = 0) -> None:
    """Print the spread of Eq. 4's target predictions when the fit runs' losses move by ``sd_pct`` %."""
    chosen = recipe_runs(spec := load_spec(spec_path), expand(spec))
    row_of = {name: row for row in runs for name in row["names"]}
    missing = [r.name for r in chosen["loss_fit"] + chosen["targets"] if r.name not in row_of]
    if missing:
        raise SystemExit(f"{spec_path}: the testbeds hold no record of {missing}")
    fit = list({id(row_of[r.name]): row_of[r.name] for r in chosen["loss_fit"]}.values())  # one row per size
    targets = list({id(row_of[r.name]): row_of[r.name] for r in chosen["targets"]}.values())
    rng = np.random.default_rng(seed)
    sd = sd_pct / 100 / np.sqrt([r["n"] for r in fit])  # a fit on n seeds of a size fits their mean
    y = np.array([r["L"] for r in fit]) * (1 + sd * rng.standard_normal((draws, len(fit))))
    xs = {k: np.tile([r[k] for r in fit], (draws, 1)) for k in ("C", "M")}
    best, _ = fit_own_rows("overtrain", xs, y, np.ones_like(y))
    ok = np.all(np.isfinite(best.params), axis=1) & np.asarray(best.converged, bool)
    if not ok.any():
        raise SystemExit(f"{spec_path}: no refit converged")
    params = dict(zip(law_form("overtrain")[1], best.params[ok].T))
    centre = fit_law("overtrain", {k: np.array([r[k] for r in fit]) for k in ("C", "M")},
                     np.array([r["L"] for r in fit])).params
    print(f"\nseed noise {sd_pct:g} % per run on the {len(fit)} loss-fit sizes of {spec_path} (divided by "
          f"the square root of each size's seeds, {sorted({r['n'] for r in fit})}): "
          f"{ok.sum()} of {draws} refits converged")
    a, b, eta = eq4_known_floor(fit)
    print(f"{'target':34s} {'L':>7s} {'fit':>7s} {'pred 2.5%':>9s} {'97.5%':>7s} {'sd %':>6s}   "
          f"{'E=L*':>7s} {'rel %':>6s}")
    for r in targets:
        one = {k: np.array([r[k]]) for k in ("C", "M")}
        mid = float(predict("overtrain", centre, **one)[0])
        pred = np.asarray(predict("overtrain", params, **one))
        lo, hi = np.percentile(pred, [2.5, 97.5])
        known = r["bayes"] + (a * r["M"] ** eta + b * r["M"] ** -eta) * r["C"] ** -eta
        print(f"{r['name']:34s} {r['L']:7.4f} {mid:7.4f} {lo:9.4f} {hi:7.4f} {100 * np.std(pred) / mid:6.2f}   "
              f"{known:7.4f} {100 * abs(known / r['L'] - 1):6.2f}")
    print(f"E=L*: Eq. 4 refitted on the same sizes with E fixed at the exact Bayes loss {fit[0]['bayes']:.4f} "
          f"(hindsight: no real corpus tells its floor): a={a:.4g} b={b:.4g} eta={eta:.4f}")


def seed_noise(folder: str, val_set: str, models: list[str] | None = None) -> None:
    """Per-size spread of the final loss across seeds, and its shared / own split."""
    runs = [r for r in load_testbed(folder).runs if not models or r.model in models]
    if models and sorted({r.model for r in runs}) != sorted(set(models)):
        raise SystemExit(f"{folder}: no runs of {sorted(set(models) - {r.model for r in runs})}")
    for r in runs:
        if val_set not in r.losses or "seed" not in r.hyperparameters:
            raise SystemExit(f"{folder}: run {r.name} records no {val_set!r} loss or no seed")
    n_of = {r.model: r.N for r in runs}
    sizes = sorted({size_of(r) for r in runs}, key=lambda k: (n_of[k[0]], k[1]))
    per_size = {k: {int(r.hyperparameters["seed"]) for r in runs if size_of(r) == k} for k in sizes}
    seeds = sorted(set.intersection(*per_size.values()))
    left_out = [r for r in runs if int(r.hyperparameters["seed"]) not in seeds]
    if left_out:  # sizes may take different seeds (a block's own seeds): the split needs a full table
        print(f"the seeds every size has: {seeds}; {len(left_out)} runs of other seeds left out")
        runs = [r for r in runs if int(r.hyperparameters["seed"]) in seeds]
    if len(sizes) < 2 or len(seeds) < 2:
        raise SystemExit(f"{folder}: the split needs at least 2 sizes and 2 seeds, found {len(sizes)} and {len(seeds)}")
    L = np.full((len(sizes), len(seeds)), np.nan)
    for r in runs:
        L[sizes.index(size_of(r)), seeds.index(int(r.hyperparameters["seed"]))] = r.losses[val_set]
    print(f"{'size':24s}" + "".join(f" {'s' + str(s):>7s}" for s in seeds) + f" {'mean':>7s} {'sd %':>6s}")
    for (model, M), row in zip(sizes, L):
        print(f"{model + ' M=' + format(M, '.0f'):24s}" + "".join(f" {x:7.4f}" for x in row)
              + f" {row.mean():7.4f} {100 * row.std(ddof=1) / row.mean():6.2f}")
    n_s, n_k = L.shape
    resid = np.log(L) - np.log(L).mean(axis=1, keepdims=True)
    seed_means = resid.mean(axis=0)
    ms_own = ((resid - seed_means) ** 2).sum() / ((n_s - 1) * (n_k - 1))
    ms_seed = n_s * (seed_means**2).sum() / (n_k - 1)
    shared_sd = np.sqrt(max(0.0, ms_seed - ms_own) / n_s)
    pooled_sd = np.sqrt((resid**2).sum() / (n_s * (n_k - 1)))
    print(f"{n_s} sizes x {n_k} seeds; sd of one run's log loss across seeds (pooled): {100 * pooled_sd:.2f} %")
    print(f"seed means over the sizes: {' '.join(f'{100 * x:+.2f}' for x in seed_means)} %; "
          f"F = MS_seed / MS_own = {ms_seed / ms_own:.2f} on ({n_k - 1}, {(n_s - 1) * (n_k - 1)}) df")
    print(f"split: own sd {100 * np.sqrt(ms_own):.2f} %, shared sd {100 * shared_sd:.2f} % (method of moments)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("testbeds", nargs="*")
    ap.add_argument("--seeds", metavar="TESTBED", help="report the seed noise of this multi-seed sweep instead")
    ap.add_argument("--models", help="with --seeds: comma-separated sizes to keep")
    ap.add_argument("--val-set", default="synthetic")
    ap.add_argument("--spec", help="sweep spec whose recipe names the loss-fit runs and targets")
    ap.add_argument("--seed-sd", type=float, help="seed-to-seed sd of one run's loss, in %% (needs --spec)")
    ap.add_argument("--slopes", type=float, metavar="M",
                    help="also print the slope of L - L* (seed means) between neighbouring sizes at this M")
    args = ap.parse_args(argv)
    if (args.spec is None) != (args.seed_sd is None):
        ap.error("--spec and --seed-sd go together")
    if args.seed_sd is not None and args.seed_sd <= 0:
        ap.error(f"--seed-sd must be > 0, got {args.seed_sd}")
    if args.seeds:
        if args.testbeds or args.spec:
            ap.error("--seeds takes one TESTBED of its own; it does not combine with TESTBED folders or --spec")
        seed_noise(args.seeds, args.val_set, args.models.split(",") if args.models else None)
        return 0
    if args.models:
        ap.error("--models goes with --seeds")
    if not args.testbeds:
        ap.error("give TESTBED folders, or --seeds TESTBED")
    runs = ladder_runs(args.testbeds, args.val_set)
    forms = ("eq4", "eq3", "mult")
    fits = {f: fitted(f, runs) for f in forms}
    print(f"{len(runs)} sizes; in-sample relative error |fit - L| / L (%), every size fitted (L: mean over its seeds)")
    print(f"{'run (first seed seen)':34s} {'N':>8s} {'M':>6s} {'seeds':>5s} {'L':>7s}"
          + "".join(f" {f:>6s}" for f in forms))
    for i, r in enumerate(runs):
        errs = "".join(f" {100 * abs(fits[f][0][i] / r['L'] - 1):6.2f}" for f in forms)
        print(f"{r['name']:34s} {r['N']:8d} {r['M']:6.0f} {r['n']:5d} {r['L']:7.4f}{errs}")
    for f in forms:
        rel = 100 * np.abs(fits[f][0] / np.array([r["L"] for r in runs]) - 1)
        print(f"{f}: mean {rel.mean():.2f} %, max {rel.max():.2f} %; {fits[f][1]}")
    if args.slopes is not None:
        at_M = sorted((r for r in runs if abs(r["M"] / args.slopes - 1) < 0.05), key=lambda r: r["C"])
        print(f"\nslope of L - L* along M = {args.slopes:g} between neighbours, ln(x1/x2) / ln(C2/C1):")
        for r1, r2 in zip(at_M, at_M[1:]):
            x1, x2 = r1["L"] - r1["bayes"], r2["L"] - r2["bayes"]
            print(f"  {r1['name']} -> {r2['name']}: {np.log(x1 / x2) / np.log(r2['C'] / r1['C']):.3f}")
    if args.spec:
        seed_noise_spread(runs, args.spec, args.seed_sd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
