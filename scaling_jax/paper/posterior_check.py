"""Check Bayesian bands on a testbed: fit each training set on the paper's Table-1 points,
then ask whether every other model's measured loss and 17-task error lie inside the bands.

The bands' discrepancy (the law's misfit beyond its fit points) is either its prior or
calibrated on the held-out runs of the *other* training sets (leave one set out): a user
with a past sweep and five cheap runs of a new one is in the second situation. Both are
scored.

The LM bootstrap of the point fitter is scored on the same held-out models, and the
hierarchical fit (η pooled across sets) against the independent fits, with the full
Table-1 design and with one fit point fewer per set.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from scaling_jax.laws.bayes import (
    Bands,
    Discrepancy,
    ErrorData,
    ErrorLaw,
    LossData,
    LossLaw,
    NutsConfig,
    PooledLossData,
    Posterior,
    Residuals,
    calibrate,
    chained_error_draws,
    hierarchical_loss_model,
    independent_loss_model,
    loss_draws,
    run_nuts,
)  # fmt: skip
from scaling_jax.laws.bayes.design import error_distance, loss_distance
from scaling_jax.laws.bayes.fit import fit_bayes
from scaling_jax.laws.bayes.predict import LEVELS
from scaling_jax.paper import recipe
from scaling_jax.testbed import RunRecord, Testbed

VAL = recipe.LOSS_VAL_SET
M_MIN_RELIABLE = 10.0  # the paper finds Eq. 4 breaks at M = 5; coverage is also reported without it
# "Fewer points" design for the pooling comparison: Table 1 without its largest-compute run.
DROPPED_FOR_FEWER = ("d=1024_l=24_h=8", 20.0)


def loss_data(runs) -> LossData:
    return LossData(C=[r.C for r in runs], M=[r.M for r in runs], L=[r.loss(VAL) for r in runs])


def error_data(runs) -> ErrorData:
    return ErrorData(L=[r.loss(VAL) for r in runs], Err=[r.err_17 for r in runs])



def band_stats(bands: Bands, y: np.ndarray, M: np.ndarray, beyond: np.ndarray | None = None) -> dict:
    """Coverage per level, median 95 % width and median |error| (relative to the measured y),
    on all held-out models and on those with M >= 10 (and, given ``beyond``, on those beyond the
    ladder a self-calibration read: no calibration cut fitted or scored them); the share of draws
    that made no prediction (``undefined_share``, mean and max over the models)."""

    def stats(sel):
        w = (bands.hi[95] - bands.lo[95])[sel] / y[sel]
        return {
            "coverage": {str(lv): float(np.mean(bands.covers(y, lv)[sel])) for lv in LEVELS},
            "median_width_95": float(np.median(w)),
            "median_abs_err": float(np.median(np.abs(bands.median - y)[sel] / y[sel])),
            "n_heldout": int(np.sum(sel)),
        }

    out = stats(np.ones(len(y), bool))
    out["m_ge_10"] = stats(M >= M_MIN_RELIABLE * (1 - 1e-6))
    if beyond is not None and np.any(beyond):
        out["beyond_ladder"] = stats(np.asarray(beyond, bool))
    if bands.undefined is not None:  # draws left out of the bands: Eq. 5 at Err <= 0 (laws.bayes.predict)
        out["undefined_share"] = {"mean": float(np.mean(bands.undefined)), "max": float(np.max(bands.undefined))}
    return out


@dataclass(frozen=True)
class SetFit:
    """One training set's chained posterior on its Table-1 points and its held-out runs."""

    dataset: str
    posterior: Posterior
    loss_data: LossData
    error_data: ErrorData
    loss_heldout: tuple[RunRecord, ...]
    error_heldout: tuple[RunRecord, ...]

    def laws(self, loss_disc: Discrepancy | None = None, error_disc: Discrepancy | None = None):
        """Eq. 4 and Eq. 5 with the given discrepancies (the priors' where None)."""
        s = self.posterior.samples
        return (LossLaw.from_samples(s, self.loss_data.support, loss_disc),
                ErrorLaw.from_samples(s, self.error_data.support, error_disc))  # fmt: skip

    @cached_property  # each set is a calibration source for every other set
    def residuals(self) -> tuple[Residuals, Residuals]:
        """Held-out loss and error residuals of this set, for calibrating other sets' bands.
        The error law is scored at each held-out run's measured loss."""
        ll, el = self.laws()
        C, M = np.array([r.C for r in self.loss_heldout]), np.array([r.M for r in self.loss_heldout])
        loss = Residuals.from_draws(ll.log_law(C, M), ll.sigma, [r.loss(VAL) for r in self.loss_heldout],
                                    loss_distance(ll.support, C, M))
        L = np.array([r.loss(VAL) for r in self.error_heldout])
        error = Residuals.from_draws(el.log_law(L), el.sigma,
                                     [r.err_17 for r in self.error_heldout], error_distance(el.support, L))
        return loss, error


