"""Simulated data from known parameters: the posterior covers the truth, more points narrow
the bands, bad input fails like the point fitter. Few draws (4 × 200) keep each NUTS run at ~20 s,
mostly compilation."""

import dataclasses

import numpy as np
import pytest

from scaling_jax.laws import forms
from scaling_jax.laws.bayes import (
    Bands,
    Discrepancy,
    ErrorData,
    ErrorLaw,
    LossData,
    LossLaw,
    NutsConfig,
    PooledLossData,
    chained_error_draws,
    chained_model,
    error_draws,
    hierarchical_loss_model,
    loss_draws,
    loss_model,
    predictive,
    run_nuts,
    to_CM,
)  # fmt: skip
from scaling_jax.laws.bayes.design import LOSS_AXES

TRUE = {"E": 1.8, "a": 210.0, "b": 370.0, "eta": 0.135}
TRUE_ERR = {"epsilon": 0.86, "k": 2.2, "gamma": 0.71}
SIZES = np.array([1.06e7, 7.9e7, 1.54e8, 4.1e8])
TARGETS_N, TARGETS_M = np.array([1.44e9, 6.9e9, 4.1e8]), np.array([20.0, 20.0, 640.0])
CONFIG = NutsConfig(num_warmup=200, num_samples=200, num_chains=4, seed=0)


def simulate(N, M, noise=0.003, seed=0):
    C, M = to_CM(N=N, M=M)
    L = np.asarray(forms.overtrain(TRUE, C, M)) * np.exp(noise * np.random.default_rng(seed).normal(size=C.shape))
    return LossData(C=C, M=M, L=L)


def true_loss(N, M):
    C, M = to_CM(N=N, M=M)
    return np.asarray(forms.overtrain(TRUE, C, M))


@pytest.fixture(scope="module")
def many():
    """Eq. 4 and Eq. 5 chained, fitted on 12 simulated runs (4 sizes × M in {20, 80, 320})."""
    N, M = np.meshgrid(SIZES, [20.0, 80.0, 320.0])
    loss = simulate(N.ravel(), M.ravel())
    L_fit = np.r_[loss.L, true_loss(1.44e9, 20.0)]
    noise = np.exp(0.003 * np.random.default_rng(1).normal(size=L_fit.size))
    err = ErrorData(L=L_fit, Err=np.asarray(forms.error(TRUE_ERR, L_fit)) * noise)
    post = run_nuts(chained_model, loss, err, config=dataclasses.replace(CONFIG, num_warmup=400))
    return loss, err, post


@pytest.fixture(scope="module")
def few():
    """Eq. 4 alone on the Table-1 design: four sizes at M = 20, the smallest also at M = 320."""
    data = simulate(np.r_[SIZES, SIZES[0]], np.r_[np.full(4, 20.0), 320.0])
    return data, run_nuts(loss_model, data, config=CONFIG)


def test_posterior_covers_the_true_parameters(many):
    loss, err, post = many
    for k, v in {**TRUE, **TRUE_ERR}.items():
        lo, hi = np.percentile(post.samples[k], [2.5, 97.5])
        assert lo <= v <= hi, (k, lo, v, hi)
    d = post.diagnostics
    assert d.max_rhat < 1.05 and d.min_ess > 100


def test_predictive_bands_cover_the_true_law_off_the_fit_points(many):
    loss, err, post = many
    law = LossLaw.from_samples(post.samples, loss.support)
    b = Bands.from_draws(loss_draws(law, *to_CM(N=TARGETS_N, M=TARGETS_M)))
    assert np.all(b.covers(true_loss(TARGETS_N, TARGETS_M), 95))
    # Informative, not just wide: the median tracks the true law, the 95 % bands stay within
    # 25 % of the loss (8 %, 17 %, 6 % here) and the farthest extrapolation (6.9B) is widest.
    np.testing.assert_allclose(b.median, true_loss(TARGETS_N, TARGETS_M), rtol=0.02)
    rel_width = (b.hi[95] - b.lo[95]) / b.median
    assert np.all(rel_width < 0.25) and np.argmax(rel_width) == 1


