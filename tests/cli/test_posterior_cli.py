import json

import pytest

from scaling_jax.cli import main
from scaling_jax.laws.bayes import load_calibration


@pytest.mark.slow
def test_posterior_on_the_testbed_writes_the_issue_shape(testbed_dir, tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["posterior", "--testbed", str(testbed_dir), "--out", str(out), "--datasets", "rpj",
            "--num-warmup", "100", "--num-samples", "100", "--chains", "2", "--bootstrap", "100", "--no-pooling"]
    assert main(argv) == 0
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
        assert len(d.floor) == 200 and d.tau_DxK.shape == (200, len(axes))
    assert "bayes loss" in capsys.readouterr().out


def test_unknown_dataset_is_a_one_line_error(testbed_dir, tmp_path, capsys):
    argv = ["posterior", "--testbed", str(testbed_dir), "--out", str(tmp_path), "--datasets", "pile"]
    assert main(argv) == 2
    assert "pile" in capsys.readouterr().err
