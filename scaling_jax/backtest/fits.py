"""Fits of many (recipe, cut) rows at once: one compiled call per law form and solver.

Each row is a 0/1 weight vector over all points (the runs its recipe may fit at its cut); rows
of ``lsq`` and ``lsq_log`` recipes share one Levenberg–Marquardt call (``lsq_log`` rows carry
weights 1/y²), ``huber`` rows one L-BFGS call. Rows whose runs cannot pin the law are skipped
with the reason, never fitted.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Mapping, Sequence

import numpy as np

from scaling_jax.backtest.recipes import Recipe
from scaling_jax.laws import forms, huber
from scaling_jax.laws.fit import fit_own_rows
from scaling_jax.laws.fit_report import LAW_INPUTS
from scaling_jax.laws.points import design_problems


@dataclasses.dataclass(frozen=True)
class RowFits:
    """Per row: parameters (None when skipped or not converged), and why not."""

    params: list[dict[str, float] | None]  # a Bayesian row: the posterior medians, for the report
    status: list[str]  # "ok", "skipped" or "failed"
    reasons: list[str]
    bayes: list = dataclasses.field(default_factory=list)  # per row: the BayesFit of a Bayesian row, else None


def law_inputs(law: str, pts: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return LAW_INPUTS[law][0](pts)


# Iteration caps in a backtest. Every lane of a row runs until its slowest start stops, and a few
# starts always wander until the cap; the best start stops well before it (LM: ~50 steps). On the
# testbed's 324 (recipe, cut) rows LM caps of 100 and 400 gave the same converged rows and optima
# (a one-off comparison: `git log -p BENCHMARKS.md`). Huber rows (Levenberg–Marquardt on square-root Huber
# residuals) take 400: the best start needs ~100 steps, and at 200 one row of 96 stopped short.
LM_MAX_ITER = 100
HUBER_MAX_ITER = 400
# NUTS in a backtest: one run per (cut, set); 2 chains × 300 draws keep each near 12 s here
# (compilation is most of it) and the posterior median steady to well under the errors scored.
BAYES_NUTS = {"num_warmup": 300, "num_samples": 300, "num_chains": 2}


def huber_starts(law: str) -> np.ndarray:
    """Huber starts in a backtest: the bootstrap's 8 log-space grid corners (the full grid costs
    ~40 ms per start and row on 2 cores; backtests refit hundreds of rows)."""
    return huber.BOOTSTRAP_GRID[law]


def fit_rows(pts: Mapping[str, np.ndarray], recipes: Sequence[Recipe], W: np.ndarray) -> RowFits:
    """Fit row ``i`` of ``W`` (R, n) 0/1 with ``recipes[i]``; one batched call per (law, solver)."""
    W = np.asarray(W, np.float64)
    y = np.asarray(pts["loss"], np.float64)
    R = len(recipes)
    params: list = [None] * R
    status, reasons, bayes = ["ok"] * R, [""] * R, [None] * R
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(recipes):
        xs = law_inputs(r.law, pts)
        problems = design_problems(r.law, xs, W[i])
        n = int((W[i] > 0).sum())
        if n < r.n_params:
            problems = [f"{n} fit run(s) for {r.n_params} parameters"] + problems
        if problems:
            status[i], reasons[i] = "skipped", "; ".join(dict.fromkeys(problems))
            continue
        solver = r.estimator if r.estimator in ("huber", "bayes") else "lm"
        groups.setdefault((r.law, solver), []).append(i)
    for (law, solver), rows in groups.items():
        if solver == "bayes":
            for i in rows:
                params[i], bayes[i], status[i], reasons[i] = _fit_bayes_row(law, pts, W[i])
            continue
        names = forms.law(law)[1]
        xs, yr, Wr = _own_points(law_inputs(law, pts), y, W[rows])
        if solver == "lm":
            Wr = np.stack([w / yi**2 if recipes[i].estimator == "lsq_log" else w for i, w, yi in zip(rows, Wr, yr)])
            best, _ = fit_own_rows(law, xs, yr, Wr, max_iter=LM_MAX_ITER, rows_per_step=1)
            p, conv = np.asarray(best.params), np.asarray(best.converged)
        else:
            # A finite optimum counts: a few starts wander along flat valleys until the cap.
            p, _, conv = huber.fit_huber_rows(law, xs, yr, Wr, huber_starts(law), HUBER_MAX_ITER)
        for j, i in enumerate(rows):
            if conv[j] and np.all(np.isfinite(p[j])):
                params[i] = {k: float(v) for k, v in zip(names, p[j])}
            else:
                status[i], reasons[i] = "failed", "no start converged to a finite optimum"
    return RowFits(params, status, reasons, bayes)


def _own_points(xs: Mapping[str, np.ndarray], y: np.ndarray, W: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """Each row's fit runs only, as (R, n_max) inputs, losses and weights (short rows padded with
    weight-0 copies of their first run): a backtest's rows fit 10-30 of the 100+ runs they are given."""
    idx = [np.flatnonzero(w > 0) for w in W]
    n_max = max(len(i) for i in idx)
    take = np.stack([np.concatenate([i, np.full(n_max - len(i), i[0])]) for i in idx])
    Wr = np.take_along_axis(W, take, axis=1) * (np.arange(n_max) < np.array([len(i) for i in idx])[:, None])
    return {k: v[take] for k, v in xs.items()}, y[take], Wr


def _fit_bayes_row(law: str, pts: Mapping[str, np.ndarray], w: np.ndarray):
    """(posterior medians, BayesFit, status, reason) of NUTS on the runs with weight > 0."""
    from scaling_jax.laws.bayes import NutsConfig
    from scaling_jax.laws.bayes.chinchilla import ChinchillaData
    from scaling_jax.laws.bayes.fit import fit_bayes
    from scaling_jax.laws.bayes.models import LossData

    keep = w > 0
    N, D, L = (np.asarray(pts[k], np.float64)[keep] for k in ("N", "D", "loss"))
    data = LossData(C=6.0 * N * D, M=D / N, L=L) if law == "overtrain" else ChinchillaData(N=N, D=D, L=L)
    with warnings.catch_warnings():
        # Short chains: their R-hat is in the fit's diagnostics; a warning per cut is noise.
        warnings.simplefilter("ignore", RuntimeWarning)
        fit = fit_bayes(law, loss=data, config=NutsConfig(**BAYES_NUTS))
    draws = fit.posterior.samples
    medians = {k: float(np.median(draws[k])) for k in forms.law(law)[1]}
    if not all(np.isfinite(v) for v in medians.values()):
        return None, None, "failed", "the posterior has non-finite draws"
    return medians, fit, "ok", ""
