"""Rolling-origin backtest: for every training set, recipe and cut (in compute or in model size),
fit the recipe on the runs at or below the cut (only those: the weight row is zero above it) and
score every run above it by its relative error, with its extrapolation distance in C and in M."""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from scaling_jax.backtest.cuts import below, distance
from scaling_jax.backtest.fits import fit_rows, law_inputs
from scaling_jax.backtest.recipes import Recipe
from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.laws.fit import predict


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One training set's runs: arrays N, D, loss (and error, when known), and a label per run;
    with per-task errors, ``pts["task_errors"]`` (runs, tasks) over ``tasks``, whose mean is ``error``;
    ``partial_suites``: run label -> the tasks its ``error`` lacks, where partial means were accepted."""

    name: str
    pts: Mapping[str, np.ndarray]
    labels: tuple[str, ...]
    tasks: tuple[str, ...] = ()
    partial_suites: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def C(self) -> np.ndarray:
        return 6.0 * self.pts["N"] * self.pts["D"]

    @property
    def M(self) -> np.ndarray:
        return self.pts["D"] / self.pts["N"]

    def __len__(self) -> int:
        return len(self.pts["loss"])


def sweep_from_points(name: str, pts: Mapping[str, np.ndarray], labels: Sequence[str] | None = None,
                      tasks: Sequence[str] = (), partial_suites: Mapping[str, tuple[str, ...]] | None = None) -> Sweep:
    """Check points for a backtest: finite and positive, at least two token multipliers."""
    pts = {k: np.asarray(v, np.float64) if k == "task_errors" else np.asarray(v, np.float64).ravel()
           for k, v in pts.items()}
    for k in ("N", "D", "loss"):
        if k not in pts:
            raise UserError(f"{name}: runs need a column {k!r}")
        v = pts[k]
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            raise UserError(f"{name}: run {bad[0]} has {k} = {float(v[bad[0]])!r}; values must be positive and finite")
    labels = tuple(labels) if labels is not None else tuple(f"row {i}" for i in range(len(pts["loss"])))
    if "task_errors" in pts and pts["task_errors"].shape != (len(pts["loss"]), len(tasks)):
        raise UserError(f"{name}: per-task errors of shape {pts['task_errors'].shape} for {len(pts['loss'])} runs "
                        f"and {len(tasks)} tasks")
    s = Sweep(name, pts, labels, tuple(tasks), dict(partial_suites or {}))
    if len(np.unique(np.round(np.log(s.M), 6))) < 2:
        raise UserError(f"{name}: every run has the same token multiplier M = {float(s.M[0]):g}; a backtest of "
                        "Eq. 3/4 needs runs at two or more multipliers")
    return s


@dataclasses.dataclass(frozen=True)
class CutResult:
    sweep: str
    recipe: Recipe
    cut: float
    role: str  # "selection" (scored up to the final cut only) or "final" (scored on every run above)
    status: str  # "ok", "skipped", "failed"
    reason: str
    fit_idx: tuple[int, ...]  # indices (into the sweep) of the runs fitted
    params: dict[str, float] | None
    scored: tuple[dict, ...]  # one per scored run
    fit: object = None  # a Bayesian recipe's BayesFit (its predictions are the posterior median)
    axis: str = "C"  # the cut's axis: compute (C) or model size (N); final cuts are compute cuts


def predict_loss(recipe: Recipe, params: dict, fit, pts: Mapping[str, np.ndarray]) -> np.ndarray:
    """A recipe's loss prediction at runs ``pts``: the law at ``params``, or for a Bayesian recipe
    the posterior median of the law's loss (over the parameter draws of ``fit``)."""
    xs = law_inputs(recipe.law, pts)
    if fit is None:
        return np.atleast_1d(predict(recipe.law, params, **xs))
    draws = {k: np.asarray(getattr(fit.loss_law, k))[:, None] for k in forms.law(recipe.law)[1]}
    return np.median(np.atleast_2d(predict(recipe.law, draws, **xs)), axis=0)


def scored_idx(sweep: Sweep, cut: float, upto: float, axis: str = "C") -> np.ndarray:
    """Runs a fit at ``cut`` (along ``axis``) is scored on: beyond the cut, at or below compute ``upto``."""
    N, D = sweep.pts["N"], sweep.pts["D"]
    return np.flatnonzero(~below(axis, N, D, cut) & below("C", N, D, upto))


def cut_distances(sweep: Sweep, idx: np.ndarray, cut: float, axis: str, fit_idx) -> dict[str, np.ndarray]:
    """Per run of ``idx``: ``distance`` past the cut along its axis (the selection weight) and
    ``log10_C_over_C0`` (C₀: the cut, or for a size cut the largest compute fitted)."""
    N, D, C = sweep.pts["N"][idx], sweep.pts["D"][idx], sweep.C
    C0 = cut if axis == "C" else float(np.max(C[np.asarray(fit_idx, int)])) if len(fit_idx) else np.nan
    return {"distance": distance(axis, N, D, cut), "log10_C_over_C0": np.log10(C[idx] / C0)}