def ladder_points(tb: Testbed, dataset: str, fit_runs, error: bool = False) -> dict[str, np.ndarray]:
    """The runs of ``dataset`` a user had when fitting ``fit_runs``: every one at or below their
    largest compute (the ladder a self-calibration cuts); with ``error``, those with err_17."""
    cut = max(r.C for r in fit_runs)
    runs = [r for r in tb.select(dataset=dataset).runs
            if r.C <= cut * (1 + 1e-9) and (not error or r.err_17 is not None)]
    pts = {"N": np.array([r.N for r in runs]), "D": np.array([r.D for r in runs]),
           "loss": np.array([r.loss(VAL) for r in runs])}
    if error:
        pts["error"] = np.array([r.err_17 for r in runs])
    return pts


@dataclass(frozen=True)
class SelfCalibrated:
    """A set's discrepancies learned from its own ladder, what they were learned from, and the
    compute at or below which runs were read (held-out runs above it are beyond the ladder)."""

    loss: Discrepancy
    error: Discrepancy
    info: dict
    loss_cut: float
    error_cut: float


def self_calibrate_set(tb: Testbed, fit: "SetFit", prior: tuple[Discrepancy | None, Discrepancy | None] = (None, None),
                       seed: int = 0) -> SelfCalibrated:
    """``--calibrate self`` for one training set: Eq. 4's discrepancy from the rolling-origin
    residuals of the runs up to Table 1's loss-fit compute, Eq. 5's from those up to its error-fit
    compute (``prior``: a calibration file's discrepancies to update instead of the prior's)."""
    from scaling_jax.backtest.self_calibration import self_calibrate

    lr, er = recipe.loss_fit_runs(tb, fit.dataset), recipe.error_fit_runs(tb, fit.dataset)
    loss = self_calibrate("overtrain", ladder_points(tb, fit.dataset, lr), prior_loss=prior[0], seed=seed)
    error = self_calibrate("error", ladder_points(tb, fit.dataset, er, error=True), prior_error=prior[1], seed=seed)
    return SelfCalibrated(loss.loss, error.error, {"loss": loss.info["loss"], "error": error.info["error"]},
                          max(r.C for r in lr), max(r.C for r in er))


def fit_set(tb: Testbed, dataset: str, config: NutsConfig) -> SetFit:
    lr, er = recipe.loss_fit_runs(tb, dataset), recipe.error_fit_runs(tb, dataset)
    ld, ed = loss_data(lr), error_data(er)
    post = fit_bayes("overtrain", loss=ld, error=ed, config=config).posterior
    fit_l, fit_e = {r.name for r in lr}, {r.name for r in er}
    runs = sorted(tb.select(dataset=dataset).runs, key=lambda r: (r.N, r.M))
    lh = tuple(r for r in runs if r.name not in fit_l)
    eh = tuple(r for r in runs if r.name not in fit_e and r.err_17 is not None)
    return SetFit(dataset, post, ld, ed, lh, eh)


def calibrate_from(fits: dict[str, SetFit], target: str | None,
                   config: NutsConfig) -> tuple[Discrepancy, Discrepancy] | None:
    """Loss and error discrepancies learned from the held-out runs of every set but
    ``target`` (leave one set out, so the target's own held-out runs never inform its bands),
    or of every set when ``target`` is None (the calibration to save for a new sweep);
    None when there is no such set."""
    sources = sorted(ds for ds in fits if ds != target)
    if not sources:
        return None
    parts = [fits[ds].residuals for ds in sources]
    label = "held-out runs of " + ", ".join(sources)
    return (calibrate(Residuals.concat(p[0] for p in parts), "loss", source=label, config=config),
            calibrate(Residuals.concat(p[1] for p in parts), "error", source=label, config=config))  # fmt: skip


