"""The chosen recipe refitted on every run it may use, and its predictive bands at targets.

Bands come from a bootstrap refitted by the recipe's own estimator (``lsq_log`` resamples keep
their 1/y² weights) times the fit's log residual scale, as ``scaling-jax fit`` makes them; a
Bayesian recipe's from its posterior predictive (fit noise and discrepancy included). Given a
discrepancy (``backtest --calibrate self``: learned from the sweep's own cuts), either is widened
by it at the targets' distance from the fit runs.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from scaling_jax.backtest.fits import LM_MAX_ITER, fit_rows, law_inputs
from scaling_jax.backtest.recipes import Recipe
from scaling_jax.backtest.score import Sweep
from scaling_jax.errors import UserError
from scaling_jax.laws import huber, predictive
from scaling_jax.laws.bayes.design import Support, log_cm, loss_distance
from scaling_jax.laws.bayes.predict import Bands
from scaling_jax.laws.bootstrap import bootstrap
from scaling_jax.laws.fit_report import interval_summary


@dataclasses.dataclass(frozen=True)
class ChosenFit:
    recipe: Recipe
    cut: float
    fit_idx: tuple[int, ...]
    params: dict[str, float]
    predictions: list[dict]  # {N, D, C, M, loss: {median, lo50, ..., hi95}}
    bootstrap: dict


def refit_and_predict(sweep: Sweep, recipe: Recipe, cut: float, targets: Sequence[dict], *, n_bootstrap: int = 200,
                      seed: int = 0, params: dict[str, float] | None = None, reason: str = "",
                      bayes_fit=None, discrepancy=None) -> ChosenFit:
    """Fit ``recipe`` on its runs of ``sweep`` at or below ``cut`` (or take ``params`` and, for a
    Bayesian recipe, ``bayes_fit``: that fit already made by the backtest's final row); bands at
    ``targets`` (dicts with N, D)."""
    mask = recipe.fit_mask(sweep.pts["N"], sweep.pts["D"], cut)
    if params is None and not reason:
        fits = fit_rows(sweep.pts, [recipe], mask[None].astype(float))
        params, reason, bayes_fit = fits.params[0], fits.reasons[0], fits.bayes[0]
    if params is None:
        raise UserError(f"{sweep.name}: the chosen recipe {recipe.name} cannot be refitted on the runs up to "
                        f"{cut:.3g} FLOPs: {reason}")
    idx = np.flatnonzero(mask)
    sub = {k: np.asarray(v)[idx] for k, v in sweep.pts.items()}
    xs, y = law_inputs(recipe.law, sub), sub["loss"]
    rows, bs_summary = [], {}
    T = {k: np.array([float(t[k]) for t in targets]) for k in ("N", "D")}
    dist = loss_distance(Support(log_cm(6.0 * sub["N"] * sub["D"], sub["D"] / sub["N"])), 6.0 * T["N"] * T["D"],
                         T["D"] / T["N"]) if targets else None
    if targets and recipe.estimator == "bayes":
        if discrepancy is not None:
            law = dataclasses.replace(bayes_fit.loss_law, discrepancy=discrepancy.take(len(bayes_fit.loss_law.E)))
            bayes_fit = dataclasses.replace(bayes_fit, loss_law=law)
        bands = bayes_fit.bands(C=6.0 * T["N"] * T["D"], M=T["D"] / T["N"])["loss"]
        for i, t in enumerate(targets):
            N, D = float(t["N"]), float(t["D"])
            rows.append({"N": N, "D": D, "C": 6.0 * N * D, "M": D / N, "loss": interval_summary(bands, i)})
        bs_summary = {"posterior_draws": int(len(bayes_fit.loss_law.E)),
                      "diagnostics": bayes_fit.posterior.diagnostics.to_dict()}
    elif targets:
        if n_bootstrap < 1:
            raise UserError("--predict needs a bootstrap for its bands: use --bootstrap > 0")
        starts = huber.bootstrap_starts(recipe.law, params) if recipe.estimator == "huber" else None
        is_huber = recipe.estimator == "huber"
        bs = bootstrap(recipe.law, xs, y, n_resamples=n_bootstrap, seed=seed, estimator="huber" if is_huber else "lm",
                       starts=starts, max_iter=None if is_huber else LM_MAX_ITER,  # L-BFGS: the library's cap
                       weights=1.0 / y**2 if recipe.estimator == "lsq_log" else None)
        bs_summary = bs.summary()
        if not bs.n_kept:
            raise UserError(f"{sweep.name}: no usable bootstrap resample of {n_bootstrap} to predict from")
        sigma = predictive.log_residual_scale(recipe.law, params, xs, y)
        draws = predictive.predictive_draws(bs, sigma, seed=seed, **law_inputs(recipe.law, T))
        if discrepancy is not None:
            draws = predictive.with_discrepancy(draws, discrepancy, dist, seed=seed + 2)
        bands = Bands.from_draws(draws)
        for i, t in enumerate(targets):
            N, D = float(t["N"]), float(t["D"])
            rows.append({"N": N, "D": D, "C": 6.0 * N * D, "M": D / N, "loss": interval_summary(bands, i)})
        bs_summary["log_residual_scale"] = sigma
    if discrepancy is not None:
        bs_summary["discrepancy"] = discrepancy.summary()
    return ChosenFit(recipe, cut, tuple(int(i) for i in idx), params, rows, bs_summary)
