"""Hindsight bound on the testbed: the best held-out loss error any recipe of a family could reach.

    python studies/backtest_recipes/hindsight_bound.py [--testbed ../shared/testbed] [--families all] [--out F.jsonl]

Issue 14 asks for a recipe, chosen by backtest alone, with a mean held-out relative loss error
≤ 1.0 % on each training set. This script asks the prior question: could *any* recipe of a family
get there, even one picked with the answers in hand? Every recipe is fitted at the paper's final
cut C0 (the largest Table-1 fit run; only runs with C ≤ C0 may be fitted, the design picks which)
and scored on every run of its set it did not fit. It peeks at the held-out answers on purpose, so
its numbers are bounds, never a way to choose a recipe (``scaling-jax backtest`` chooses).

Families (literature forms beyond the backtest's Eq. 3 / Eq. 4):
  ref       Eq. 4 and Eq. 3 in log least squares and log Huber (δ = 1e-3, Hoffmann et al. 2022)
  kaplan    L = E + ((A/N)^(α/β) + B/D)^β (Kaplan et al. 2020 with a floor)
  inter     L = E + A·N^−α + B·D^−β + G·N^−α·D^−β (an N–D interaction)
  weighted  Eq. 4 / Eq. 3 with point weights (C/C0)^w, w ∈ {0.5, 1}: forecasting's emphasis on the
            latest (largest) runs
  pooled    one exponent set shared by the three training sets (η, or α and β), per-set E, a, b;
            and with one E shared too
  fixed     Eq. 3 with α, β fixed at Hoffmann et al.'s (0.34, 0.28) or Besiroglu et al.'s
            (0.348, 0.366)
  nonembed  Eq. 4 / Eq. 3 with N = non-embedding parameters (Kaplan et al.; Pearce & Song 2024)

Each fit: the objective on a vectorised start grid, SciPy's trust-region least squares from the
best grid points (and the best per exponent combination), Huber fits also from the log least
squares optimum; the lowest objective wins. SciPy, not the package's JAX LM: this explores forms
the package does not hold, and speed does not matter here. About 25 minutes on 2 cores for all.
Printed per recipe and set: mean |pred − L| / L (%) over all held-out runs / those with M ≥ 6 /
the runs above C0 / the 6.9B M = 20 run.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.special import logsumexp

from scaling_jax.laws.huber import DELTA  # the package's Huber threshold in log loss

REPO = Path(__file__).resolve().parents[2]
LOG6 = np.log(6.0)
FAMILIES = ("ref", "kaplan", "inter", "weighted", "pooled", "fixed", "nonembed")


# ---------------------------------------------------------------- data
def load_sets(testbed: str) -> list[dict]:
    """Each training set's runs, as the backtest reads them, with C0 = the paper's final cut."""
    from scaling_jax.paper.backtest import final_cut_of, load_sweeps

    sweeps, tb = load_sweeps(testbed)
    nonembed_of = {r.name: float(r.params_no_embed) for r in tb.runs}
    out = []
    for s in sweeps:
        N, D, L = (np.asarray(s.pts[k], np.float64) for k in ("N", "D", "loss"))
        labels = list(s.labels)
        nonembed = np.array([nonembed_of[lab] for lab in labels])
        big = [i for i, lab in enumerate(labels) if lab.endswith("open_lm_7b-1.0")]
        out.append({"name": s.name, "N": N, "D": D, "L": L, "C": 6 * N * D, "M": D / N, "Nne": nonembed,
                    "C0": final_cut_of(s, tb, "paper"), "i_big": big[0] if big else None})
    return out


def design_mask(d: dict, design: str) -> np.ndarray:
    from scaling_jax.backtest.recipes import Recipe

    return Recipe("overtrain", "lsq", design).fit_mask(d["N"], d["D"], d["C0"])


# ---------------------------------------------------------------- law forms, as log L(t; logN, logD)
def f_eq4(t, x):
    logN, logD = x
    e, a, b, eta = t
    logC, logM = LOG6 + logN + logD, logD - logN
    return logsumexp(np.stack(np.broadcast_arrays(e, a + eta * (logM - logC), b - eta * (logM + logC))), axis=0)


def f_eq3(t, x):
    logN, logD = x
    e, a, b, al, be = t
    return logsumexp(np.stack(np.broadcast_arrays(e, a - al * logN, b - be * logD)), axis=0)


def f_kaplan(t, x):
    """t = (log E, (α/β)·log A, log B, α/β, β)."""
    logN, logD = x
    e, p, q, k, be = t
    inner = logsumexp(np.stack(np.broadcast_arrays(p - k * logN, q - logD)), axis=0)
    return logsumexp(np.stack(np.broadcast_arrays(e, be * inner)), axis=0)


def f_inter(t, x):
    """t = (log E, log A, log B, α, β, g) with G = g·A·B."""
    logN, logD = x
    e, a, b, al, be, g = t
    xa, yb = np.exp(a - al * logN), np.exp(b - be * logD)
    return np.log(np.maximum(np.exp(e) + xa + yb + g * xa * yb, 1e-6))


def fixed_eq3(al: float, be: float):
    return lambda t, x: f_eq3((t[0], t[1], t[2], al, be), x)


def _lin(lo, hi, n):
    return np.linspace(lo, hi, n)


GRIDS = {
    "eq4": [_lin(-1, 1.5, 6), _lin(0, 25, 11), _lin(0, 25, 11), _lin(0.02, 0.5, 9)],
    "eq3": [_lin(-1, 1.5, 6), _lin(0, 25, 9), _lin(0, 25, 9), _lin(0.1, 1.1, 6), _lin(0.1, 1.1, 6)],
    "kaplan": [_lin(-1, 1.5, 6), _lin(5, 40, 8), _lin(10, 35, 6), np.array([0.3, 0.6, 1, 1.5, 2.5]),
               np.array([0.05, 0.1, 0.2, 0.35, 0.5, 0.8])],
    "inter": [_lin(-1, 1.5, 6), _lin(0, 25, 9), _lin(0, 25, 9), _lin(0.1, 1.1, 6), _lin(0.1, 1.1, 6),
              np.array([-0.3, -0.1, 0.0, 0.1, 0.3])],
    "eq3fix": [_lin(-1, 1.5, 11), _lin(0, 25, 26), _lin(0, 25, 26)],
}
FORMS = {"eq4": f_eq4, "eq3": f_eq3, "kaplan": f_kaplan, "inter": f_inter}
EXP_DIMS = {"eq4": 1, "eq3": 2, "kaplan": 2, "inter": 3}  # trailing exponent-like grid dimensions


# ---------------------------------------------------------------- estimators
def _huber(r):
    a = np.abs(r)
    return np.where(a <= DELTA, 0.5 * r * r, DELTA * (a - 0.5 * DELTA))


def objective(est: str, logp, logy, w):
    if est == "loglsq":
        return 0.5 * np.sum(w * (logp - logy) ** 2, axis=-1)
    return np.sum(w * _huber(logp - logy), axis=-1)


def _huber_rho(w):
    """SciPy's ``loss`` for Σ w·huber(r): z = r² -> (ρ, ρ', ρ'') with ρ = 2·w·huber(√z)."""
    d2 = DELTA * DELTA

    def rho(z):
        out = np.empty((3, z.size))
        small = z <= d2
        sq = np.sqrt(np.maximum(z, 1e-300))
        out[0] = np.where(small, z, 2 * DELTA * sq - d2)
        out[1] = np.where(small, 1.0, DELTA / sq)
        out[2] = np.where(small, 0.0, -0.5 * DELTA / (sq * np.maximum(z, 1e-300)))
        return out * w
    return rho


def _polish(f, t0, x, y, w, est):
    logy = np.log(y)
    if est == "loglsq":
        sw = np.sqrt(w)
        res, kw = (lambda t: sw * (f(t, x) - logy)), {}
    else:
        res, kw = (lambda t: f(t, x) - logy), {"loss": _huber_rho(w), "f_scale": 1.0}
    try:
        with np.errstate(all="ignore"):
            t = least_squares(res, t0, method="trf", max_nfev=3000, x_scale="jac", **kw).x
    except (ValueError, np.linalg.LinAlgError):
        return None, np.inf
    obj = float(objective(est, f(t, x), logy, w))
    return (t, obj) if np.isfinite(obj) else (None, np.inf)


def fit(f, grid, x, y, w, est, top=24, exp_dims=0, extra_starts=()):
    """Lowest-objective local optimum from the grid's ``top`` points, the best grid point of each
    exponent combination and ``extra_starts``."""
    G = np.array(list(itertools.product(*grid)))
    logy = np.log(y)
    xs = tuple(v[None, :] for v in x)
    with np.errstate(all="ignore"):
        objs = np.concatenate([objective(est, f(tuple(c[:, j][:, None] for j in range(G.shape[1])), xs), logy, w)
                               for c in np.array_split(G, max(1, len(G) // 4000))])
    objs[~np.isfinite(objs)] = np.inf
    order = list(np.argsort(objs)[:top])
    if exp_dims:
        best_of = {}
        for i in np.argsort(objs):
            key = tuple(G[i, -exp_dims:])
            if np.isfinite(objs[i]) and key not in best_of:
                best_of[key] = i
        order += [i for i in best_of.values() if i not in order]
    best = (None, np.inf)
    for t0 in [G[i] for i in order] + [np.asarray(s, float) for s in extra_starts]:
        t, o = _polish(f, t0, x, y, w, est)
        if o < best[1]:
            best = (t, o)
    if est == "huber" and best[0] is not None:
        t, o = _polish(f, best[0], x, y, w, est)
        if o < best[1]:
            best = (t, o)
    return best


# ---------------------------------------------------------------- scoring
def score(d: dict, fitted: np.ndarray, logpred: np.ndarray) -> dict:
    err = np.abs(np.exp(logpred) - d["L"]) / d["L"] * 100
    held = ~fitted
    above = d["C"] > d["C0"] * (1 + 1e-9)
    return {"all": float(err[held].mean()), "m6": float(err[held & (d["M"] >= 6 * (1 - 1e-6))].mean()),
            "above": float(err[above].mean()), "big": float(err[d["i_big"]]) if d["i_big"] is not None else None,
            "n_held": int(held.sum()), "n_fit": int(fitted.sum())}


def _xs(d, nkey="N"):
    return np.log(d[nkey]), np.log(d["D"])


def single(sets, family, form, est, design, weight_w=0.0, nkey="N", grid=None) -> dict:
    """One recipe fitted to each set alone."""
    f = FORMS[form] if isinstance(form, str) else form
    g = grid or GRIDS[form]
    ed = EXP_DIMS.get(form, 0) if isinstance(form, str) else 0
    out = {}
    for d in sets:
        m = design_mask(d, design)
        xf = tuple(v[m] for v in _xs(d, nkey))
        w = (d["C"][m] / d["C0"]) ** weight_w
        extra = []
        if est == "huber":  # the log least-squares optimum as one more start
            tl, _ = fit(f, g, xf, d["L"][m], w, "loglsq", top=8, exp_dims=ed)
            extra = [tl] if tl is not None else []
        t, o = fit(f, g, xf, d["L"][m], w, est, exp_dims=ed, extra_starts=extra)
        out[d["name"]] = None if t is None else {**score(d, m, f(t, _xs(d, nkey))), "params": t.tolist(), "obj": o}
    return {"family": family, "est": est, "design": design, "res": out}


def pooled(sets, form, est, design, shared_E=False) -> dict:
    """Exponents shared by all sets, per-set E, a, b (or one E too): a profile over an exponent grid
    with per-set fits, then a joint polish from the best four grid points."""
    f, nexp = FORMS[form], (1 if form == "eq4" else 2)
    ms = [design_mask(d, design) for d in sets]
    xs = [tuple(v[m] for v in _xs(d)) for d, m in zip(sets, ms)]
    ys = [d["L"][m] for d, m in zip(sets, ms)]
    ws = [np.ones(int(m.sum())) for m in ms]
    K = len(sets)

    def full(t, k):
        if shared_E:
            e, (a, b) = t[nexp], t[nexp + 1 + 2 * k: nexp + 3 + 2 * k]
        else:
            e, a, b = t[nexp + 3 * k: nexp + 3 * k + 3]
        return np.concatenate([[e, a, b], t[:nexp]])

    def residuals(t):
        return np.concatenate([f(full(t, k), xs[k]) - np.log(ys[k]) for k in range(K)])

    egrid = ([(eta,) for eta in _lin(0.05, 0.5, 46)] if form == "eq4"
             else list(itertools.product(_lin(0.1, 1.2, 12), _lin(0.1, 1.2, 12))))
    sub_grid = [_lin(-1, 1.5, 6), _lin(0, 25, 11), _lin(0, 25, 11)]
    profile = []
    for ex in egrid:
        per = [fit(lambda t, x, ex=ex: f((t[0], t[1], t[2], *ex), x), sub_grid, xs[k], ys[k], ws[k], est,
                   top=3 if est == "loglsq" else 6) for k in range(K)]
        profile.append((sum(o for _, o in per), ex, [t for t, _ in per]))
    profile.sort(key=lambda p: p[0])
    best = (None, np.inf)
    kw = {} if est == "loglsq" else {"loss": _huber_rho(np.ones(sum(len(y) for y in ys))), "f_scale": 1.0}
    for tot, ex, per in profile[:4]:
        t0 = (np.concatenate([ex, [np.mean([p[0] for p in per])], *[p[1:] for p in per]]) if shared_E
              else np.concatenate([ex, *per]))
        with np.errstate(all="ignore"):
            t = least_squares(residuals, t0, method="trf", max_nfev=5000, x_scale="jac", **kw).x
        obj = float(sum(objective(est, f(full(t, k), xs[k]), np.log(ys[k]), ws[k]) for k in range(K)))
        if obj < best[1]:
            best = (t, obj)
        if not shared_E and tot < best[1]:
            best = (np.concatenate([ex, *per]), tot)
    t = best[0]
    res = {d["name"]: {**score(d, ms[k], f(full(t, k), _xs(d))), "params": full(t, k).tolist(), "obj": best[1]}
           for k, d in enumerate(sets)}
    return {"family": f"pooled {form}" + (" + shared E" if shared_E else ""), "est": est, "design": design,
            "res": res}


# ---------------------------------------------------------------- the families
def recipes(family: str):
    """(callable(sets) -> row) for every recipe of ``family``."""
    ests = ("loglsq", "huber")
    if family == "ref":
        for est, design in itertools.product(ests, ("all", "m10", "paper")):
            yield lambda s, est=est, design=design: single(s, "eq4", "eq4", est, design)
            if design != "paper":  # Eq. 3's five parameters on the 4-5 paper-design runs: not determined
                yield lambda s, est=est, design=design: single(s, "eq3", "eq3", est, design)
    elif family in ("kaplan", "inter"):
        label = {"kaplan": "Kaplan + floor", "inter": "Eq. 3 + G·N^-α·D^-β"}[family]
        for est, design in itertools.product(ests, ("all", "m10")):
            yield lambda s, est=est, design=design: single(s, label, family, est, design)
    elif family == "weighted":
        for w, est in itertools.product((0.5, 1.0), ests):
            for design in ("all", "m10", "paper"):
                yield lambda s, w=w, est=est, design=design: single(s, f"Eq. 4, w=(C/C0)^{w:g}", "eq4", est, design,
                                                                    weight_w=w)
            for design in ("all", "m10"):
                yield lambda s, w=w, est=est, design=design: single(s, f"Eq. 3, w=(C/C0)^{w:g}", "eq3", est, design,
                                                                    weight_w=w)
    elif family == "pooled":
        for est, design, form in itertools.product(ests, ("all", "m10", "paper"), ("eq4", "eq3")):
            yield lambda s, est=est, design=design, form=form: pooled(s, form, est, design)
        for est, design, form in itertools.product(ests, ("all", "m10"), ("eq4", "eq3")):
            yield lambda s, est=est, design=design, form=form: pooled(s, form, est, design, shared_E=True)
    elif family == "fixed":
        for name, (al, be) in (("Eq. 3, α,β = Hoffmann (.34, .28)", (0.34, 0.28)),
                               ("Eq. 3, α,β = Besiroglu (.348, .366)", (0.3478, 0.3658))):
            for est, design in itertools.product(ests, ("all", "m10", "paper")):
                yield lambda s, name=name, al=al, be=be, est=est, design=design: single(
                    s, name, fixed_eq3(al, be), est, design, grid=GRIDS["eq3fix"])
    elif family == "nonembed":
        for est in ests:
            for design in ("all", "m10", "paper"):
                yield lambda s, est=est, design=design: single(s, "Eq. 4, N = non-embedding", "eq4", est, design,
                                                               nkey="Nne")
            for design in ("all", "m10"):
                yield lambda s, est=est, design=design: single(s, "Eq. 3, N = non-embedding", "eq3", est, design,
                                                               nkey="Nne")


def row_text(r: dict, names: list[str]) -> str:
    def cell(v):
        if v is None:
            return "no fit"
        big = "—" if v["big"] is None else f"{v['big']:.2f}"
        return f"{v['all']:.2f} / {v['m6']:.2f} / {v['above']:.2f} / {big}"
    return f"| {r['family']} | {r['est']} | {r['design']} | " + " | ".join(cell(r["res"].get(n)) for n in names) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--testbed", default=str(REPO.parent / "shared" / "testbed"))
    ap.add_argument("--families", default="all", help=f"comma list of {', '.join(FAMILIES)}, or all")
    ap.add_argument("--out", default=None, help="also write every row (parameters included) as JSON lines")
    args = ap.parse_args()
    fams = FAMILIES if args.families == "all" else tuple(args.families.split(","))
    unknown = [f for f in fams if f not in FAMILIES]
    if unknown:
        sys.exit(f"--families: unknown {unknown}; choose from {list(FAMILIES)}")
    sets = load_sets(args.testbed)
    names = [d["name"] for d in sets]
    print("each cell: mean relative loss error (%) over all held-out runs / held-out M ≥ 6 / runs above C0 / "
          "the 6.9B M = 20 run")
    print("C0 per set: " + ", ".join(f"{d['name']} {d['C0']:.3g}" for d in sets))
    print("| family | estimator | design | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    rows, t0 = [], time.perf_counter()
    with open(args.out, "w") if args.out else contextlib.nullcontext() as out:
        for fam in fams:
            for make in recipes(fam):
                r = make(sets)
                rows.append(r)
                print(row_text(r, names), flush=True)
                if out:  # row by row, flushed: a 25-minute run keeps what it has finished
                    out.write(json.dumps(r) + "\n")
                    out.flush()
    worst = [(max(v["all"] if v else np.inf for v in r["res"].values()), r) for r in rows]
    w, r = min(worst, key=lambda p: p[0])
    print(f"\n{len(rows)} recipes in {time.perf_counter() - t0:.0f} s. Best worst-set mean (all held out): "
          f"{w:.2f} % ({r['family']} / {r['est']} / {r['design']}); per set best: "
          + ", ".join(f"{n} {min(x['res'][n]['all'] for x in rows if x['res'].get(n)):.2f} %" for n in names))
    print("≤ 1.0 % on every set: " + ("reached by " + ", ".join(f"{x['family']}/{x['est']}/{x['design']}"
                                                               for v, x in worst if v <= 1.0)
                                      if any(v <= 1.0 for v, _ in worst) else "no recipe"))


if __name__ == "__main__":
    main()