@dataclass(frozen=True)
class SetCheck:
    """One training set: its fit, its laws, and held-out draws for plots and JSON."""

    fit: SetFit
    loss_law: LossLaw
    error_law: ErrorLaw
    loss_draws: np.ndarray  # (draws, len(fit.loss_heldout))
    error_draws: np.ndarray
    bootstrap_draws: np.ndarray  # (kept resamples, len(fit.loss_heldout))
    summary: dict  # the posterior.json block of this set

    @property
    def dataset(self) -> str:
        return self.fit.dataset


def _bootstrap_bands(lr, heldout, n_resamples: int, seed: int) -> tuple[Bands, np.ndarray, dict]:
    """The LM baseline's bands at ``heldout``, made as ``fit --estimator lm`` makes its
    predictive draws: bootstrap refits times the fit's log residual scale (a new run's scatter
    about the law), so the comparison is with what a point-fitter user gets."""
    from scaling_jax.laws import predictive
    from scaling_jax.laws.bootstrap import bootstrap
    from scaling_jax.laws.fit import fit_law

    inputs = {"C": [r.C for r in lr], "M": [r.M for r in lr]}
    y = [r.loss(VAL) for r in lr]
    point = fit_law("overtrain", inputs, y)
    bs = bootstrap("overtrain", inputs, y, n_resamples=n_resamples, seed=seed)
    sigma = predictive.log_residual_scale("overtrain", point.params, inputs, y)
    C, M = np.array([r.C for r in heldout]), np.array([r.M for r in heldout])
    draws = predictive.predictive_draws(bs, sigma, seed=seed, C=C, M=M)
    b = Bands.from_draws(draws)
    # The bootstrap's centre is the LM point fit, as a user of the point fitter would report it.
    return Bands(median=point.predict(C=C, M=M), lo=b.lo, hi=b.hi), draws, {**bs.summary(), "log_residual_scale": sigma}


def check_set(tb: Testbed, fit: SetFit, config: NutsConfig, n_bootstrap: int = 1000,
              calibrated: tuple[Discrepancy, Discrepancy] | None = None,
              ladder_cuts: tuple[float, float] | None = None) -> SetCheck:
    """Score the bands of ``fit`` on its held-out runs: with ``calibrated`` discrepancies
    (the headline "loss"/"error" blocks) when given, and always with the priors' ones. With
    ``ladder_cuts`` (the loss and error ladders' compute of a self-calibration), also on the
    held-out runs above them alone: the runs no calibration cut saw."""
    lh, eh = fit.loss_heldout, fit.error_heldout
    lC, lM = np.array([r.C for r in lh]), np.array([r.M for r in lh])
    eC, eM = np.array([r.C for r in eh]), np.array([r.M for r in eh])
    y_l, y_e = np.array([r.loss(VAL) for r in lh]), np.array([r.err_17 for r in eh])
    lb_, eb_ = (None, None) if ladder_cuts is None else (lC > ladder_cuts[0] * (1 + 1e-9),
                                                         eC > ladder_cuts[1] * (1 + 1e-9))

    def score(ll, el):
        ld_draws = loss_draws(ll, lC, lM, seed=config.seed)
        ed_draws = chained_error_draws(ll, el, eC, eM, seed=config.seed + 7)
        return ld_draws, ed_draws, Bands.from_draws(ld_draws), Bands.from_draws(ed_draws)

    prior_laws = fit.laws()
    ll, el = fit.laws(*calibrated) if calibrated else prior_laws
    ld_draws, ed_draws, lb, eb = score(ll, el)
    summary = {"loss": band_stats(lb, y_l, lM, lb_), "error": band_stats(eb, y_e, eM, eb_)}
    if calibrated:
        _, _, plb, peb = score(*prior_laws)
        summary |= {"loss_prior_discrepancy": band_stats(plb, y_l, lM, lb_),
                    "error_prior_discrepancy": band_stats(peb, y_e, eM, eb_)}
    table1 = recipe.loss_fit_runs(tb, fit.dataset)
    bb, b_draws, b_summary = _bootstrap_bands(table1, lh, n_bootstrap, config.seed)
    summary |= {
        "bootstrap_loss": {**band_stats(bb, y_l, lM, lb_), "resamples": b_summary},
        "discrepancy": {"loss": ll.discrepancy.summary(), "error": el.discrepancy.summary()},
        "diagnostics": fit.posterior.diagnostics.to_dict(),
        "targets": _target_rows(lh, lb, y_l, eh, eb, y_e),
    }
    return SetCheck(fit, ll, el, ld_draws, ed_draws, b_draws, summary)


