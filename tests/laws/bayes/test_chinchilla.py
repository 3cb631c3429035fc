"""Eq. 3 (Chinchilla, α ≠ β) in NumPyro: on runs simulated from known parameters the posterior
covers them, predictive bands at 5-10× the largest fit compute cover fresh noisy runs about as
often as they claim, and the law plugs into the Eq. 4 prediction functions unchanged.

Three fits (seed 0 chained with Eq. 5, seeds 1-2 Eq. 3 alone) of 2 chains × (300 + 300) draws;
each is ~20-30 s on two busy cores, mostly compilation, so every test shares them."""

import warnings

import numpy as np
import pytest

from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.laws.bayes import (
    Bands,
    ChinchillaData,
    ChinchillaLaw,
    Discrepancy,
    ErrorData,
    ErrorLaw,
    LossLaw,
    NutsConfig,
    chained_chinchilla_model,
    chained_error_draws,
    chinchilla_model,
    loss_draws,
    predictive,
    run_nuts,
    to_CM,
)  # fmt: skip
from scaling_jax.laws.bayes.design import LOSS_AXES
from scaling_jax.laws.bayes.discrepancy import prior_discrepancy

TRUE = {"E": 1.8, "A": 400.0, "B": 900.0, "alpha": 0.32, "beta": 0.28}
TRUE_ERR = {"epsilon": 0.86, "k": 2.2, "gamma": 0.71}
NOISE = 0.003  # multiplicative, as seed-to-seed scatter of validation loss
# 5 sizes × 4 tokens-per-parameter ratios: 20 runs, compute 1.2e16 .. 7.7e19 FLOPs.
_N, _M = np.meshgrid(np.geomspace(1e7, 4e8, 5), [10.0, 20.0, 40.0, 80.0])
FIT_N, FIT_D = _N.ravel(), (_N * _M).ravel()
C_MAX = float(forms.compute(FIT_N, FIT_D).max())
# Targets at 5× and 10× the largest fit compute, each at the four fit ratios.
TARGET_C = np.repeat([5.0 * C_MAX, 10.0 * C_MAX], 4)
TARGET_M = np.tile([10.0, 20.0, 40.0, 80.0], 2)
CONFIG = NutsConfig(num_warmup=300, num_samples=300, num_chains=2)
SEEDS = (0, 1, 2)


def true_loss_NxD(N, D):
    return np.asarray(forms.chinchilla(TRUE, np.asarray(N, float), np.asarray(D, float)))


def true_loss_CxM(C, M):
    N = np.sqrt(np.asarray(C) / (6.0 * np.asarray(M)))
    return true_loss_NxD(N, np.asarray(M) * N)


def noisy(L, rng):
    return L * np.exp(NOISE * rng.normal(size=np.shape(L)))


@pytest.fixture(scope="module")
def fits():
    """(data, posterior, error data or None) per seed; seed 0 is the chained Eq. 3 → Eq. 5 fit."""
    out = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        data = ChinchillaData(N=FIT_N, D=FIT_D, L=noisy(true_loss_NxD(FIT_N, FIT_D), rng))
        cfg = NutsConfig(**{**CONFIG.__dict__, "seed": seed})
        if seed == 0:
            L_err = np.r_[data.L[::2], true_loss_NxD(1e9, 2e10)]
            err = ErrorData(L=L_err, Err=noisy(np.asarray(forms.error(TRUE_ERR, L_err)), rng))
            out.append((data, run_nuts(chained_chinchilla_model, data, err, config=cfg), err))
        else:
            out.append((data, run_nuts(chinchilla_model, data, config=cfg), None))
    return out


def test_posterior_covers_the_true_parameters_and_mixes(fits):
    for data, post, err in fits:
        truth = {**TRUE, **(TRUE_ERR if err is not None else {})}
        for k, v in truth.items():
            lo, hi = np.percentile(post.samples[k], [2.5, 97.5])
            assert lo <= v <= hi, (k, lo, v, hi)
        # The law's value at the fit points: pinned to within a few times the noise.
        law = ChinchillaLaw.from_samples(post.samples, data.support)
        lo, hi = np.percentile(law.log_law(data.C, data.M), [2.5, 97.5], axis=0)
        truth_fit = np.log(true_loss_NxD(data.N, data.D))
        assert np.all((lo <= truth_fit) & (truth_fit <= hi)) and np.all(hi - lo < 4 * NOISE)
        d = post.diagnostics
        # 2 × 300 draws give R-hat 1.011-1.013 here (≤ 1.002 at the default 4 × 1,000).
        assert d.max_rhat <= 1.02 and d.min_ess > 100 and d.divergences == 0, d.to_dict()
    # 20 runs over 40× in N and 8× in D/N separate the exponents: α and β are not confounded.
    a_lo, a_hi = np.percentile(fits[0][1].samples["alpha"], [2.5, 97.5])
    assert a_hi - a_lo < 0.1


