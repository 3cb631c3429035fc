"""Self-calibration (``--calibrate self``): the discrepancy learned from a ladder's own cuts.

Residuals come only from the ladder (never a target), one group per cut; a ladder whose law
holds teaches a smaller misfit growth than one whose exponent drifts; and the bands it widens
cover the truth of synthetic ladders drawn from a known law."""

import numpy as np
import pytest

from scaling_jax.backtest.self_calibration import rolling_residuals, self_calibrate
from scaling_jax.errors import UserError
from scaling_jax.laws.bayes.calibration_file import parse_calibrate
from scaling_jax.laws.bayes.discrepancy import prior_discrepancy
from scaling_jax.laws.bayes.hyperprior import HyperPrior
from scaling_jax.laws.bayes.infer import NutsConfig
from scaling_jax.laws.fit import predict

LAW = {"E": 1.84, "a": 212.0, "b": 367.0, "eta": 0.136}
SIZES = (1.06e7, 7.9e7, 1.54e8, 4.12e8)
MULTS = (10.0, 20.0, 40.0, 80.0)
FAST = NutsConfig(num_warmup=300, num_samples=400, num_chains=1, target_accept_prob=0.95)


def ladder(seed=0, drift=0.0, noise=0.003):
    """4 x 4 runs of Eq. 4; ``drift`` bends the law: ln L gains drift * (ln C - ln C_0)^2."""
    N, M = (a.ravel() for a in np.meshgrid(SIZES, MULTS, indexing="ij"))
    D, C = N * M, 6 * N * N * M
    L = predict("overtrain", LAW, C=C, M=M) * np.exp(drift * np.log(C / C.min()) ** 2)
    L = L * np.exp(noise * np.random.default_rng(seed).standard_normal(N.size))
    return {"N": N, "D": D, "loss": L}


def test_residuals_come_from_the_ladder_only_one_group_per_cut():
    pts = ladder()
    x = {"C": 6 * pts["N"] * pts["D"], "M": pts["D"] / pts["N"]}
    cr = rolling_residuals("overtrain", x, pts["loss"], pts["N"], pts["D"], n_resamples=16)
    assert cr.axis == "N" and cr.cuts == (7.9e7, 1.54e8)
    res = cr.residuals
    # cut at 2 sizes scores the 8 runs of the 2 larger sizes, cut at 3 the 4 of the largest
    assert [p["n_scored"] for p in cr.per_cut] == [8, 4] and len(res.mu) == 12
    assert sorted(np.bincount(res.group)) == [4, 8]
    # every residual is a measured ladder value: no target, no run outside the ladder
    assert set(np.round(np.exp(res.log_y), 10)) <= set(np.round(pts["loss"], 10))
    assert np.all(res.dist_PxK[:, 0] > 0)  # scored runs lie beyond their cut's fit runs in C


@pytest.fixture(scope="module")
def calibrated():
    """One self-calibration of a 4 x 4 ladder with downstream errors (loss and error laws)."""
    pts = ladder()
    pts["error"] = predict("error", {"epsilon": 0.8, "k": 3.0, "gamma": 0.6}, L=pts["loss"]) * np.exp(
        0.004 * np.random.default_rng(1).standard_normal(16))
    return pts, self_calibrate("overtrain", pts, n_resamples=8, config=FAST)


def test_self_calibration_reads_the_ladder_it_is_given_for_both_laws(calibrated):
    """The forecast's targets are never inside a fit or a calibration cut: self_calibrate sees only
    the runs it is given (the CLI: the runs the law is fitted on; the testbed: those up to the fit's
    compute, see tests/paper), and the loss and error laws are cut alike."""
    pts, sc = calibrated
    assert sc.info["loss"]["n_residuals"] == 12 and "self" in sc.loss.source
    assert sc.error is not None and sc.error.axes == ("L",) and sc.info["error"]["n_residuals"] == 12
    assert sc.info["loss"]["hyperprior"]["tau_C"] == "HalfNormal(0.01)"
    assert np.all(np.isfinite(sc.loss.tau_DxK)) and np.all(sc.loss.tau_DxK >= 0)


def test_a_drifting_exponent_teaches_faster_misfit_growth_than_a_law_that_holds():
    held = self_calibrate("overtrain", ladder(), n_resamples=32, config=FAST)
    # a bend of 0.004 (ln C/C_0)^2 teaches tau 0.0100 against 0.0030 for the law that holds; at 0.002
    # the 12 residuals did not tell the two apart (0.0038 against 0.0030)
    bent = self_calibrate("overtrain", ladder(drift=-0.004), n_resamples=32, config=FAST)
    tau = lambda sc: np.median(sc.loss.tau_DxK[:, 0])  # noqa: E731 - along ln C
    assert tau(bent) > 2 * tau(held), (tau(bent), tau(held))
    # and the law that holds lands below the prior's own median (0.0067 per e-fold)
    assert tau(held) < np.median(prior_discrepancy("loss", 4000).tau_DxK[:, 0])


def test_hyperprior_from_a_calibration_file_and_bad_calibrate_values():
    disc = prior_discrepancy("loss", 2000)
    hp = HyperPrior.from_draws(disc)
    assert hp.family == "log_normal" and len(hp.loc) == 4 and min(hp.scale) >= 0.5
    assert HyperPrior.default("loss").scale[0] == 0.01 and HyperPrior.widened("loss").scale[0] == pytest.approx(0.1)
    assert parse_calibrate("self+cal.json", ("self",)) == ("self", "cal.json")
    assert parse_calibrate("others", ("others", "none", "self")) == ("others", None)
    for bad in ("selff", "self+", "others+x.json"):
        with pytest.raises(UserError, match="--calibrate"):
            parse_calibrate(bad, ("others", "none", "self"))
    with pytest.raises(UserError, match="ladder cannot be cut"):
        two = {k: v[:8] for k, v in ladder().items()}  # two sizes: no size cut
        self_calibrate("overtrain", two, n_resamples=4, config=FAST)


@pytest.mark.slow
def test_self_calibrated_lm_bands_cover_known_law_ladders():
    """20 ladders drawn from a known law, target 8x beyond the largest run: the lm bootstrap
    widened by the self-calibrated discrepancy covers the truth at (at least) its nominal rate."""
    from scaling_jax.laws.fit_report import fit_points

    N_t, M_t = 2.33e9, 20.0
    covered = []
    for seed in range(20):
        pts = ladder(seed)
        rng = np.random.default_rng(1000 + seed)
        truth = float(predict("overtrain", LAW, C=6 * N_t**2 * M_t, M=M_t)) * np.exp(0.003 * rng.standard_normal())
        disc = self_calibrate("overtrain", pts, n_resamples=16, config=FAST, seed=seed).loss
        rep = fit_points(pts, "overtrain", "lm", n_bootstrap=100, seed=seed, loss_discrepancy=disc,
                         targets=[{"N": N_t, "D": N_t * M_t, "C": 6 * N_t**2 * M_t, "M": M_t}])
        q = rep.body["predictions"][0]["loss"]
        covered.append(q["lo95"] <= truth <= q["hi95"])
    assert np.mean(covered) >= 0.9, np.mean(covered)