def _target_rows(lh, lb: Bands, y_l, eh, eb: Bands, y_e) -> list[dict]:
    err_index = {r.name: i for i, r in enumerate(eh)}
    rows = []
    for i, r in enumerate(lh):
        row = {"model": r.model, "N": r.N, "M": round(r.M, 6), "loss_true": float(y_l[i]),
               "loss_quantiles": {k: v[i] for k, v in lb.to_dict().items()}}
        j = err_index.get(r.name)
        if j is not None:
            row["error_true"] = float(y_e[j])
            row["error_quantiles"] = {k: v[j] for k, v in eb.to_dict().items()}
        rows.append(row)
    return rows


def pooling_comparison(tb: Testbed, datasets, config: NutsConfig,
                       discrepancy: dict[str, Discrepancy] | None = None) -> dict:
    """Hierarchical (η pooled) vs independent Eq. 4 fits, scored on the same held-out models
    (those outside Table 1), with the full Table-1 design and with DROPPED_FOR_FEWER removed.

    The independent fit is the hierarchical model without pooling (``independent_loss_model``:
    each η_s ~ Beta(2, 6), as η̄'s prior), not the single-set ``loss_model``, whose implied prior
    on η differs: the comparison then changes pooling alone. ``discrepancy`` (per set; the
    prior's where missing) is applied to both fits alike.
    """
    discrepancy = discrepancy or {}
    datasets = list(datasets)
    designs = {
        "table1": {ds: recipe.loss_fit_runs(tb, ds) for ds in datasets},
        "fewer": {ds: tuple(r for r in recipe.loss_fit_runs(tb, ds)
                            if (r.model, round(r.M)) != DROPPED_FOR_FEWER) for ds in datasets},
    }  # fmt: skip
    out = {}
    for design, fit_runs in designs.items():
        data = {ds: loss_data(fit_runs[ds]) for ds in datasets}
        sets = PooledLossData(tuple(data[ds] for ds in datasets))
        fits = {"hierarchical": run_nuts(hierarchical_loss_model, sets, config=config),
                "independent": run_nuts(independent_loss_model, sets, config=config)}
        out[design] = {"n_fit_points_per_set": len(next(iter(fit_runs.values()))),
                       "hierarchical": {}, "independent": {},
                       "independent_model": "hierarchical_loss_model without pooling: eta_s ~ Beta(2, 6) per set",
                       **{f"{name}_diagnostics": f.diagnostics.to_dict() for name, f in fits.items()}}
        for s, ds in enumerate(datasets):
            fit_names = {x.name for x in designs["table1"][ds]}
            held = [r for r in tb.select(dataset=ds).runs if r.name not in fit_names]
            C, M = np.array([r.C for r in held]), np.array([r.M for r in held])
            y = np.array([r.loss(VAL) for r in held])
            for name, f in fits.items():
                law = LossLaw.from_samples(f.samples, data[ds].support, discrepancy.get(ds), index=s)
                out[design][name][ds] = band_stats(Bands.from_draws(loss_draws(law, C, M, seed=config.seed)), y, M)
        for name, f in fits.items():
            eta = f.samples["eta"]
            out[design][f"{name}_eta"] = {ds: [float(np.percentile(eta[:, s], q)) for q in (2.5, 50, 97.5)]
                                          for s, ds in enumerate(datasets)}
    return out
