"""``scaling-jax posterior`` on RedPajama, run once for this module with fewer draws than the
full run (2 chains × (300 + 300)): the files and fields it writes, and a calibration regression
check. Calibration learns RPJ's discrepancy from the held-out runs of C4 and RefinedWeb, so all
three sets are fitted."""

import contextlib
import io
import json

import pytest

from scaling_jax.cli import main
from scaling_jax.laws.bayes import load_calibration

# The full run (BENCHMARKS.md, calibrate="others"): RPJ's 95 % bands cover 0.97 of 30 held-out
# losses (29 runs) and 0.97 of 29 held-out errors (28 runs); the reported shares are rounded.
FULL_RUN_COVERED_95 = {"loss": (29, 30), "error": (28, 29)}
DRAWS = 2 * 300
SHORT_RUN_RHAT_MAX = 1.05


@pytest.fixture(scope="module")
def rpj_run(testbed_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("posterior") / "o"
    argv = ["posterior", "--testbed", str(testbed_dir), "--out", str(out), "--datasets", "rpj",
            "--num-warmup", "300", "--num-samples", "300", "--chains", "2", "--bootstrap", "100", "--no-pooling"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(argv)
    return code, out, stdout.getvalue()


@pytest.mark.slow
def test_calibrated_bands_cover_as_the_full_run_does(rpj_run):
    """Fails if calibration regresses (fewer held-out runs inside the 95 % bands) or the fit
    clearly fails to mix. R-hat ≤ 1.01 needs the default draws (tests/laws/bayes/test_convergence.py):
    at 2 × 300 its own noise is about the margin (1.008 seen alone)."""
    code, out, _ = rpj_run
    assert code == 0
    rpj = json.loads((out / "posterior.json").read_text())["datasets"]["rpj"]
    for kind, (covered, n) in FULL_RUN_COVERED_95.items():
        assert rpj[kind]["n_heldout"] == n
        assert round(rpj[kind]["coverage"]["95"] * n) >= covered, (kind, rpj[kind]["coverage"])
    assert rpj["diagnostics"]["max_rhat"] <= SHORT_RUN_RHAT_MAX


@pytest.mark.slow
def test_posterior_on_the_testbed_writes_the_issue_shape(rpj_run):
    code, out, printed = rpj_run
    assert code == 0
    body = json.loads((out / "posterior.json").read_text())
    rpj = body["datasets"]["rpj"]
    assert set(rpj) >= {"loss", "error", "bootstrap_loss", "diagnostics", "loss_prior_discrepancy",
                        "error_prior_discrepancy"}
    # rpj's bands take their discrepancy from the other two sets' held-out runs, never its own.
    disc = rpj["discrepancy"]["loss"]
    assert disc["source"] == "held-out runs of c4_original, rw_original"
    assert set(disc["tau"]) == {"C", "M_below", "M_above"} and len(disc["floor"]) == 3
    for key in ("loss", "error", "bootstrap_loss", "loss_prior_discrepancy", "error_prior_discrepancy"):
        block = rpj[key]
        assert set(block) >= {"coverage", "median_width_95", "median_abs_err", "n_heldout"}
        assert set(block["coverage"]) == {"50", "90", "95"}
        assert block["median_width_95"] > 0 and block["median_abs_err"] > 0
    # 35 RedPajama models, 5 fit Eq. 4 and 6 fit Eq. 5.
    assert rpj["loss"]["n_heldout"] == 30 and rpj["error"]["n_heldout"] == 29
    assert rpj["loss"]["m_ge_10"]["n_heldout"] == 26
    boot = rpj["bootstrap_loss"]["resamples"]  # degenerate Table-1 resamples are dropped and counted
    assert boot["n_resamples"] == 100 and boot["estimator"] == "lm" and boot["n_underdetermined"] > 0
    assert set(rpj["diagnostics"]) == {"max_rhat", "min_ess", "divergences"}
    t = rpj["targets"][0]
    assert set(t["loss_quantiles"]) == {"q2.5", "q5", "q25", "q50", "q75", "q95", "q97.5"}
    assert (out / "figure1_bands.png").stat().st_size > 10_000 and (out / "calibration.png").stat().st_size > 10_000
    # The reusable calibration learns from every set's held-out runs, rpj's included.
    cal = json.loads((out / "calibration.json").read_text())
    assert cal["created_from"]["datasets"] == ["c4_original", "rpj", "rw_original"]
    for kind, axes in (("loss", ("C", "M_below", "M_above")), ("error", ("L",))):
        d = load_calibration(out / "calibration.json", kind)
        assert d.source == "held-out runs of c4_original, rpj, rw_original" and d.axes == axes
        assert len(d.floor) == DRAWS and d.tau_DxK.shape == (DRAWS, len(axes))
    assert "bayes loss" in printed and "rpj: R-hat max" in printed


def test_unknown_dataset_is_a_one_line_error(testbed_dir, tmp_path, capsys):
    argv = ["posterior", "--testbed", str(testbed_dir), "--out", str(tmp_path), "--datasets", "pile"]
    assert main(argv) == 2
    assert "pile" in capsys.readouterr().err


def test_lm_bootstrap_baseline_adds_the_residual_scale_as_fit_lm_does(testbed):
    """Issue 36, item 3 (fails on 7cbb090, whose "LM boot" bands in posterior.json were the refitted
    laws alone): the baseline's draws are ``fit --estimator lm``'s, bootstrap laws × exp(σ·z)."""
    import numpy as np

    from scaling_jax.laws import predictive
    from scaling_jax.laws.bootstrap import bootstrap
    from scaling_jax.laws.fit import fit_law
    from scaling_jax.paper import recipe
    from scaling_jax.paper.posterior_check import VAL, _bootstrap_bands

    fit_runs = recipe.loss_fit_runs(testbed, "rpj")
    held = [r for r in testbed.select(dataset="rpj").runs if r.name not in {x.name for x in fit_runs}]
    _, draws, summary = _bootstrap_bands(fit_runs, held, 100, 0)
    inputs, y = {"C": [r.C for r in fit_runs], "M": [r.M for r in fit_runs]}, [r.loss(VAL) for r in fit_runs]
    C, M = np.array([r.C for r in held]), np.array([r.M for r in held])
    bs = bootstrap("overtrain", inputs, y, n_resamples=100, seed=0)
    sigma = predictive.log_residual_scale("overtrain", fit_law("overtrain", inputs, y).params, inputs, y)
    assert sigma > 0
    assert np.std(np.log(draws / bs.predictions(C=C, M=M))) == pytest.approx(sigma, rel=0.1)
    np.testing.assert_allclose(draws, predictive.predictive_draws(bs, sigma, seed=0, C=C, M=M), rtol=1e-12)
    assert summary["log_residual_scale"] == sigma


def test_pooling_comparison_changes_pooling_alone(testbed, monkeypatch):
    """Issue 36, item 3 (fails on 7cbb090, whose independent arm was the single-set Eq. 4 model,
    with an implied prior on η unlike the pooled model's Beta(2, 6)): the independent arm is the
    hierarchical model without pooling, each η_s ~ Beta(2, 6) and every other prior the same.
    NUTS is replaced by a few prior draws: only which models are compared is checked here."""
    import jax
    import numpy as np
    from numpyro import handlers

    import scaling_jax.laws.bayes.fit as bayes_fit
    import scaling_jax.paper.posterior_check as check
    from scaling_jax.laws.bayes import Diagnostics, NutsConfig, Posterior, hierarchical_loss_model
    from scaling_jax.laws.bayes.fit import describe_priors

    calls = []

    def prior_draws(model, *args, config):
        calls.append((model, args))
        with jax.enable_x64(True):
            traces = [handlers.trace(handlers.seed(model, i)).get_trace(*args) for i in range(8)]
        s = {k: np.stack([np.asarray(t[k]["value"]) for t in traces]) for k in traces[0]}
        return Posterior(s, Diagnostics({"eta": 1.0}, {"eta": 8.0}, 0))

    monkeypatch.setattr(check, "run_nuts", prior_draws)
    monkeypatch.setattr(bayes_fit, "run_nuts", prior_draws)
    out = check.pooling_comparison(testbed, ["rpj", "c4_original"], NutsConfig(num_samples=8, num_chains=1))
    assert set(out["table1"]["independent"]) == set(out["fewer"]["hierarchical"]) == {"rpj", "c4_original"}
    pooled = [args for model, args in calls if model is hierarchical_loss_model]
    independent = [(model, args) for model, args in calls if model is not hierarchical_loss_model]
    assert len(pooled) == 2 and independent
    pooling_sites = {"eta_bar", "s_eta", "z_eta"}
    for model, args in independent:
        priors = describe_priors(model, *args)
        assert priors.get("eta") == "Beta(concentration1=2, concentration0=6)", priors
        same = {k: v for k, v in describe_priors(hierarchical_loss_model, *args).items() if k not in pooling_sites}
        assert same.items() <= priors.items(), (same, priors)
