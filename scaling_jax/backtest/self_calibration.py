"""Self-calibrated discrepancy: how far a ladder's own law missed when it extrapolated inside the
ladder, used for the bands of targets beyond it (``--calibrate self``).

The discrepancy (see ``laws.bayes.discrepancy``) says how fast the law's misfit grows with the distance from
its fit points. Calibrated on *other* sweeps it describes their laws; here it is learned from the
ladder itself, by the backtest's rolling origin (``backtest.cuts``): at each cut (by
compute, or by model size on a small ladder), the law is fitted on the runs below the cut and
scored on every run above it. Each scored run gives a residual of ln y at its distance from the
cut's nearest fit run, and the cut's parameter spread (a bootstrap of the cut's fit, so the spread
is not counted as misfit) and run scatter. One cut's residuals share its fitted law's error, so
each cut is one group of :class:`Residuals` (one random slope per axis). No run above the ladder's
last run is ever fitted or scored: the targets of a forecast never inform its calibration.

The cut fits are least squares on relative residuals (Levenberg–Marquardt, every cut and every
bootstrap resample in one compiled call), not NUTS: the Bayesian fit's likelihood is on ln L, of
which relative residuals are the first-order form, and a sampler per cut would cost the ~10 s of
compilation each time for the same answer at the scale the residuals are read.

Which hyperprior the residuals update is the caller's: the weakly informative prior itself
(``self``; ``discrepancy.PRIOR_SCALES``, not widened, since a ladder has a few cuts where past
sweeps had hundreds of runs) or a calibration file's posterior (``self+FILE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scaling_jax.backtest.cuts import below, choose_cuts
from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.laws.bayes.design import Support, error_distance, log_cm, loss_distance
from scaling_jax.laws.bayes.discrepancy import Discrepancy, Residuals, calibrate
from scaling_jax.laws.bayes.hyperprior import HyperPrior
from scaling_jax.laws.bayes.infer import NutsConfig
from scaling_jax.laws.bootstrap import resample_weights
from scaling_jax.laws.fit import fit_batch, predict
from scaling_jax.laws.points import design_problems
from scaling_jax.laws.predictive import log_residual_scale

N_RESAMPLES = 64  # bootstrap resamples per cut: the spread of a cut's ln prediction to ~10 %
MAX_ITER = 100  # LM steps per start, as the backtest's (backtest.fits.LM_MAX_ITER)
CALIBRATE_NUTS = NutsConfig(num_warmup=500, num_samples=1000, num_chains=2, target_accept_prob=0.95)


@dataclass(frozen=True)
class CutResiduals:
    """The rolling-origin residuals of one law on a ladder, and how they were made."""

    kind: str  # "loss" or "error"
    residuals: Residuals | None  # None: no cut could be fitted and scored
    axis: str  # "C" or "N"
    cuts: tuple[float, ...]
    per_cut: tuple[dict, ...]  # {cut, n_fit, n_scored, status, median_abs_rel_err}

    def summary(self) -> dict:
        return {"cuts_by": {"C": "compute", "N": "size"}[self.axis], "cuts": list(self.cuts),
                "n_residuals": 0 if self.residuals is None else int(len(self.residuals.mu)),
                "per_cut": list(self.per_cut)}  # fmt: skip


@dataclass(frozen=True)
class SelfCalibration:
    """Discrepancies learned from the ladder (None where there were no residuals of that kind)."""

    loss: Discrepancy | None
    error: Discrepancy | None
    info: dict = field(default_factory=dict)  # per kind: CutResiduals.summary() and the hyperprior


def _cut_rows(law: str, xs: dict, y: np.ndarray, masks: list[np.ndarray], n_resamples: int, seed: int):
    """Point fit and bootstrap rows of every cut as one weight matrix over all points; rows a
    design cannot pin are dropped. Returns (W, owner, is_point) per row."""
    W, owner, is_point = [], [], []
    for c, m in enumerate(masks):
        idx = np.flatnonzero(m)
        point = np.zeros(len(y))
        point[idx] = 1.0
        rows = [point]
        if n_resamples:
            mult = resample_weights(len(idx), n_resamples, seed + c)
            for r in mult:
                w = np.zeros(len(y))
                w[idx] = r
                rows.append(w)
        for j, w in enumerate(rows):
            if not design_problems(law, xs, w):
                W.append(w)
                owner.append(c)
                is_point.append(j == 0)
    return np.array(W), np.array(owner), np.array(is_point)


def rolling_residuals(law: str, x: dict[str, np.ndarray], y: np.ndarray, N: np.ndarray, D: np.ndarray, *,
                      cuts_by: str = "auto", n_resamples: int = N_RESAMPLES, seed: int = 0) -> CutResiduals:
    """Residuals of ``law`` (``overtrain``/``chinchilla``: loss from its inputs ``x``; ``error``: Eq. 5
    from ``x = {"L": loss}``) at the ladder's own cuts along (N, D): fit below, score above."""
    N, D, y = (np.asarray(v, np.float64) for v in (N, D, y))
    C = 6.0 * N * D
    kind = "error" if law == "error" else "loss"
    axis, cuts = choose_cuts(N, C, float(C.max()), cuts_by)
    masks = [below(axis, N, D, c) for c in cuts]
    W, owner, is_point = _cut_rows(law, x, y, masks, n_resamples, seed)
    names = forms.law(law)[1]
    params = np.full((len(W), len(names)), np.nan)
    if len(W):
        # least squares on relative residuals: weights 1/y² (the ln-likelihood's first order)
        best, _ = fit_batch(law, x, y, W / y**2, max_iter=MAX_ITER)
        # A finite optimum counts, as in the backtest's fits: a flat direction (a task loss near its
        # floor) keeps LM's tolerance unmet after the fit has settled.
        ok = np.all(np.isfinite(best.params), axis=1) & np.isfinite(best.rss)
        params = np.where(ok[:, None], best.params, np.nan)
    parts, per_cut = [], []
    for c, (cut, m) in enumerate(zip(cuts, masks)):
        rows = np.flatnonzero(owner == c)
        point = rows[is_point[rows]]
        scored = np.flatnonzero(~m)
        info = {"cut": float(cut), "n_fit": int(m.sum()), "n_scored": int(scored.size)}
        if not point.size or not np.all(np.isfinite(params[point[0]])) or not scored.size:
            per_cut.append({**info, "status": "skipped: the law cannot be fitted at this cut"})
            continue
        p_hat = dict(zip(names, params[point[0]]))
        boot = params[rows[~is_point[rows]]]
        boot = boot[np.all(np.isfinite(boot), axis=1)]
        draws = boot if len(boot) >= 2 else params[point]
        at = {k: v[scored] for k, v in x.items()}
        with np.errstate(invalid="ignore", divide="ignore"):  # Eq. 5 draws at Err <= 0: no prediction (NaN)
            log_pred = np.log(predict(law, {k: draws[:, i][:, None] for i, k in enumerate(names)}, **at))
        sigma = log_residual_scale(law, p_hat, {k: v[m] for k, v in x.items()}, y[m]) or 0.0
        if kind == "loss":
            dist = loss_distance(Support(log_cm(C[m], D[m] / N[m])), C[scored], D[scored] / N[scored])
        else:
            dist = error_distance(Support(np.log(x["L"][m])[:, None]), x["L"][scored])
        finite = np.all(np.isfinite(log_pred), axis=1)
        if finite.sum() < 2:
            per_cut.append({**info, "status": "skipped: fewer than 2 refits predict the scored runs"})
            continue
        res = Residuals.from_draws(log_pred[finite], np.full(int(finite.sum()), sigma), y[scored], dist)
        parts.append(res)
        per_cut.append({**info, "status": "ok",
                        "median_abs_rel_err": float(np.median(np.abs(y[scored] / predict(law, p_hat, **at) - 1)))})
    return CutResiduals(kind, Residuals.concat(parts) if parts else None, axis, tuple(float(c) for c in cuts),
                        tuple(per_cut))


