"""The discrepancy model: prior draws, the sd formula, and calibration on simulated residuals
recovering the growth rate that generated them."""

import numpy as np
import pytest

from scaling_jax.laws.bayes import NutsConfig
from scaling_jax.laws.bayes.design import ERROR_AXES, LOSS_AXES
from scaling_jax.laws.bayes.discrepancy import PRIOR_SCALES, Discrepancy, Residuals, calibrate, prior_discrepancy


def test_prior_draws_follow_their_halfnormal_scales():
    d = prior_discrepancy("loss", 20_000, seed=0)
    assert d.axes == LOSS_AXES and d.tau_DxK.shape == (20_000, 3) and d.source == "prior"
    assert np.all(d.floor >= 0) and np.all(d.tau_DxK >= 0)
    # E|X| = s·sqrt(2/π) for X ~ HalfNormal(s)
    np.testing.assert_allclose(d.floor.mean(), PRIOR_SCALES["loss"][0] * np.sqrt(2 / np.pi), rtol=0.03)
    e = prior_discrepancy("error", 20_000, seed=0)
    np.testing.assert_allclose(e.tau_DxK[:, 0].mean(), 0.1 * np.sqrt(2 / np.pi), rtol=0.03)
    assert e.axes == ERROR_AXES
    with pytest.raises(ValueError, match="kind must be one of"):
        prior_discrepancy("perplexity", 10)


def test_sd_combines_floor_and_growth_in_quadrature():
    d = Discrepancy(floor=np.array([0.01, 0.0]), tau_DxK=np.array([[0.02, 0.03, 0.0], [0.0, 0.0, 0.0]]),
                    axes=LOSS_AXES, source="test")
    sd = np.asarray(d.sd(np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 5.0]])))
    np.testing.assert_allclose(sd, [[0.01, np.sqrt(0.01**2 + 0.02**2 + 0.06**2)], [0.0, 0.0]])
    with pytest.raises(ValueError, match="2 axes"):
        d.sd(np.zeros((3, 2)))
    assert len(d.take(5, seed=1).floor) == 5 and d.take(2) is d


def test_calibration_recovers_the_growth_rate_of_simulated_misses():
    rng = np.random.default_rng(0)
    P = 240
    dist = np.zeros((P, 3))
    dist[:, 0] = rng.uniform(0.0, 3.0, P)
    dist[:, 1] = rng.uniform(0.0, 2.0, P)  # only under-training misses grow
    s = np.full(P, 0.004)
    true_floor, true_tau = 0.006, 0.04
    mu = rng.normal(1.2, 0.2, P)
    log_y = mu + rng.normal(size=P) * np.sqrt(s**2 + true_floor**2 + (true_tau * dist[:, 1]) ** 2)
    res = Residuals(mu=mu, s=s, log_y=log_y, dist_PxK=dist)
    d = calibrate(res, "loss", source="simulated", config=NutsConfig(num_warmup=300, num_samples=300, num_chains=2))
    lo, hi = np.percentile(d.tau_DxK[:, 1], [2.5, 97.5])
    assert lo <= true_tau <= hi and hi - lo < 0.02
    lo, hi = np.percentile(d.floor, [2.5, 97.5])
    assert lo <= true_floor <= hi
    assert np.percentile(d.tau_DxK[:, 0], 97.5) < 0.01  # no growth along ln C was simulated
    assert d.summary()["source"] == "simulated" and set(d.summary()["tau"]) == set(LOSS_AXES)


def test_residuals_subtract_parameter_spread_and_reject_bad_values():
    log_pred = np.log([[2.0, 3.0], [2.2, 3.0]])
    r = Residuals.from_draws(log_pred, sigma_fit_D=np.array([0.0, 0.0]), y_P=[2.1, 3.0], dist_PxK=np.zeros((2, 3)))
    np.testing.assert_allclose(r.s, [np.std(np.log([2.0, 2.2])), 0.0], atol=1e-12)
    np.testing.assert_allclose(r.log_y, np.log([2.1, 3.0]))
    with pytest.raises(ValueError, match="finite and positive"):
        Residuals.from_draws(log_pred, np.zeros(2), [2.1, np.nan], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least one sweep"):
        Residuals.concat([])
    with pytest.raises(ValueError, match="distances along"):
        calibrate(Residuals(r.mu, r.s, r.log_y, np.zeros((2, 1))), "loss", source="x")


def test_one_sweeps_residuals_share_its_law_s_error():
    """Issue 36, item 3 (fails on 7cbb090, whose residual model made every held-out run
    independent, so τ's posterior was too narrow): runs scored by one fitted law share its
    misfit. The density is the Normal with one random slope per sweep and axis marginalised:
    Σ_ii = s_i² + δ₀² + Σ_k τ_k²Δ_ik², Σ_ij = Σ_k τ_k²Δ_ikΔ_jk within a sweep, 0 across sweeps."""
    import functools

    import jax
    from numpyro.infer.util import log_density
    from scipy.stats import multivariate_normal

    from scaling_jax.laws.bayes.discrepancy import residual_model

    rng = np.random.default_rng(0)
    parts = []
    for n in (4, 3):
        log_pred = rng.normal(1.0, 0.01, (50, n))
        parts.append(Residuals.from_draws(log_pred, np.full(50, 0.004), np.exp(rng.normal(1.0, 0.03, n)),
                                          np.abs(rng.normal(0, 2, (n, 3)))))
    res = Residuals.concat(parts)
    sweep = np.repeat([0, 1], [4, 3])
    floor, tau = 0.005, np.array([0.01, 0.03, 0.02])
    g = tau * res.dist_PxK
    cov = np.where(sweep[:, None] == sweep[None, :], g @ g.T, 0.0) + np.diag(res.s**2 + floor**2)
    want = multivariate_normal(res.mu, cov).logpdf(res.log_y)
    with jax.enable_x64(True):
        model = functools.partial(residual_model, kind="loss")
        params = {"floor": floor, "tau": tau}
        got = float(log_density(model, (res,), {}, params)[0])
        priors = float(log_density(model, (Residuals(res.mu[:0], res.s[:0], res.log_y[:0], res.dist_PxK[:0]),),
                                   {}, params)[0])  # the hyperpriors' density alone
    assert got - priors == pytest.approx(want, rel=1e-9)
    assert list(res.group) == list(sweep)
