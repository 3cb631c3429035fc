"""Downstream laws (issue 30): every route recovers the laws it was drawn from, the point estimators'
bands cover at their nominal rate over repeated ladders, step 2 alone, the draws file."""

import numpy as np
import pytest

from scaling_jax.errors import UserError
from scaling_jax.laws.downstream import Route, fit_downstream, layout, load_fit, save_fit, step1_predict
from tests.laws.downstream_sim import (
    CEILING,
    CHANCE,
    SIGMOID_LOSS,
    SIGMOID_TL,
    TARGETS,
    TASK_LOSS,
    ladder,
    sigmoid_acc,
    truth,
)  # fmt: skip

B = 50  # resamples: the same shapes in every test here, so each route compiles once
QUIET = {"loss": 0.001, "task_loss": 0.002, "acc": 0.002}  # a quarter of the usual noise or less


@pytest.mark.parametrize("route,estimator", [("two-step", "lm"), ("per-task", "lm"), ("paper", "lm"),
                                             ("two-step", "huber")])
def test_every_route_recovers_the_laws_it_was_drawn_from(route, estimator):
    p = ladder(route, seed=1, noise=QUIET)
    f = fit_downstream(p, Route.make(route), estimator, n_bootstrap=B)
    pp = f.point_params()
    N, D = np.array([n for n, _ in TARGETS]), np.array([n * m for n, m in TARGETS])
    true = truth(route, N, D)
    if route == "two-step":
        for t, (law, sig) in enumerate(zip(TASK_LOSS, SIGMOID_TL)):
            got = pp["step1"][f"task_loss:{t and 't1' or 't0'}"]
            # Eq. 3's five parameters trade off along a ridge; its exponents and its forecast are pinned
            assert got["alpha"] == pytest.approx(law["alpha"], abs=0.03) and got["beta"] == pytest.approx(
                law["beta"], abs=0.03)
            pred = step1_predict("chinchilla", {k: np.array([v]) for k, v in got.items()}, N, D)[0]
            assert pred == pytest.approx(true["task_loss"][:, t], rel=0.02)
            s2 = pp["step2"][f"t{t}"]
            assert s2["k"] == pytest.approx(sig["k"], rel=0.1) and s2["L0"] == pytest.approx(sig["L0"], rel=0.05)
            assert s2["a"] == pytest.approx((CEILING[t] - CHANCE[t]) * (1 + np.exp(-sig["k"] * sig["L0"])), rel=0.02)
    elif route == "per-task":
        assert pp["step1"]["loss"]["eta"] == pytest.approx(0.13, rel=0.1)
        for t, sig in enumerate(SIGMOID_LOSS):
            s2 = pp["step2"][f"t{t}"]
            assert s2["k"] == pytest.approx(sig["k"], rel=0.1) and s2["L0"] == pytest.approx(sig["L0"], rel=0.05)
    else:
        assert pp["step1"]["loss"]["eta"] == pytest.approx(0.13, rel=0.1)
        # Eq. 5's (epsilon, k, gamma) trade off too: the law it fits is pinned over and beyond the ladder
        L = np.linspace(p.loss.min(), p.loss.max() * 0.97, 5)
        s2 = pp["step2"]["mean"]
        got = s2["epsilon"] - s2["k"] * np.exp(-s2["gamma"] * L)
        assert got == pytest.approx(0.9 - 3.0 * np.exp(-0.75 * L), rel=0.02)
    # the chained median forecast of the task mean at targets 8-12x beyond the ladder
    med = np.median(f.draws(N, D)["mean_accuracy"], axis=0)
    assert med == pytest.approx(true["acc"].mean(1), abs=0.01)


def test_lm_bands_cover_at_their_nominal_rate_over_repeated_ladders():
    """30 ladders drawn from one two-step law, each fitted alone: the 95 % (50 %) bands of the task
    mean and of each task's accuracy at two targets 8-12x beyond cover the measured values of ~95 %
    (~50 %) of them."""
    cov95, cov50, cov_task = [], [], []
    for s in range(30):
        p = ladder("two-step", seed=100 + s, extra=TARGETS)
        f = fit_downstream(p.subset(np.arange(16)), Route.make("two-step"), "lm", n_bootstrap=B, seed=s)
        d = f.draws(p.N[16:], p.D[16:], seed=s)
        y = p.acc[16:].mean(1)
        lo, q25, q75, hi = np.percentile(d["mean_accuracy"], [2.5, 25, 75, 97.5], axis=0)
        cov95 += list((lo <= y) & (y <= hi))
        cov50 += list((q25 <= y) & (y <= q75))
        lo, hi = np.percentile(d["accuracy"], [2.5, 97.5], axis=0)
        cov_task += list(((lo <= p.acc[16:]) & (p.acc[16:] <= hi)).ravel())
    assert 0.85 <= np.mean(cov95) <= 1.0 and 0.85 <= np.mean(cov_task) <= 1.0
    assert 0.3 <= np.mean(cov50) <= 0.7


def test_step2_alone_reads_the_measured_loss():
    """From a given task loss the accuracy draws are the step-2 law's (no step-1 uncertainty)."""
    p = ladder("two-step", seed=2, noise=QUIET)
    f = fit_downstream(p, Route.make("two-step"), "lm", n_bootstrap=B)
    x = np.array([[0.6, 0.7]])
    acc = np.median(f.accuracy_draws(x), axis=0)[0]
    want = [sigmoid_acc(s, x[0, t], CHANCE[t], CEILING[t]) for t, s in enumerate(SIGMOID_TL)]
    assert acc == pytest.approx(want, abs=0.01)


def test_two_step_needs_task_losses_and_the_draws_file_round_trips(tmp_path):
    p = ladder("two-step", seed=3)
    no_tl = type(p)(**{**p.__dict__, "task_loss": None})
    with pytest.raises(UserError, match="carry no task losses"):
        layout(no_tl, Route.make("two-step"))
    assert layout(no_tl, Route.make("per-task")).names == ("loss",)
    with pytest.raises(UserError, match="step 1 eq3|step-1 form"):
        Route.make("two-step", "eq9/sigmoid")
    f = fit_downstream(p, Route.make("two-step"), "lm", n_bootstrap=B)
    g = load_fit(save_fit(f, tmp_path / "d.npz"))
    assert g.route == f.route and g.outputs == f.outputs
    N, D = np.array([6.4e8]), np.array([1.28e10])
    np.testing.assert_allclose(g.draws(N, D, seed=4)["accuracy"], f.draws(N, D, seed=4)["accuracy"])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a downstream fit"):
        load_fit(tmp_path / "bad.npz")
