"""``scaling-jax fit --estimator bayes`` and ``--predict`` end to end: fit.json fields, the
ArviZ posterior file, figures, the convergence exit status, and the one code path shared with
the paper's ``posterior`` check."""

import json

import numpy as np
import pytest

from scaling_jax.cli import main
from scaling_jax.laws.fit import predict

LOSS = {"E": 1.9, "a": 180.0, "b": 420.0, "eta": 0.14}
ERR = {"epsilon": 0.9, "k": 2.0, "gamma": 0.9}
SMALL = ["--num-warmup", "300", "--num-samples", "300", "--chains", "2"]


def _csv(path, with_error=True, seed=0):
    rng = np.random.default_rng(seed)
    N = np.repeat([1e7, 3e7, 8e7, 2e8], 3)
    M = np.tile([10.0, 40.0, 160.0], 4)
    L = predict("overtrain", LOSS, C=6 * N * N * M, M=M) * np.exp(0.003 * rng.standard_normal(N.size))
    # Measured errors scatter about Eq. 5 too; exact ones would pin σ_fit of the error law at ~0, a funnel.
    Err = predict("error", ERR, L=L) * np.exp(0.003 * rng.standard_normal(N.size))
    cols = ["N", "D", "loss"] + (["error"] if with_error else [])
    rows = [[n, n * m, y] + ([e] if with_error else []) for n, m, y, e in zip(N, M, L, Err)]
    path.write_text(",".join(cols) + "\n" + "".join(",".join(map(repr, map(float, r))) + "\n" for r in rows))
    return path


def _calibration(path):
    """A calibration file as `posterior` writes one (here: prior draws, under a named source)."""
    from scaling_jax.laws.bayes import Discrepancy, prior_discrepancy, save_calibration

    loss, error = prior_discrepancy("loss", 500, seed=3), prior_discrepancy("error", 500, seed=4)
    save_calibration(path, loss=Discrepancy(loss.floor, loss.tau_DxK, loss.axes, "test sweep"),
                     error=Discrepancy(error.floor, error.tau_DxK, error.axes, "test sweep"), source="test sweep")
    return path


@pytest.fixture(scope="module")
def bayes_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bayes")
    argv = ["fit", "--runs", str(_csv(tmp / "runs.csv")), "--law", "overtrain", "--estimator", "bayes",
            "--predict", "1e9,2e10", "--predict", "C=1e21,M=80", *SMALL, "--calibration",
            str(_calibration(tmp / "cal.json")), "--allow-unconverged", "--out", str(tmp / "o")]
    return main(argv), tmp / "o"