def hyperprior_for(kind: str, prior: Discrepancy | None) -> HyperPrior:
    """The hyperprior self-calibration updates: the weakly informative prior's own scales, or a
    calibration file's draws (``self+FILE``)."""
    return HyperPrior.default(kind) if prior is None else HyperPrior.from_draws(prior)


def self_calibrate(law: str, pts: dict[str, np.ndarray], *, cuts_by: str = "auto",
                   prior_loss: Discrepancy | None = None, prior_error: Discrepancy | None = None,
                   n_resamples: int = N_RESAMPLES, seed: int = 0,
                   config: NutsConfig = CALIBRATE_NUTS) -> SelfCalibration:
    """Learn the loss law's discrepancy (``law`` Eq. 4 or Eq. 3) and, where ``pts`` carry ``error``,
    Eq. 5's, from the ladder's own rolling-origin residuals. ``pts``: N, D, loss[, error]."""
    if law not in ("overtrain", "chinchilla", "error"):
        raise UserError(f"--calibrate self: no self-calibration for law {law!r}")
    N, D, L = (np.asarray(pts[k], np.float64) for k in ("N", "D", "loss"))
    out, info = {}, {}
    todo = []
    if law != "error":
        x = {"C": 6.0 * N * D, "M": D / N} if law == "overtrain" else {"N": N, "D": D}
        todo.append(("loss", law, x, L, prior_loss))
    if "error" in pts:
        todo.append(("error", "error", {"L": L}, np.asarray(pts["error"], np.float64), prior_error))
    for kind, form, x, y, prior in todo:
        try:
            cr = rolling_residuals(form, x, y, N, D, cuts_by=cuts_by, n_resamples=n_resamples, seed=seed)
        except UserError as e:
            raise UserError(f"--calibrate self: the {kind} law's ladder cannot be cut ({e})") from None
        hp = hyperprior_for(kind, prior)
        info[kind] = {**cr.summary(), "hyperprior": hp.describe()}
        if cr.residuals is None:
            why = (f"no cut of the ladder could fit the {kind} law and score a run above it "
                   f"({'; '.join(p['status'] for p in cr.per_cut)})")
            if kind == "loss" or law == "error":  # the law asked for: nothing to calibrate it with
                raise UserError(f"--calibrate self: {why}")
            # the chained error law beside a calibrated loss law: its bands keep their prior (or file)
            print(f"  --calibrate self: {why}; the error law keeps its {prior.source if prior else 'prior'}'s "
                  "discrepancy")
            info[kind]["status"] = f"not calibrated: {why}"
            out[kind] = prior
            continue
        label = (f"self: {len(cr.residuals.mu)} residuals of the ladder's own {info[kind]['cuts_by']} cuts "
                 f"({len(cr.cuts)})" + ("" if prior is None else f", prior {prior.source}"))
        out[kind] = calibrate(cr.residuals, kind, source=label, config=config, hyperprior=hp)
    return SelfCalibration(out.get("loss"), out.get("error"), info)
