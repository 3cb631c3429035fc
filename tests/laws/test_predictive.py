"""Predictive intervals of the point estimators on simulated Eq. 3 runs: fresh runs at
extrapolated (N, D) fall inside the 95 % intervals about 95 % of the time."""

import numpy as np
import pytest

from scaling_jax.laws.fit import predict
from scaling_jax.laws.fit_report import fit_points
from scaling_jax.testbed.points_io import parse_target

TRUE = {"E": 1.8, "A": 400.0, "B": 900.0, "alpha": 0.32, "beta": 0.28}
NOISE = 0.004  # multiplicative scatter of a run about the law
N_FIT = np.repeat([2e7, 5e7, 1e8, 2e8, 4e8], 3)
M_FIT = np.tile([10.0, 20.0, 80.0], 5)
TARGETS = [(1e9, 2e10), (2e9, 4e10), (1e9, 8e10)]  # 5-60x the largest fit compute


def _runs(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    D = N_FIT * M_FIT
    loss = predict("chinchilla", TRUE, N=N_FIT, D=D) * np.exp(NOISE * rng.standard_normal(N_FIT.size))
    return {"N": N_FIT, "D": D, "loss": loss}


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["lm", "huber"])
def test_fresh_runs_fall_in_the_95_percent_intervals(estimator):
    targets = [parse_target(f"{n},{d}", "chinchilla") for n, d in TARGETS]
    truth = predict("chinchilla", TRUE, N=[t["N"] for t in targets], D=[t["D"] for t in targets])
    rng = np.random.default_rng(99)
    hits, total, widths = 0, 0, []
    for seed in range(3):
        report = fit_points(_runs(seed), "chinchilla", estimator, n_bootstrap=50, seed=seed, targets=targets)
        rows = report.body["predictions"]
        assert report.body["prediction_method"]["loss"]["estimator"] == estimator
        for row, mu in zip(rows, truth):
            q = row["loss"]
            assert q["lo95"] < q["lo50"] < q["median"] < q["hi50"] < q["hi95"]
            fresh = mu * np.exp(NOISE * rng.standard_normal(200))
            hits += int(np.sum((q["lo95"] <= fresh) & (fresh <= q["hi95"])))
            total += fresh.size
            widths.append((q["hi95"] - q["lo95"]) / mu)
            assert abs(q["median"] / mu - 1) < 0.02
    coverage = hits / total
    # 200 fresh runs per target share one fit's error, so the effective sample is ~9 fits:
    # a wide tolerance, but one that an interval without the run-to-run noise (or a wrong
    # centre) fails.
    assert 0.8 <= coverage <= 1.0, coverage
    assert np.median(widths) < 0.08, widths


def test_residual_scale_and_its_absence():
    from scaling_jax.laws import predictive

    pts = _runs(0)
    xs = {"N": pts["N"], "D": pts["D"]}
    sigma = predictive.log_residual_scale("chinchilla", TRUE, xs, pts["loss"])
    assert 0.5 * NOISE < sigma < 1.6 * NOISE
    five = {k: v[:5] for k, v in xs.items()}
    assert predictive.log_residual_scale("chinchilla", TRUE, five, pts["loss"][:5]) is None


def test_lm_chained_error_draws_at_err_le_0_make_no_prediction_and_are_counted():
    """Review of issue 36 item 2: a bootstrap draw of Eq. 5 that falls to Err <= 0 at a far loss is
    left out of the bands (NaN) and counted in fit.json, as the Bayesian bands do, not kept."""
    from scaling_jax.laws.bayes.predict import Bands
    from scaling_jax.laws.bootstrap import BootstrapResult
    from scaling_jax.laws.fit_report import interval_summary
    from scaling_jax.laws.predictive import chained_error_draws

    # Err(L) = eps - k exp(-gamma L): at L = 1.0 the first law gives 0.5 - 0.2 e^-1 > 0, the second < 0
    params = np.array([[0.5, 0.2, 1.0], [0.05, 2.0, 1.0]])
    bs = BootstrapResult("error", params, 2, 0, 0, 0)
    loss = np.full((400, 1), 1.0)
    draws = chained_error_draws(loss, bs, None, seed=3)
    neg = np.isnan(draws[:, 0])
    assert 0.3 < neg.mean() < 0.7 and np.all(draws[~neg, 0] > 0)
    row = interval_summary(Bands.from_draws(draws), 0)
    assert row["undefined_share"] == pytest.approx(neg.mean()) and row["lo95"] > 0
