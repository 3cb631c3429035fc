"""``fit --law downstream`` as a library call: a route fitted on a ladder's per-task points, its
forecasts at (N, D) targets (and from measured losses, step 2 alone) as the ``fit.json`` body, and a
figure per task (both steps' laws, the fit runs, the band and the targets).

``calibrate="self"`` (Bayesian fits) learns the discrepancies from the ladder's own rolling-origin
residuals (``backtest.self_calibration``): step 1's from every intermediate's law (each task's loss
law, the intermediates' cuts pooled as groups of one calibration), step 2's from Eq. 5 fitted to
each task's (loss, error) pairs on the same cuts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws.bayes.predict import Bands
from scaling_jax.laws.downstream import MEAN, DownstreamFit, Route, fit_downstream, layout, to_targets
from scaling_jax.laws.fit_report import interval_summary
from scaling_jax.testbed.task_points import TaskPoints


def self_discrepancies(points: TaskPoints, route: Route, cuts_by: str = "auto", seed: int = 0) -> tuple[dict, dict]:
    """Loss and error discrepancies learned from the ladder's own cuts (``--calibrate self``) for the
    route's intermediates and outputs, and what was used (for fit.json)."""
    from scaling_jax.backtest.self_calibration import CALIBRATE_NUTS, hyperprior_for, rolling_residuals
    from scaling_jax.laws.bayes.discrepancy import Residuals, calibrate

    lay = layout(points, route)
    x1 = {"N": points.N, "D": points.D} if route.law1 == "chinchilla" else {"C": points.C, "M": points.M}
    todo = {"loss": [(route.law1, x1, lay.inter[:, k]) for k in range(len(lay.names))],
            "error": [("error", {"L": lay.inter[:, s]}, 1.0 - lay.acc[:, t]) for t, s in enumerate(lay.source)]}
    out, info = {}, {}
    for kind, fits in todo.items():
        parts, per = [], []
        for law, x, y in fits:
            if kind == "error" and np.any(y <= 0):
                continue  # an accuracy of 1 has no ln error
            try:
                cr = rolling_residuals(law, x, np.asarray(y, np.float64), points.N, points.D, cuts_by=cuts_by,
                                       seed=seed)
            except UserError as e:
                raise UserError(f"--calibrate self: the ladder cannot be cut ({e})") from None
            per.append(cr.summary())
            if cr.residuals is not None:
                parts.append(cr.residuals)
        if not parts:
            raise UserError(f"--calibrate self: no cut of the ladder could fit the {kind} law and score a run above it")
        res = Residuals.concat(parts)
        hp = hyperprior_for(kind, None)
        label = f"self: {len(res.mu)} residuals of the ladder's own cuts, {len(fits)} law(s) pooled"
        out[kind] = calibrate(res, kind, source=label, config=CALIBRATE_NUTS, hyperprior=hp)
        info[kind] = {"source": label, "hyperprior": hp.describe(), "laws": per}
    return out, info


def _summary(draws_D: np.ndarray) -> dict:
    return interval_summary(Bands.from_draws(np.asarray(draws_D)[:, None]), 0)


def prediction_rows(fit: DownstreamFit, targets: Sequence[dict], draws: Mapping[str, np.ndarray],
                    given: Sequence[dict] | None = None) -> list[dict]:
    """``predictions[]`` of fit.json from predictive draws at ``targets`` (or, step 2 alone, at the
    measured losses ``given``): per task accuracy and its intermediate, the task mean."""
    rows = []
    names = [s.name for s in fit.step1]
    for i, t in enumerate(targets if given is None else given):
        row = dict(t)
        tasks = {}
        for j, s in enumerate(fit.step2):
            if s.task == MEAN:
                continue
            entry = {"accuracy": _summary(draws["accuracy"][:, i, j])}
            if names[s.source].startswith("task_loss:"):
                entry["task_loss"] = (_summary(draws["intermediate"][:, i, s.source]) if given is None
                                      else {"given": float(t[names[s.source]])})
            tasks[s.task] = entry
        row["tasks"] = tasks
        if given is None and "loss" in names:
            row["loss"] = _summary(draws["intermediate"][:, i, names.index("loss")])
        mean = draws["accuracy"][:, i, :].mean(axis=-1)
        row["mean_accuracy"] = _summary(mean)
        row["mean_error"] = _summary(1.0 - mean)
        rows.append(row)
    return rows


