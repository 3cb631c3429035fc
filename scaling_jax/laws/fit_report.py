"""The ``fit`` workflow as a library call: fit a law to points with one estimator, its intervals,
and predictive intervals at the targets a user asks about, as the ``fit.json`` body.

``lm`` and ``huber`` intervals come from a bootstrap refitted by the same estimator (plus the
residual scale, for predictions, and, when one is given, a calibrated discrepancy at the targets'
distance: ``--calibrate self``); ``bayes`` from the NumPyro posterior (plus fit noise and the
discrepancy). When the points carry downstream errors and the law is a loss law, the error
law (Eq. 5) is fitted too and predictions chain loss → error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.laws.bayes.predict import LEVELS, Bands

ESTIMATORS = ("lm", "huber", "bayes")
# Not converged: any R-hat above this, or more divergent transitions than this share of draws.
RHAT_FAIL = 1.05
DIVERGENCE_FAIL = 0.01

LAW_INPUTS = {
    # law -> (inputs from points, target column)
    "chinchilla": (lambda p: {"N": p["N"], "D": p["D"]}, "loss"),
    "overtrain": (lambda p: {"C": 6.0 * p["N"] * p["D"], "M": p["D"] / p["N"]}, "loss"),
    "error": (lambda p: {"L": p["loss"]}, "error"),
}


@dataclass
class FitReport:
    """The ``fit.json`` body, and what a caller needs beside it (the Bayesian fit, for files)."""

    body: dict
    converged: bool = True
    problems: list[str] = field(default_factory=list)
    bayes: object = None  # a laws.bayes.fit.BayesFit for estimator "bayes"
    targets: list[dict] = field(default_factory=list)


def interval_summary(bands: Bands, i: int) -> dict[str, float]:
    """``{median, lo50, hi50, lo90, hi90, lo95, hi95}`` of target ``i``, and ``undefined_share``
    where some draws made no prediction (Eq. 5 at Err <= 0: left out of the quantiles)."""
    out = {"median": float(bands.median[i])}
    for lv in LEVELS:
        out[f"lo{lv}"], out[f"hi{lv}"] = float(bands.lo[lv][i]), float(bands.hi[lv][i])
    if bands.undefined is not None and bands.undefined[i] > 0:
        out["undefined_share"] = float(bands.undefined[i])
    return out


def _prediction_rows(targets: Sequence[dict], draws: Mapping[str, np.ndarray]) -> list[dict]:
    bands = {k: Bands.from_draws(v) for k, v in draws.items()}
    return [{**t, **{k: interval_summary(b, i) for k, b in bands.items()}} for i, t in enumerate(targets)]


def _target_inputs(law: str, targets: Sequence[dict], keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The targets as the law's own inputs (``keys``: others, e.g. the (C, M) of Bayesian draws)."""
    keys = forms.law(law)[2] if keys is None else keys
    return {k: np.array([t[k] for t in targets], np.float64) for k in keys}


def fit_points(pts: Mapping[str, np.ndarray], law: str, estimator: str = "lm", *, n_bootstrap: int = 200,
               seed: int = 0, targets: Sequence[dict] = (), config=None, loss_discrepancy=None,
               error_discrepancy=None, calibration: dict | None = None) -> FitReport:
    """Fit ``law`` to ``pts`` (arrays N, D, loss[, error]) and predict at ``targets``
    (dicts with N, D, C, M, or L for the error law). Discrepancies (None: the prior's for
    ``bayes``, none for ``lm``/``huber``) widen the predictions; ``calibration`` says where they
    came from (fit.json's ``calibration``)."""
    if law not in LAW_INPUTS:
        raise UserError(f"--law {law!r}: one of {sorted(LAW_INPUTS)}")
    if estimator not in ESTIMATORS:
        raise UserError(f"--estimator {estimator!r}: one of {list(ESTIMATORS)}")
    if n_bootstrap < 0:
        raise UserError(f"--bootstrap: must be >= 0, got {n_bootstrap}")
    if law == "error" and "error" not in pts:
        raise UserError("--law error needs an error column (CSV) or downstream errors (testbed)")
    if estimator == "bayes":
        report = _fit_bayes(pts, law, seed, targets, config, loss_discrepancy, error_discrepancy)
    else:
        report = _fit_point(pts, law, estimator, n_bootstrap, seed, targets, loss_discrepancy, error_discrepancy)
    report.body["calibration"] = calibration or {"method": "prior" if estimator == "bayes" else "none"}
    return report


