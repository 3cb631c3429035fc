"""``scaling-jax plan`` end to end from a posterior file (synthetic draws written as
``fit --estimator bayes`` writes posterior.nc, so no sampler runs here): plan.json's fields, the
table, the figures, and an unreachable target as an explicit result."""

import json

import pytest

from scaling_jax.cli import main
from tests.conftest import synthetic_posterior_file


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan")
    post = synthetic_posterior_file(tmp / "posterior.nc", n=400)
    argv = ["plan", "--posterior", str(post), "--dataset", "rpj", "--budget", "1e22", "--target-loss", "2.6",
            "--inference-tokens", "1e12", "--candidates", "6.9e9:20,1.4e9:D=2.9e10", "--next-run",
            "--out", str(tmp / "o")]
    return main(argv), tmp / "o"


def test_plan_json_fields_table_and_figures(planned, capsys):
    code, out = planned
    assert code == 0
    plan = json.loads((out / "plan.json").read_text())
    co = plan["compute_optimal"]
    assert set(co) >= {"C", "M_star", "N", "D", "loss", "error"} and co["C"] == 1e22
    for k in ("M_star", "N", "D", "loss", "error"):
        assert set(co[k]) - {"nonpositive_share"} == {"median", "lo95", "hi95"}
        assert co[k]["lo95"] <= co[k]["median"] <= co[k]["hi95"]
    assert co["error"]["nonpositive_share"] == 0.0 and "nonpositive_share" not in co["loss"]
    ia = plan["inference_aware"]
    assert set(ia) >= {"L_target", "D_inf", "p", "N", "D", "M", "train_flops", "lifetime_flops", "p_reach",
                       "median_plan"}
    assert ia["L_target"] == 2.6 and ia["p"] == 0.9 and ia["p_reach"] >= 0.9 - 1e-3
    assert ia["lifetime_flops"] == pytest.approx(ia["train_flops"] + 2 * ia["N"] * 1e12)
    best = ia["best_p_reach"]  # issue 36: the best P(reach) of any run, and where, in plan.json and the table
    assert set(best) >= {"N", "M", "D", "p_reach", "lifetime_flops"} and best["p_reach"] >= ia["p_reach"]
    from scaling_jax.plan.report import table

    assert f"best P(reach) of any run: {best['p_reach']:.3f} at N = {best['N']:.4g}" in table(plan)
    c1, c2 = plan["candidates"]
    assert set(c1) == {"N", "M", "D", "C", "loss", "error", "p_target"}
    assert c2["D"] == pytest.approx(2.9e10) and c2["M"] == pytest.approx(2.9e10 / 1.4e9)
    assert c1["p_target"] > c2["p_target"]  # the bigger run is likelier to reach 2.6
    nr = plan["next_run"]
    assert set(nr["target"]) == {"N", "M"} and nr["target"]["N"] == ia["N"]
    widths = [r["expected_width_95"] for r in nr["ranked"]]
    assert widths == sorted(widths) and all(set(r) >= {"N", "M", "C", "expected_width_95"} for r in nr["ranked"])
    assert sorted((r["N"], r["M"]) for r in nr["ranked"]) == sorted((c["N"], c["M"]) for c in (c1, c2))
    assert plan["posterior"]["dataset"] == "rpj" and "max_rhat" in plan["posterior"]["diagnostics"]
    for png in ("iso_loss.png", "m_star.png", "cost_vs_p.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_unreachable_target_is_a_result_not_nan(tmp_path, capsys):
    post = synthetic_posterior_file(tmp_path / "posterior.nc", n=200)
    assert main(["plan", "--posterior", str(post), "--target-loss", "1.0", "--no-plots", "--out",
                 str(tmp_path / "o")]) == 0
    text = (tmp_path / "o" / "plan.json").read_text()
    ia = json.loads(text)["inference_aware"]
    assert ia["reachable"] is False and ia["p_reachable"] == 0.0 and ia["N"] is None
    assert "NaN" not in text
    assert "unreachable" in capsys.readouterr().out


def test_candidates_from_a_sweep_spec_are_its_unfitted_runs(tmp_path):
    from pathlib import Path

    from scaling_jax.sweep.spec import expand, load_spec

    spec = Path(__file__).resolve().parents[2] / "configs" / "sweeps" / "paper.yaml"
    post = synthetic_posterior_file(tmp_path / "posterior.nc", n=200)
    assert main(["plan", "--posterior", str(post), "--target-loss", "2.6", "--candidates", str(spec),
                 "--no-plots", "--out", str(tmp_path / "o")]) == 0
    got = json.loads((tmp_path / "o" / "plan.json").read_text())["candidates"]
    want = [r for r in expand(load_spec(spec)) if r.role != "fit"]
    assert len(got) == len(want) == 104 - 18
    assert [c["N"] for c in got] == pytest.approx([r.N for r in want])
    assert [c["M"] for c in got] == pytest.approx([r.M for r in want])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:NUTS. R-hat")  # a deliberately short chain
def test_recipe_all_fits_every_run_of_the_set_on_the_fly(testbed, testbed_dir, tmp_path):
    """`plan --testbed DIR --recipe all`: Eq. 4 (chained to Eq. 5) fitted on every run of the set,
    the posterior saved beside plan.json and read back by `plan --posterior` to the same plan."""
    from scaling_jax.laws.bayes.posterior_file import read_posterior
    from scaling_jax.testbed.points_io import testbed_points

    args = ["--budget", "1e22", "--target-loss", "2.6", "--no-plots"]
    assert main(["plan", "--testbed", str(testbed_dir), "--dataset", "rpj", "--recipe", "all", "--chains", "1",
                 "--num-warmup", "60", "--num-samples", "60", *args, "--out", str(tmp_path / "a")]) == 0
    plan = json.loads((tmp_path / "a" / "plan.json").read_text())
    assert plan["posterior"]["from"].endswith("rpj, recipe all") and plan["posterior"]["draws"] == 60
    post = read_posterior(tmp_path / "a" / "posterior.nc", dataset="rpj")
    assert len(post.loss_law.support.x_FxK) == len(testbed_points(testbed, dataset="rpj")["loss"]) > 5
    assert main(["plan", "--posterior", str(tmp_path / "a" / "posterior.nc"), *args, "--out", str(tmp_path / "b")]) == 0
    again = json.loads((tmp_path / "b" / "plan.json").read_text())
    assert again["compute_optimal"] == plan["compute_optimal"]
    assert again["inference_aware"]["N"] == pytest.approx(plan["inference_aware"]["N"], rel=1e-6)