def test_predictive_bands_cover_fresh_runs_at_5_to_10x_compute(fits):
    """Pooled over the three fits, 95 % bands (no discrepancy: the simulated law is exact) cover
    fresh noisy runs at the targets between 85 % and 99.5 % of the time. The 200 fresh runs per
    target share one fit's error, so the effective count is nearer 3 fits × 8 targets than
    4,800 draws: the band allows for that, not the binomial 0.95 ± 0.006 of independent draws."""
    rng = np.random.default_rng(123)
    truth = true_loss_CxM(TARGET_C, TARGET_M)
    covered = []
    for data, post, _ in fits:
        n = post.num_draws
        none = Discrepancy(np.zeros(n), np.zeros((n, 3)), LOSS_AXES, "none")
        law = ChinchillaLaw.from_samples(post.samples, data.support, none)
        b = Bands.from_draws(loss_draws(law, TARGET_C, TARGET_M, seed=7))
        fresh = noisy(np.broadcast_to(truth, (200, truth.size)), rng)
        covered.append(b.covers(fresh, 95))
    coverage = float(np.mean(covered))
    assert 0.85 <= coverage <= 0.995, coverage
    # With the discrepancy's prior (the default) the bands are wider and cover at least as often.
    data, post, _ = fits[0]
    wide = Bands.from_draws(loss_draws(ChinchillaLaw.from_samples(post.samples, data.support), TARGET_C, TARGET_M))
    assert np.all(wide.covers(truth, 95)) and np.all(wide.hi[95] - wide.lo[95] > b.hi[95] - b.lo[95])


def test_chained_error_and_predictive_work_on_the_chinchilla_law(fits):
    data, post, err = fits[0]
    ll, el = ChinchillaLaw.from_samples(post.samples, data.support), ErrorLaw.from_samples(post.samples, err.support)
    chained = Bands.from_draws(chained_error_draws(ll, el, TARGET_C, TARGET_M))
    assert np.all(chained.covers(np.asarray(forms.error(TRUE_ERR, true_loss_CxM(TARGET_C, TARGET_M))), 95))
    N = np.sqrt(TARGET_C / (6 * TARGET_M))
    bands = predictive(ll, el, N=N, D=TARGET_M * N)
    np.testing.assert_allclose(bands["error"].hi[95], chained.hi[95], rtol=1e-9)
    assert bands["loss"].median.shape == (8,)


def test_log_law_converts_C_M_to_N_D_and_matches_eq4_where_alpha_equals_beta():
    rng = np.random.default_rng(0)
    n = 3
    p = {"E": rng.uniform(1.5, 2.0, n), "A": rng.uniform(100, 500, n), "B": rng.uniform(100, 900, n),
         "alpha": np.full(n, 0.3), "beta": np.full(n, 0.3)}  # fmt: skip
    support = ChinchillaData(FIT_N, FIT_D, true_loss_NxD(FIT_N, FIT_D)).support
    law = ChinchillaLaw.from_samples({**p, "sigma_loss": np.full(n, 0.01)}, support)
    N, D = np.array([1e8, 3e9]), np.array([2e9, 1e10])
    C, M = to_CM(N=N, D=D)
    q = {k: v[:, None] for k, v in p.items()}
    want = np.log(q["E"] + q["A"] * N ** -q["alpha"] + q["B"] * D ** -q["beta"])  # float64, by hand
    np.testing.assert_allclose(law.log_law(C, M), want, rtol=1e-12)
    eq4 = {k: np.asarray(v, np.float64) for k, v in forms.chinchilla_to_overtrain(p).items()}
    eq4_law = LossLaw.from_samples({**eq4, "sigma_loss": np.full(n, 0.01)}, support)
    np.testing.assert_allclose(law.log_law(C, M), eq4_law.log_law(C, M), rtol=1e-12)
    # Its support is Eq. 4's: (ln C, ln M) of the fit points.
    np.testing.assert_allclose(support.x_FxK, np.c_[np.log(6 * FIT_N * FIT_D), np.log(FIT_D / FIT_N)])