def prediction_method(fit: DownstreamFit) -> dict:
    if fit.estimator == "bayes":
        return {"estimator": "bayes", "parameters": f"posterior ({fit.n_draws} draws)",
                "noise": "each step's fit noise and discrepancy at the target's distance (step 1 on ln loss along "
                         "ln C and ln M; step 2 on ln(1 - accuracy) along ln loss)",
                "chaining": "every draw feeds its step-1 loss draw through its step-2 law"}
    b = fit.info["bootstrap"]
    return {"estimator": fit.estimator, "parameters": f"{fit.estimator} bootstrap ({b['n_kept']} resamples of the "
                                                      "runs, both steps and every task refitted on each)",
            "noise": "step 1: the log residual scale of its fit; step 2: the residual sd of its fit in accuracy",
            "chaining": "every resample's step-1 loss draw is fed through the same resample's step-2 law"}


def downstream_body(points: TaskPoints, fit: DownstreamFit, targets: Sequence[dict] = (),
                    given: Sequence[dict] = (), *, seed: int = 0, calibration: dict | None = None) -> dict:
    """The ``fit.json`` body of a downstream fit."""
    body = {
        "law": "downstream", **fit.route.to_json(), "estimator": fit.estimator, "metric": points.metric,
        "tasks": list(points.tasks), "outputs": list(fit.outputs),
        "intermediates": [s.name for s in fit.step1],
        "chance": dict(zip(points.tasks, map(float, points.chance))),
        "ceiling": dict(zip(points.tasks, map(float, points.ceiling))),
        "n_runs": len(points), "runs": list(points.labels), "source": points.source,
        "params": fit.point_params(),
        "priors": fit.info.get("priors", "none: point estimates (their intervals from the bootstrap)"),
        "anchor_rule": _anchor_rule(fit),
    }
    for key in ("bootstrap", "nuts", "diagnostics", "discrepancy"):
        if key in fit.info:
            body[key] = fit.info[key]
    if calibration is not None:
        body["calibrate"] = calibration
    body["prediction_method"] = prediction_method(fit)
    rows = []
    if targets:
        N, D = to_targets(targets)
        rows += prediction_rows(fit, targets, fit.draws(N, D, seed=seed))
    if given:
        names = [s.name for s in fit.step1]
        x = np.array([[g[k] for k in names] for g in given], np.float64)
        acc = fit.accuracy_draws(x, seed=seed)
        rows += prediction_rows(fit, (), {"accuracy": acc}, given=given)
    body["predictions"] = rows
    return body


def _anchor_rule(fit: DownstreamFit) -> str | None:
    if fit.route.step2 != "sigmoid":
        return None
    how = {"constraint": "accuracy at loss 0 equals the ceiling exactly (a = (ceiling - chance)/sigmoid(k*L0))",
           "prior": ("a prior: accuracy at loss 0 ~ Normal(ceiling, 0.05) truncated to (chance, 1)"
                     if fit.estimator == "bayes" else "the point (loss 0, ceiling) added to the fit as one run"),
           "none": "no anchor"}
    return how[fit.route.anchor]


def fit_report(points: TaskPoints, route: Route, estimator: str, *, targets: Sequence[dict] = (),
               given: Sequence[dict] = (), n_bootstrap: int = 200, seed: int = 0, config=None,
               calibrate: str | None = None, cuts_by: str = "auto") -> tuple[DownstreamFit, dict]:
    """Fit and report (``calibrate``: ``self`` for self-calibrated Bayesian discrepancies, or None)."""
    disc, cal = None, None
    if calibrate not in (None, "none", "prior", "self"):
        raise UserError(f"--calibrate {calibrate!r}: a downstream fit takes self or none (prior discrepancies)")
    if calibrate == "self":
        if estimator != "bayes":
            raise UserError("--calibrate self: the downstream laws' self-calibration is for --estimator bayes")
        disc, info = self_discrepancies(points, route, cuts_by, seed)
        cal = {"mode": "self", **info}
    if (targets or given) and estimator != "bayes" and n_bootstrap == 0:
        raise UserError(f"predictions from the {estimator} estimator come from its bootstrap: use --bootstrap > 0")
    fit = fit_downstream(points, route, estimator, n_bootstrap=n_bootstrap, seed=seed, config=config,
                         discrepancies=disc)
    return fit, downstream_body(points, fit, targets, given, seed=seed, calibration=cal)