def _score(sweep: Sweep, recipe: Recipe, params: dict, fit, cut: float, fit_idx: np.ndarray, upto: float,
           axis: str = "C") -> tuple:
    C, M = sweep.C, sweep.M
    idx = scored_idx(sweep, cut, upto, axis)
    if not idx.size:
        return ()
    sub = {k: v[idx] for k, v in sweep.pts.items()}
    pred = predict_loss(recipe, params, fit, sub)
    dist = cut_distances(sweep, idx, cut, axis, fit_idx)
    logMfit = np.log10(M[fit_idx])
    rows = []
    for j, i in enumerate(idx):
        true = float(sweep.pts["loss"][i])
        rows.append({"run": sweep.labels[i], "N": float(sweep.pts["N"][i]), "D": float(sweep.pts["D"][i]),
                     "C": float(C[i]), "M": float(M[i]), "loss": true, "pred": float(pred[j]),
                     "rel_err": abs(float(pred[j]) - true) / true * 100.0,
                     "log10_C_over_C0": float(dist["log10_C_over_C0"][j]), "distance": float(dist["distance"][j]),
                     "dlog10_M": float(np.min(np.abs(np.log10(M[i]) - logMfit)))})  # fmt: skip
    return tuple(rows)


def run_backtest(sweeps: Sequence[Sweep], recipes: Sequence[Recipe], cuts: Mapping[str, np.ndarray],
                 final_cuts: Mapping[str, float], axes: Mapping[str, str] | None = None) -> list[CutResult]:
    """Every (sweep, recipe, cut) of ``cuts[sweep]`` (selection cuts, along ``axes[sweep]``: "C" by
    default, "N" for size cuts) and ``final_cuts[sweep]`` (compute); the fits of all sweeps run
    together, one batched call per (law, solver)."""
    axes = axes or {}
    offsets = np.cumsum([0] + [len(s) for s in sweeps])
    pts = {k: np.concatenate([np.asarray(s.pts[k], np.float64) for s in sweeps]) for k in ("N", "D", "loss")}
    n = int(offsets[-1])
    rows, W, rec = [], [], []
    for s, off in zip(sweeps, offsets):
        plan = cut_plan(s, cuts, final_cuts, axes)
        for recipe in recipes:
            for cut, role, axis in plan:
                w = np.zeros(n)
                w[off:off + len(s)] = recipe.fit_mask(s.pts["N"], s.pts["D"], cut, axis, final_cuts[s.name])
                rows.append((s, off, recipe, cut, role, axis))
                W.append(w)
                rec.append(recipe)
    fits = fit_rows(pts, rec, np.array(W))
    out = []
    for (s, off, recipe, cut, role, axis), w, p, st, why, bf in zip(rows, W, fits.params, fits.status,
                                                                    fits.reasons, fits.bayes):
        fit_idx = np.flatnonzero(w[off:off + len(s)] > 0)
        upto = final_cuts[s.name] if role == "selection" else np.inf
        scored = _score(s, recipe, p, bf, cut, fit_idx, upto, axis) if p is not None else ()
        out.append(CutResult(s.name, recipe, cut, role, st, why, tuple(int(i) for i in fit_idx), p, scored, bf,
                             axis))
    return out


def cut_plan(sweep: Sweep, cuts: Mapping[str, np.ndarray], final_cuts: Mapping[str, float],
             axes: Mapping[str, str]) -> list[tuple[float, str, str]]:
    """(cut, role, axis) of ``sweep``: its selection cuts along their axis, then its final compute cut."""
    axis = axes.get(sweep.name, "C")
    return [(float(c), "selection", axis) for c in cuts.get(sweep.name, ())] + [
        (float(final_cuts[sweep.name]), "final", "C")]


def unfitted_errors(sweep: Sweep, result: CutResult) -> dict[int, float]:
    """Relative error (%) of ``result``'s fit at every run of ``sweep`` it did not fit, by run index
    (empty when it was not fitted). Held out are only the runs above the cut among them
    (:func:`above_cut`); the rest lie inside the range a backtest fitted or scored."""
    if result.params is None:
        return {}
    idx = np.setdiff1d(np.arange(len(sweep)), result.fit_idx)
    sub = {k: v[idx] for k, v in sweep.pts.items()}
    pred = predict_loss(result.recipe, result.params, result.fit, sub)
    err = np.abs(pred - sub["loss"]) / sub["loss"] * 100.0
    return {int(i): float(e) for i, e in zip(idx, err)}


def above_cut(sweep: Sweep, cut: float) -> np.ndarray:
    """Indices of the runs with C above ``cut``: no recipe fitted at ``cut`` saw them."""
    return np.flatnonzero(sweep.C > cut * (1 + 1e-9))