def _distances(kind: str, pts, law_inputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Targets' distances from the fit points along a discrepancy's axes: (C, M) for the loss
    laws, L (any leading draws axis) for Eq. 5."""
    from scaling_jax.laws.bayes.design import Support, error_distance, log_cm, loss_distance

    if kind == "error":
        return error_distance(Support(np.log(pts["loss"])[:, None]), law_inputs["L"])
    support = Support(log_cm(6.0 * pts["N"] * pts["D"], pts["D"] / pts["N"]))
    return loss_distance(support, law_inputs["C"], law_inputs["M"])


def _fit_point(pts, law, estimator, n_bootstrap, seed, targets, loss_disc=None, error_disc=None) -> FitReport:
    from scaling_jax.laws import huber, predictive
    from scaling_jax.laws.bootstrap import bootstrap
    from scaling_jax.laws.fit import fit_law

    if targets and n_bootstrap == 0:
        raise UserError(f"predictions from the {estimator} estimator come from its bootstrap: use --bootstrap > 0")
    make_inputs, target = LAW_INPUTS[law]
    inputs, y = make_inputs(pts), pts[target]
    fit = (huber.fit_huber if estimator == "huber" else fit_law)(law, inputs, y)
    body = fit.to_json(estimator)
    report = FitReport(body, targets=list(targets))
    if n_bootstrap == 0:
        return report
    # Resamples are refitted by the estimator that made the point estimate; Huber refits start
    # from its optimum (and a few grid corners) rather than the full grid.
    starts = huber.bootstrap_starts(law, fit.params) if estimator == "huber" else None
    bs = bootstrap(law, inputs, y, n_resamples=n_bootstrap, seed=seed, estimator=estimator, starts=starts)
    body["bootstrap"] = bs.summary()
    if bs.n_kept:
        body["bootstrap"]["intervals_95"] = {k: list(v) for k, v in bs.param_intervals(0.95).items()}
    if not targets:
        return report
    if not bs.n_kept:
        raise UserError(f"no usable bootstrap resample of {n_bootstrap} to predict from")
    sigma = predictive.log_residual_scale(law, fit.params, inputs, y)
    draws = {target: predictive.predictive_draws(bs, sigma, seed=seed, **_target_inputs(law, targets))}
    method = {target: {"estimator": estimator, "parameters": f"{estimator} bootstrap ({bs.n_kept} resamples)",
                       "noise": "log residual scale" if sigma is not None else "none: no residual degrees of freedom",
                       "log_residual_scale": sigma}}  # fmt: skip
    own_disc = error_disc if law == "error" else loss_disc
    if own_disc is not None:
        at = _target_inputs(law, targets, ("L",) if law == "error" else ("C", "M"))
        draws[target] = predictive.with_discrepancy(draws[target], own_disc, _distances(target, pts, at), seed=seed + 2)
        method[target]["discrepancy"] = own_disc.source
    if law != "error" and "error" in pts:
        # Eq. 5 has no Huber form: its fit and bootstrap are Levenberg–Marquardt's.
        e_inputs = {"L": pts["loss"]}
        e_fit = fit_law("error", e_inputs, pts["error"])
        e_bs = bootstrap("error", e_inputs, pts["error"], n_resamples=n_bootstrap, seed=seed + 1)
        e_sigma = predictive.log_residual_scale("error", e_fit.params, e_inputs, pts["error"])
        body["error_law"] = {"params": e_fit.params, "estimator": "lm", "bootstrap": e_bs.summary()}
        if e_bs.n_kept:
            draws["error"] = predictive.chained_error_draws(draws["loss"], e_bs, e_sigma, seed=seed + 1)
            method["error"] = {"estimator": "lm", "parameters": f"lm bootstrap ({e_bs.n_kept} resamples), "
                               "fed the loss draws", "log_residual_scale": e_sigma}  # fmt: skip
            if error_disc is not None:
                dist = _distances("error", pts, {"L": draws["loss"]})
                draws["error"] = predictive.with_discrepancy(draws["error"], error_disc, dist, seed=seed + 3)
                method["error"]["discrepancy"] = error_disc.source
    body["prediction_method"] = method
    body["predictions"] = _prediction_rows(targets, draws)
    return report


def _fit_bayes(pts, law, seed, targets, config, loss_discrepancy, error_discrepancy) -> FitReport:
    from scaling_jax.laws.bayes import ChinchillaData, ErrorData, LossData, NutsConfig
    from scaling_jax.laws.bayes.fit import fit_bayes

    config = config or NutsConfig(seed=seed)
    error = ErrorData(L=pts["loss"], Err=pts["error"]) if "error" in pts else None
    loss = None
    if law == "overtrain":
        loss = LossData(C=6.0 * pts["N"] * pts["D"], M=pts["D"] / pts["N"], L=pts["loss"])
    elif law == "chinchilla":
        loss = ChinchillaData(N=pts["N"], D=pts["D"], L=pts["loss"])
    fit = fit_bayes(law, loss=loss, error=error, config=config, loss_discrepancy=loss_discrepancy,
                    error_discrepancy=error_discrepancy)
    summary = fit.param_summary()
    d = fit.posterior.diagnostics
    n_draws = fit.posterior.num_draws
    problems = [f"R-hat {v:.3f} > {RHAT_FAIL} for {k!r}" for k, v in d.rhat.items() if v > RHAT_FAIL]
    if d.divergences > DIVERGENCE_FAIL * n_draws:
        problems.append(f"{d.divergences} divergent transitions of {n_draws} draws (> {DIVERGENCE_FAIL:.0%})")
    laws = {"loss": fit.loss_law, "error": fit.error_law}
    body = {
        "law": law,
        "estimator": "bayes",
        "params": {k: v["median"] for k, v in summary.items()},
        "intervals_95": {k: [v["lo95"], v["hi95"]] for k, v in summary.items()},
        "priors": fit.priors,
        "chained_error_law": law != "error" and error is not None,
        "discrepancy": {k: law_.discrepancy.summary() for k, law_ in laws.items() if law_ is not None},
        "diagnostics": {**d.to_dict(), "rhat": d.rhat, "ess": d.ess, "converged": not problems,
                        "problems": problems},
        "nuts": {"num_warmup": config.num_warmup, "num_samples": config.num_samples,
                 "num_chains": config.num_chains, "seed": config.seed,
                 "target_accept_prob": config.target_accept_prob},
    }  # fmt: skip
    if targets:
        keys = ("L",) if law == "error" else ("C", "M")
        draws = fit.draws(**_target_inputs(law, targets, keys), seed=config.seed)
        body["prediction_method"] = {k: {"estimator": "bayes", "parameters": f"posterior ({n_draws} draws)",
                                         "noise": "fit noise sigma and discrepancy at the target's distance"}
                                     for k in draws}  # fmt: skip
        body["predictions"] = _prediction_rows(targets, draws)
    return FitReport(body, converged=not problems, problems=problems, bayes=fit, targets=list(targets))