GOOD = {"N": [1e7, 2e7, 4e7, 8e7, 1e8], "D": [2e8, 4e8, 8e8, 3e9, 2e9], "L": [4.0, 3.8, 3.6, 3.4, 3.3]}


@pytest.mark.parametrize(
    "change, match",
    [
        ({"N": GOOD["N"][:4], "D": GOOD["D"][:4], "L": GOOD["L"][:4]}, "5 parameters but only 4"),
        ({"N": [1e7, 0.0, 4e7, 8e7, 1e8]}, r"N must be positive; point 1 has 0\.0"),
        ({"D": [2e8, -4e8, 8e8, 3e9, 2e9]}, r"D must be positive; point 1 has -4"),
        ({"L": [4.0, np.nan, 3.6, 3.4, 3.3]}, "target has non-finite value nan at point 1"),
    ],
)
def test_bad_points_raise_user_errors_naming_the_value(change, match):
    ChinchillaData(**GOOD)  # the unchanged points are fine
    with pytest.raises(UserError, match=match):
        ChinchillaData(**{**GOOD, **change})


def test_one_tokens_per_parameter_ratio_only_warns():
    N = np.geomspace(1e7, 4e8, 5)
    with pytest.warns(RuntimeWarning, match="same tokens per parameter"):
        ChinchillaData(N=N, D=20 * N, L=true_loss_NxD(N, 20 * N))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ChinchillaData(N=FIT_N, D=FIT_D, L=true_loss_NxD(FIT_N, FIT_D))


def test_sampled_slopes_give_the_documented_beta_prior_on_the_exponents():
    """Base draws of ln g reweighted by the prior factor: α = g/c is Beta(2, 6) whatever c = w·(1 − u)."""
    from scaling_jax.laws.bayes.chinchilla import SLOPE_BASE, _exponent_log_prior

    ln_g = np.random.default_rng(0).normal(float(SLOPE_BASE.loc), 1.0, 100_000)
    for c in (0.1, 0.25, 0.6):
        alpha = np.exp(ln_g) / c
        wt = np.exp(np.asarray(_exponent_log_prior(alpha, ln_g)))
        wt /= wt.sum()
        mean = np.sum(wt * alpha)
        assert abs(mean - 0.25) < 0.01, (c, mean)  # Beta(2, 6): mean 1/4, sd 0.144
        np.testing.assert_allclose(np.sqrt(np.sum(wt * (alpha - mean) ** 2)), np.sqrt(12 / (64 * 9)), rtol=0.05)
        assert np.all(wt[alpha >= 1] == 0)


def test_discrepancy_defaults_to_prior_draws_paired_with_the_posterior():
    support = ChinchillaData(FIT_N, FIT_D, true_loss_NxD(FIT_N, FIT_D)).support
    s = {k: np.full(7, v) for k, v in TRUE.items()} | {"sigma_loss": np.full(7, NOISE)}
    law = ChinchillaLaw.from_samples(s, support)
    assert law.discrepancy.source == "prior" and len(law.discrepancy.floor) == 7
    law = ChinchillaLaw.from_samples(s, support, prior_discrepancy("loss", 50, seed=3))
    assert len(law.discrepancy.floor) == 7


def test_fit_json_priors_state_the_effective_exponent_prior_not_the_slope_base():
    """Issue 36, item 3 (fails on 7cbb090: fit.json listed ln_g_N ~ Normal(-2.77, 1), a base the
    exponent factor cancels, and no prior on α, β): the priors say α, β ~ Beta(2, 6)."""
    from scaling_jax.laws.bayes import ErrorData, chained_chinchilla_model, chinchilla_model
    from scaling_jax.laws.bayes.fit import describe_priors

    data = ChinchillaData(FIT_N, FIT_D, true_loss_NxD(FIT_N, FIT_D))
    L = data.L[:6]
    err = ErrorData(L=L, Err=np.asarray(forms.error(TRUE_ERR, L)))
    for model, args in ((chinchilla_model, (data,)), (chained_chinchilla_model, (data, err))):
        priors = describe_priors(model, *args)
        for exponent, slope in (("alpha", "ln_g_N"), ("beta", "ln_g_D")):
            assert priors[exponent].startswith("Beta(concentration1=2, concentration0=6)"), priors
            assert not priors[slope].startswith("Normal(") and "not a prior" in priors[slope]
        assert "alpha, beta ~ Beta(concentration1=2, concentration0=6)" in priors["exponent_prior"]
        assert priors["u_E"].startswith("Beta(")  # the other sites keep their traced priors
