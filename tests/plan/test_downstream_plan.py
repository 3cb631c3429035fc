"""Plans from a downstream route's draws (issue 30): ``plan --posterior downstream_draws.npz
--target-error`` finds the cheapest run whose task-mean error reaches the target with probability p."""

import json

import numpy as np
import pytest

from scaling_jax.cli import main
from scaling_jax.laws.bayes.design import Support, log_cm
from scaling_jax.laws.downstream import DownstreamFit, Route, Step1Draws, Step2Draws, save_fit
from scaling_jax.plan.downstream import MeanError
from tests.laws.downstream_sim import CEILING, CHANCE, SIGMOID_TL, TASK_LOSS


def known_fit(n: int = 400, spread: float = 0.02, seed: int = 0) -> DownstreamFit:
    """Draws scattered around the simulated two-step ladder's own laws (no fitting)."""
    rng = np.random.default_rng(seed)
    draw = lambda v: v * np.exp(spread * rng.standard_normal(n))  # noqa: E731
    sup = Support(log_cm([1e17, 1e18], [10.0, 20.0]))
    step1 = [Step1Draws(f"task_loss:t{t}", "chinchilla", {k: draw(v) for k, v in law.items()}, np.full(n, 0.01), sup)
             for t, law in enumerate(TASK_LOSS)]
    step2 = []
    for t, s in enumerate(SIGMOID_TL):
        a = (CEILING[t] - CHANCE[t]) * (1 + np.exp(-s["k"] * s["L0"]))
        step2.append(Step2Draws(f"t{t}", "sigmoid", {"a": np.full(n, a), "k": draw(s["k"]), "L0": draw(s["L0"])},
                                np.full(n, 0.01), "accuracy", float(CHANCE[t]), float(CEILING[t]), t,
                                Support(np.log([[0.5], [1.0]]))))
    return DownstreamFit(Route.make("two-step"), "lm", step1, step2)


def test_plan_finds_the_cheapest_run_that_reaches_the_target(tmp_path, capsys):
    fit = known_fit()
    path = save_fit(fit, tmp_path / "downstream_draws.npz")
    out = tmp_path / "plan"
    assert main(["plan", "--posterior", str(path), "--target-error", "0.14", "--p", "0.9", "--inference-tokens", "1e11",
                 "--budget", "1e19", "--candidates", "6.4e8:20,1e9:20", "--out", str(out)]) == 0
    plan = json.loads((out / "plan.json").read_text())
    ia = plan["inference_aware"]
    assert ia["reachable"] and ia["p_reach"] >= 0.9
    me = MeanError(fit)
    N, M = ia["N"], ia["M"]
    assert me.p_reach([N * 0.97], [M * N * 0.97], 0.14)[0] < 0.9  # a smaller run at that M falls short
    assert plan["compute_optimal"]["mean_error"]["lo95"] < plan["compute_optimal"]["mean_error"]["median"]
    assert [c["N"] for c in plan["candidates"]] == [6.4e8, 1e9]
    assert plan["candidates"][1]["p_reach"] >= plan["candidates"][0]["p_reach"]
    cost = [c["lifetime_flops"] for c in ia["cost_curve"] if c["lifetime_flops"] is not None]
    assert cost == sorted(cost)  # surer costs more
    assert "inference-aware plan" in capsys.readouterr().out
    # an unreachable target says so; a loss target is not what a downstream route forecasts
    assert main(["plan", "--posterior", str(path), "--target-error", "0.01", "--out", str(tmp_path / "p2")]) == 0
    assert json.loads((tmp_path / "p2" / "plan.json").read_text())["inference_aware"]["reachable"] is False
    capsys.readouterr()
    assert main(["plan", "--posterior", str(path), "--target-loss", "2.5", "--out", str(tmp_path / "p3")]) == 2
    assert "forecasts the task-mean error" in capsys.readouterr().err


def test_common_random_numbers_make_p_reach_smooth_in_N():
    me = MeanError(known_fit())
    N = np.geomspace(2e8, 2e9, 40)
    P = me.p_reach(N, 20 * N, 0.14)
    assert np.all(np.diff(P) >= -0.01) and P[0] < 0.2 and P[-1] > 0.9
    assert me([1e9], [2e10]) == pytest.approx(me([1e9], [2e10]))  # the same draws every call