def test_chained_error_band_covers_truth_and_carries_both_laws(many):
    loss, err, post = many
    ll, el = LossLaw.from_samples(post.samples, loss.support), ErrorLaw.from_samples(post.samples, err.support)
    C, M = to_CM(N=TARGETS_N, M=TARGETS_M)
    chained = Bands.from_draws(chained_error_draws(ll, el, C, M))
    truth = np.asarray(forms.error(TRUE_ERR, true_loss(TARGETS_N, TARGETS_M)))
    assert np.all(chained.covers(truth, 95))
    # Eq. 5's uncertainty alone (error at the median loss) gives a narrower band than the chain.
    only_eq5 = Bands.from_draws(error_draws(el, Bands.from_draws(loss_draws(ll, C, M)).median))
    assert np.all(only_eq5.hi[95] - only_eq5.lo[95] < chained.hi[95] - chained.lo[95])
    # The one-call API gives the same bands from (N, M) targets.
    bands = predictive(ll, el, N=TARGETS_N, M=TARGETS_M)
    np.testing.assert_allclose(bands["error"].hi[95], chained.hi[95])
    assert bands["loss"].median.shape == (3,)


def test_more_points_give_narrower_bands(many, few):
    C, M = to_CM(N=TARGETS_N, M=TARGETS_M)

    def width(data, post):
        b = Bands.from_draws(loss_draws(LossLaw.from_samples(post.samples, data.support), C, M))
        return np.median((b.hi[95] - b.lo[95]) / b.median)

    assert width(many[0], many[2]) < 0.8 * width(*few)


def test_same_seed_same_draws(few):
    data, post = few
    again = run_nuts(loss_model, data, config=CONFIG)
    np.testing.assert_array_equal(post.samples["eta"], again.samples["eta"])
    # Predictive draws from the two runs' laws (each with its own prior-discrepancy draws) agree
    # too: the whole path from seed to band is reproducible, not just one call.
    law, law_again = (LossLaw.from_samples(p.samples, data.support) for p in (post, again))
    C, M = to_CM(N=TARGETS_N, M=TARGETS_M)
    np.testing.assert_array_equal(loss_draws(law, C, M, seed=3), loss_draws(law_again, C, M, seed=3))
    assert not np.array_equal(loss_draws(law, C, M, seed=3), loss_draws(law, C, M, seed=4))


def test_discrepancy_widens_bands_only_along_its_axes(few):
    data, post = few
    n = post.num_draws
    flat = Discrepancy(np.zeros(n), np.zeros((n, 3)), LOSS_AXES, "none")
    steep = Discrepancy(np.zeros(n), np.tile([0.0, 0.05, 0.0], (n, 1)), LOSS_AXES, "under-training only")
    C, M = to_CM(N=[4.1e8, 4.1e8], M=[5.0, 40.0])  # below the fit multipliers; inside them

    def width(disc):
        b = Bands.from_draws(loss_draws(LossLaw.from_samples(post.samples, data.support, disc), C, M, seed=5))
        return (b.hi[95] - b.lo[95]) / b.median

    w_flat, w_steep = width(flat), width(steep)
    assert w_steep[0] > 1.5 * w_flat[0]
    np.testing.assert_allclose(w_steep[1], w_flat[1])
    # Without one, a law gets draws from the discrepancy's prior, paired one-to-one with its draws.
    assert LossLaw.from_samples(post.samples, data.support).discrepancy.source == "prior"