@pytest.mark.slow
def test_bayes_fit_json_predictions_and_files(bayes_run):
    code, out = bayes_run
    assert code == 0
    body = json.loads((out / "fit.json").read_text())
    assert body["estimator"] == "bayes" and body["chained_error_law"] is True
    assert set(body["params"]) >= {"E", "a", "b", "eta", "epsilon", "k", "gamma", "sigma_loss", "sigma_error"}
    for k in ("eta", "epsilon", "gamma"):  # the posterior covers the simulating law's exponents
        lo, hi = body["intervals_95"][k]
        assert lo <= {**LOSS, **ERR}[k] <= hi, (k, lo, hi)
    assert body["priors"]["u_E"].startswith("Beta(") and body["priors"]["sigma_loss"].startswith("LogNormal(")
    d = body["diagnostics"]
    assert d["max_rhat"] < 1.05 and d["converged"] == (d["divergences"] <= 0.01 * 600)
    assert body["nuts"]["num_chains"] == 2 and body["nuts"]["num_samples"] == 300
    assert body["discrepancy"]["loss"]["source"] == body["discrepancy"]["error"]["source"] == "test sweep"
    p1, p2 = body["predictions"]
    assert p1["N"] == 1e9 and p1["D"] == 2e10 and p1["M"] == 20 and p1["C"] == pytest.approx(1.2e20)
    assert p2["M"] == 80 and p2["C"] == pytest.approx(1e21) and p2["D"] == pytest.approx(80 * p2["N"])
    for row in (p1, p2):
        true_loss = float(predict("overtrain", LOSS, C=row["C"], M=row["M"]))
        q = row["loss"]
        assert q["lo95"] < q["lo90"] < q["lo50"] < q["median"] < q["hi50"] < q["hi90"] < q["hi95"]
        assert q["lo95"] <= true_loss <= q["hi95"]
        e = row["error"]
        assert e["lo95"] <= float(predict("error", ERR, L=true_loss)) <= e["hi95"]
    import arviz as az

    idata = az.from_netcdf(out / "posterior.nc")
    assert idata.posterior["eta"].shape == (2, 300) and "sample_stats" in idata.groups()
    for png in ("trace.png", "pair.png", "fit_bands.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_unconverged_bayes_fit_exits_3_unless_allowed(tmp_path, capsys):
    csv = _csv(tmp_path / "runs.csv")  # the fixture's runs: the compiled sampler is reused from the cache
    tiny = ["--num-warmup", "3", "--num-samples", "8", "--chains", "2"]
    assert main(["fit", "--runs", str(csv), "--estimator", "bayes", *tiny]) == 3
    out = capsys.readouterr().out
    assert "not converged" in out and "--num-warmup" in out
    assert main(["fit", "--runs", str(csv), "--estimator", "bayes", *tiny, "--allow-unconverged"]) == 0


@pytest.mark.parametrize("estimator", ["lm", "huber"])
def test_point_estimators_predict_with_their_bootstrap(tmp_path, estimator):
    csv = _csv(tmp_path / "runs.csv")
    law = "overtrain" if estimator == "lm" else "chinchilla"
    assert main(["fit", "--runs", str(csv), "--law", law, "--estimator", estimator, "--bootstrap", "40",
                 "--predict", "1e9,2e10", "--out", str(tmp_path / "o")]) == 0
    body = json.loads((tmp_path / "o" / "fit.json").read_text())
    method = body["prediction_method"]
    assert method["loss"]["estimator"] == estimator and method["loss"]["log_residual_scale"] > 0
    assert method["error"]["estimator"] == "lm"  # Eq. 5 has no Huber form
    (row,) = body["predictions"]
    true_loss = float(predict("overtrain", LOSS, C=6e9 * 2e10, M=20.0))
    assert row["loss"]["lo95"] <= true_loss <= row["loss"]["hi95"]
    assert abs(row["loss"]["median"] / true_loss - 1) < 0.02
    assert row["error"]["lo95"] <= float(predict("error", ERR, L=true_loss)) <= row["error"]["hi95"]


def test_predict_file_and_error_law(tmp_path):
    csv = _csv(tmp_path / "runs.csv")
    targets = tmp_path / "targets.csv"
    targets.write_text("L\n2.5\n2.3\n")
    assert main(["fit", "--runs", str(csv), "--law", "error", "--bootstrap", "30", "--predict-file", str(targets),
                 "--predict", "L=2.4", "--out", str(tmp_path / "o")]) == 0
    rows = json.loads((tmp_path / "o" / "fit.json").read_text())["predictions"]
    assert [r["L"] for r in rows] == [2.4, 2.5, 2.3]
    for r in rows:
        assert r["error"]["lo95"] <= float(predict("error", ERR, L=r["L"])) <= r["error"]["hi95"]
        assert "loss" not in r


@pytest.mark.slow
def test_posterior_file_is_read_back_for_planning(bayes_run, tmp_path):
    """The posterior.nc that fit writes records the law, support and discrepancy: `plan` rebuilds
    the same laws from it (same draws, same calibrated discrepancy) and checks the training set."""
    from scaling_jax.errors import UserError
    from scaling_jax.laws import forms
    from scaling_jax.laws.bayes.posterior_file import read_posterior

    _, out = bayes_run
    post = read_posterior(out / "posterior.nc")
    assert post.law == "overtrain" and post.dataset == "" and post.error_law is not None
    assert len(post.loss_law.E) == 600 and post.loss_law.discrepancy.source == "test sweep"
    with pytest.raises(UserError, match="records no training set"):
        read_posterior(out / "posterior.nc", dataset="rpj")
    assert main(["plan", "--posterior", str(out / "posterior.nc"), "--budget", "1e21", "--no-plots",
                 "--out", str(tmp_path / "p")]) == 0
    m_star = json.loads((tmp_path / "p" / "plan.json").read_text())["compute_optimal"]["M_star"]
    assert m_star["lo95"] <= float(forms.optimal_multiplier(LOSS)) <= m_star["hi95"]