def task_figures(points: TaskPoints, fit: DownstreamFit, body: dict, out: Path, seed: int = 0) -> list[Path]:
    """One figure per output (``tasks/<task>.png``): step 1 (its loss against compute, the fit runs
    and the targets' 95 % bands) and step 2 (accuracy against that loss: the law's median and 95 %
    band, the fit runs, the anchor and the targets)."""
    from scaling_jax.laws.figures import pyplot, save_figure

    plt = pyplot()
    lay = layout(points, fit.route)
    preds = [p for p in body["predictions"] if "N" in p]
    written = []
    for t, s in enumerate(fit.step2):
        k = s.source
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        x_fit = lay.inter[:, k]
        a1.scatter(points.C, x_fit, s=12, c="k", label="runs")
        a1.set_xscale("log")
        a1.set_xlabel("compute C = 6ND (FLOPs)")
        a1.set_ylabel(fit.step1[k].name)
        grid = np.linspace(0.0 if s.form == "sigmoid" else 0.8 * x_fit.min(), 1.15 * x_fit.max(), 120)
        acc = fit.accuracy_draws(np.broadcast_to(grid[:, None], (len(grid), len(fit.step1))), seed=seed)[..., t]
        lo, med, hi = np.percentile(acc, [2.5, 50, 97.5], axis=0)
        a2.fill_between(grid, lo, hi, color="C0", alpha=0.2, label="95 % band")
        a2.plot(grid, med, color="C0", label=f"{s.form} law (median)")
        a2.scatter(x_fit, lay.acc[:, t], s=12, c="k", label="runs")
        if s.form == "sigmoid":
            a2.axhline(s.chance, color="grey", ls=":", lw=1, label="chance")
            a2.scatter([0.0], [s.ceiling], marker="*", c="C3", s=60, zorder=3, label="anchor (ceiling)")
        for p in preds:
            x = p["tasks"][s.task]["task_loss"] if s.task in p["tasks"] and "task_loss" in p["tasks"][s.task] \
                else p.get("loss")
            y = p["tasks"][s.task]["accuracy"] if s.task != MEAN else p["mean_accuracy"]
            if x is None:
                continue
            a1.errorbar([6.0 * p["N"] * p["D"]], [x["median"]], yerr=[[x["median"] - x["lo95"]],
                                                                      [x["hi95"] - x["median"]]], fmt="o", c="C3")
            a2.errorbar([x["median"]], [y["median"]], xerr=[[x["median"] - x["lo95"]], [x["hi95"] - x["median"]]],
                        yerr=[[y["median"] - y["lo95"]], [y["hi95"] - y["median"]]], fmt="o", c="C3")
        a2.set_xlabel(fit.step1[k].name)
        a2.set_ylabel("accuracy" if s.task != MEAN else "task-mean accuracy")
        a2.legend(fontsize=7)
        fig.suptitle(f"{s.task}: {fit.route.label}, {fit.estimator}", fontsize=9)
        written.append(save_figure(plt, fig, Path(out) / "tasks" / f"{s.task}.png"))
    return written


def backtest_routes(bt, runs, recipes: str, *, cuts_by: str = "auto", seed: int = 0,
                    val_set: str | None = None) -> dict[str, dict]:
    """``backtest --downstream``: each training set's downstream routes on its cuts, up to the loss
    backtest's final cut, added to ``bt.body`` (``downstream`` per set, and at the top level for one
    set); returns them by set."""
    from scaling_jax.backtest.downstream import backtest_downstream
    from scaling_jax.testbed.task_points import read_task_points

    out = {}
    is_csv = Path(str(runs)).is_file()
    for ds, d in bt.body["datasets"].items():
        points = read_task_points(runs, dataset=None if is_csv else ds, val_set=val_set,
                                  tasks="all" if is_csv else None)
        out[ds] = d["downstream"] = backtest_downstream(points, recipes, cuts_by=cuts_by, final_cut=d["final_cut"],
                                                        seed=seed)
    if len(out) == 1:
        bt.body["downstream"] = next(iter(out.values()))
    return out
