import json

import numpy as np
import pytest

from scaling_jax.cli import main
from scaling_jax.laws.fit import predict


def _csv(tmp_path):
    N = np.repeat([1e7, 3e7, 8e7, 1.5e8], 3)
    M = np.tile([10.0, 40.0, 320.0], 4)
    D = N * M
    loss = predict("chinchilla", {"E": 1.8, "A": 400.0, "B": 900.0, "alpha": 0.3, "beta": 0.28}, N=N, D=D)
    p = tmp_path / "runs.csv"
    p.write_text("N,D,loss\n" + "".join(f"{n},{d},{v}\n" for n, d, v in zip(N, D, loss)))
    return p


def test_fit_csv_writes_fit_json(tmp_path, capsys):
    p = _csv(tmp_path)
    assert main(["fit", "--runs", str(p), "--law", "chinchilla", "--out", str(tmp_path / "o"),
                 "--bootstrap", "20"]) == 0
    out = json.loads((tmp_path / "o" / "fit.json").read_text())
    assert out["law"] == "chinchilla" and out["estimator"] == "lm"
    assert set(out["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert abs(out["params"]["alpha"] - 0.3) < 1e-4 and out["converged"] is True
    assert set(out["identifiability"]) >= {"condition_number", "correlations", "warnings"}
    assert out["bootstrap"]["n_resamples"] == 20
    assert "alpha" in capsys.readouterr().out


def test_fit_csv_chinchilla_lm_predicts(tmp_path):
    """lm/huber bootstraps of Eq. 3 predict from the targets' N, D (not the Bayesian laws' C, M)."""
    p = _csv(tmp_path)
    assert main(["fit", "--runs", str(p), "--law", "chinchilla", "--out", str(tmp_path / "o"), "--bootstrap", "20",
                 "--predict", "1e9,2e10"]) == 0
    (row,) = json.loads((tmp_path / "o" / "fit.json").read_text())["predictions"]
    truth = predict("chinchilla", {"E": 1.8, "A": 400.0, "B": 900.0, "alpha": 0.3, "beta": 0.28}, N=1e9, D=2e10)
    assert abs(row["loss"]["median"] / float(truth) - 1) < 1e-3
    assert row["loss"]["lo95"] <= row["loss"]["median"] <= row["loss"]["hi95"]


def test_fit_testbed_error_law(testbed_dir, testbed, tmp_path):
    assert main(["fit", "--runs", str(testbed_dir), "--dataset", "rpj", "--law", "error", "--bootstrap", "0",
                 "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "fit.json").read_text())
    assert set(out["params"]) == {"epsilon", "k", "gamma"}
    # The values: SciPy's LM started 10 % away returns to the same optimum, no lower residual.
    from scipy.optimize import curve_fit

    runs = testbed.select(dataset="rpj").runs
    L = np.array([r.loss("c4_val") for r in runs])
    err = np.array([r.err_17 for r in runs])
    law = lambda L, epsilon, k, gamma: epsilon - k * np.exp(-gamma * L)  # noqa: E731
    p = [out["params"][k] for k in ("epsilon", "k", "gamma")]
    ref, _ = curve_fit(law, L, err, p0=[1.1 * v for v in p], maxfev=20000)
    np.testing.assert_allclose(p, ref, rtol=1e-3)
    assert out["objective"] == pytest.approx(float(np.sum((law(L, *p) - err) ** 2)), rel=1e-6)
    assert out["objective"] <= float(np.sum((law(L, *ref) - err) ** 2)) * (1 + 1e-9)


def test_bad_csv_names_line_and_column(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("N,D,loss\n1e7,2e8,4.0\n1e8,x,3.0\n")
    assert main(["fit", "--runs", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "bad.csv:3: column 'D' is not a number: 'x'" in capsys.readouterr().err
    p.write_text("N,loss\n1,2\n")
    assert main(["fit", "--runs", str(p)]) == 2
    assert "missing column(s) ['D']" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_huber_intervals_come_from_huber_refits(testbed_dir, tmp_path, capsys):
    # Issue 9: the LM bootstrap's E interval [-2.27, 1.78] was printed beside the Huber E = 1.720.
    assert main(["fit", "--runs", str(testbed_dir), "--dataset", "rpj", "--law", "chinchilla", "--estimator", "huber",
                 "--bootstrap", "50", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "fit.json").read_text())
    assert out["estimator"] == "huber" and out["bootstrap"]["estimator"] == "huber"
    assert out["bootstrap"]["n_kept"] >= 45
    ci = out["bootstrap"]["intervals_95"]
    for k, v in out["params"].items():
        assert ci[k][0] <= v <= ci[k][1], k
    assert 0 < ci["E"][0] < ci["E"][1] < 2.0
    assert "bootstrap (huber refits): " in capsys.readouterr().out


def test_lm_fit_json_names_the_bootstrap_estimator(tmp_path):
    assert main(["fit", "--runs", str(_csv(tmp_path)), "--law", "overtrain", "--out", str(tmp_path),
                 "--bootstrap", "10"]) == 0
    assert json.loads((tmp_path / "fit.json").read_text())["bootstrap"]["estimator"] == "lm"