@pytest.mark.slow
def test_hierarchical_fit_pools_eta_across_sets():
    sets = []
    for s, scale in enumerate((1.0, 1.1)):
        N, M = np.r_[SIZES, SIZES[0]], np.r_[np.full(4, 20.0), 320.0]
        C, M = to_CM(N=N, M=M)
        p = dict(TRUE, E=TRUE["E"] * scale)
        L = np.asarray(forms.overtrain(p, C, M)) * np.exp(0.003 * np.random.default_rng(s).normal(size=5))
        sets.append(LossData(C=C, M=M, L=L))
    post = run_nuts(hierarchical_loss_model, PooledLossData(tuple(sets)), config=CONFIG)
    assert post.samples["eta"].shape == (CONFIG.num_chains * CONFIG.num_samples, 2)
    for s in range(2):
        lo, hi = np.percentile(post.samples["eta"][:, s], [2.5, 97.5])
        assert lo <= TRUE["eta"] <= hi
    law = LossLaw.from_samples(post.samples, sets[1].support, index=1)
    assert law.E.shape == law.sigma.shape


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"C": [1e18, 2e18, 3e18], "M": [20, 20, 320], "L": [3.0, 2.9, 2.8]}, "4 parameters but only 3"),
        ({"C": [1e18, np.nan, 3e18, 4e18], "M": [20, 20, 20, 320], "L": [3.0, 2.9, 2.8, 2.7]}, "non-finite"),
        ({"C": [1e18, 2e18, 3e18, 4e18], "M": [20, 20, 20, 320], "L": [3.0, np.inf, 2.8, 2.7]}, "non-finite"),
        ({"C": [1e18, 2e18, 3e18, 4e18], "M": [20, -20, 20, 320], "L": [3.0, 2.9, 2.8, 2.7]}, "positive"),
    ],
)
def test_bad_loss_points_fail_like_the_point_fitter(kwargs, match):
    from scaling_jax.laws.fit import fit_law

    with pytest.raises(ValueError, match=match):
        LossData(**kwargs)
    with pytest.raises(ValueError, match=match):
        fit_law("overtrain", {"C": kwargs["C"], "M": kwargs["M"]}, kwargs["L"])


def test_bad_error_points_and_one_multiplier():
    with pytest.raises(ValueError, match="3 parameters but only 2"):
        ErrorData(L=[3.0, 2.9], Err=[0.7, 0.6])
    with pytest.warns(RuntimeWarning, match="same token multiplier"):
        LossData(C=[1e18, 2e18, 3e18, 4e18], M=[20, 20, 20, 20], L=[3.0, 2.9, 2.8, 2.7])


def test_every_model_takes_its_fit_points_as_traced_arguments():
    """NUTS compiles its sampler with the fit points as arguments (``jit_model_args``), so a fit of
    the same model and shapes reuses the program. Every model must therefore trace with its data as
    tracers (no ``float()`` or NumPy on the points), and give the density it gives eagerly."""
    import functools

    import jax
    from numpyro import handlers
    from numpyro.infer.util import log_density

    from scaling_jax.laws.bayes import ChinchillaData, chained_chinchilla_model
    from scaling_jax.laws.bayes.discrepancy import Residuals, residual_model

    loss = simulate(np.r_[SIZES, SIZES[0]], np.r_[np.full(4, 20.0), 320.0])
    err = ErrorData(L=loss.L, Err=np.asarray(forms.error(TRUE_ERR, loss.L)))
    N = np.r_[SIZES, SIZES[0]]
    chin = ChinchillaData(N=N, D=20.0 * N * np.r_[1, 1, 1, 1, 16], L=loss.L)
    res = Residuals(mu=np.zeros(6), s=np.full(6, 0.01), log_y=np.linspace(-0.02, 0.03, 6),
                    dist_PxK=np.abs(np.random.default_rng(0).normal(size=(6, len(LOSS_AXES)))))
    pooled = PooledLossData((loss, simulate(N, 20.0 * np.ones(5), seed=1)))
    cases = [(chained_model, (loss, err)), (hierarchical_loss_model, (pooled,)),
             (chained_chinchilla_model, (chin, err)), (functools.partial(residual_model, kind="loss"), (res,))]
    with jax.enable_x64(True):
        for model, args in cases:
            for seed in range(20):  # a prior draw where the density is positive (some have zero: −∞)
                tr = handlers.trace(handlers.seed(model, seed)).get_trace(*args)
                params = {k: s["value"] for k, s in tr.items() if s["type"] == "sample" and not s["is_observed"]}
                eager = float(log_density(model, args, {}, params)[0])
                if np.isfinite(eager):
                    break
            traced = float(jax.jit(lambda a, p: log_density(model, a, {}, p)[0])(args, params))
            assert np.isfinite(eager) and traced == pytest.approx(eager, rel=1e-9), model
