"""Plans from a downstream route's draws (issue 30: ``plan --posterior downstream_draws.npz``): the
cheapest run whose task-mean error reaches a target with probability p, the error-optimal split of a
budget, candidates' bands and odds.

The draws (``laws.downstream.DownstreamFit``: both steps of every task) are evaluated on a grid of
(N, M) with one set of standard normals per draw, shared by every (N, M) (common random numbers),
so P(mean error ≤ target) = the share of draws whose chained forecast reaches it is a smooth
function of the run, not Monte Carlo noise from point to point. At each multiplier the smallest N
that reaches p is found on a ln N grid and bisected; the multiplier of least lifetime FLOPs
6·N·D + 2·N·D_inf wins (Sardana et al. 2023, as ``plan.inference``). Like the Eq. 4 plan's, P(reach)
need not rise with N for ever (the discrepancy grows with distance), so the grid is scanned, not
bracketed from its end.
"""

from __future__ import annotations

import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws.bayes.design import error_distance, loss_distance
from scaling_jax.laws.downstream import DownstreamFit, step1_predict, step2_accuracy
from scaling_jax.plan.allocation import interval
from scaling_jax.plan.inference import P_CURVE, check_target

LOG_N = (np.log(1e4), np.log(1e13))
M_GRID = np.geomspace(1.0, 1e4, 41)
N_STEPS = 48
BISECTIONS = 20


class MeanError:
    """The fit's chained task-mean error draws at any (N, D), with fixed normals per draw."""

    def __init__(self, fit: DownstreamFit, seed: int = 0):
        self.fit = fit
        rng = np.random.default_rng(seed)
        self.z1 = rng.standard_normal((fit.n_draws, len(fit.step1)))
        self.z2 = rng.standard_normal((fit.n_draws, len(fit.step2)))

    def __call__(self, N, D) -> np.ndarray:
        """(draws, P) task-mean error at targets (N, D)."""
        N, D = np.atleast_1d(np.asarray(N, np.float64)), np.atleast_1d(np.asarray(D, np.float64))
        xs = []
        for k, s in enumerate(self.fit.step1):
            law = step1_predict(s.law, s.params, N, D)
            var = s.sigma[:, None] ** 2
            if s.discrepancy is not None:
                var = var + s.discrepancy.take(len(law)).sd(loss_distance(s.support, 6.0 * N * D, D / N)) ** 2
            xs.append(law * np.exp(np.sqrt(var) * self.z1[:, k, None]))
        accs = []
        for t, s in enumerate(self.fit.step2):
            L = xs[s.source]
            acc = step2_accuracy(s.form, {k: v[:, None] for k, v in s.params.items()}, L, s.chance)
            var = s.sigma[:, None] ** 2
            if s.discrepancy is not None:
                var = var + s.discrepancy.take(len(L)).sd(error_distance(s.support, L)) ** 2
            z = np.sqrt(var) * self.z2[:, t, None]
            acc = 1.0 - np.maximum(1.0 - acc, 1e-3) * np.exp(z) if s.noise == "log_error" else acc + z
            accs.append(np.clip(acc, 0.0, 1.0))
        return 1.0 - np.mean(accs, axis=0)

    def p_reach(self, N, D, target: float) -> np.ndarray:
        return np.mean(self(N, D) <= target, axis=0)


def _lifetime(N, M, D_inf):
    return 6.0 * N * N * M + 2.0 * N * D_inf


def _smallest_N(me: MeanError, M: float, target: float, p: float) -> float | None:
    """The smallest N (at multiplier M) with P(reach) ≥ p: the first grid point that reaches it, bisected
    against the one before (None when none does)."""
    grid = np.linspace(*LOG_N, N_STEPS)
    P = me.p_reach(np.exp(grid), M * np.exp(grid), target)
    ok = np.flatnonzero(P >= p)
    if not ok.size:
        return None
    j = int(ok[0])
    if j == 0:
        return float(np.exp(grid[0]))
    lo, hi = grid[j - 1], grid[j]
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        if me.p_reach(np.exp([mid]), M * np.exp([mid]), target)[0] >= p:
            hi = mid
        else:
            lo = mid
    return float(np.exp(hi))


def _run(me: MeanError, N: float, M: float, D_inf: float, target: float | None) -> dict:
    err = me([N], [M * N])[:, 0]
    out = {"N": float(N), "D": float(M * N), "M": float(M), "train_flops": float(6.0 * N * N * M),
           "lifetime_flops": float(_lifetime(N, M, D_inf)), "mean_error": interval(err)}
    if target is not None:
        out["p_reach"] = float(np.mean(err <= target))
    return out


def cheapest(me: MeanError, target: float, p: float, D_inf: float, M_grid=M_GRID) -> dict | None:
    best = None
    for M in M_grid:
        N = _smallest_N(me, float(M), target, p)
        if N is not None and (best is None or _lifetime(N, M, D_inf) < _lifetime(*best, D_inf)):
            best = (N, float(M))
    return None if best is None else _run(me, *best, D_inf, target)


def best_reach(me: MeanError, target: float, D_inf: float) -> dict:
    """The run of highest P(reach) on the (N, M) grid."""
    grid = np.exp(np.linspace(*LOG_N, N_STEPS))
    NN, MM = np.meshgrid(grid, M_GRID)
    P = me.p_reach(NN.ravel(), (NN * MM).ravel(), target)
    i = int(np.argmax(P))
    return _run(me, NN.ravel()[i], MM.ravel()[i], D_inf, target)


def inference_aware(me: MeanError, target: float, D_inf: float, p: float) -> dict:
    check_target(target, True, D_inf, p)
    out = {"L_target": None, "Err_target": target, "D_inf": D_inf, "p": p,
           "best_p_reach": best_reach(me, target, D_inf)}
    plan = cheapest(me, target, p, D_inf)
    if plan is None:
        b = out["best_p_reach"]
        out |= {"reachable": False, "N": None, "D": None, "M": None, "train_flops": None, "lifetime_flops": None,
                "p_reach": None, "reason": f"target task-mean error {target:g} is not reached with probability {p:g} "
                                           f"by any run of 1e4 to 1e13 parameters: the best P(reach) is "
                                           f"{b['p_reach']:.3g}, at N = {b['N']:.3g}, M = {b['M']:.3g}"}
    else:
        out |= {"reachable": True, **plan}
    coarse = M_GRID[::4]
    curve = []
    for q in P_CURVE:
        r = cheapest(me, target, q, D_inf, coarse)
        curve.append({"p": q, **({"lifetime_flops": None, "N": None, "M": None} if r is None else
                                 {k: r[k] for k in ("lifetime_flops", "N", "M")})})
    out["cost_curve"] = curve
    return out


def error_optimal(me: MeanError, C: float) -> dict:
    """At budget C: the multiplier whose median task-mean error is lowest, and the band there."""
    N = np.sqrt(C / (6.0 * M_GRID))
    med = np.median(me(N, M_GRID * N), axis=0)
    i = int(np.argmin(med))
    return {"C": float(C), "rule": "the token multiplier of least median task-mean error at this compute",
            "M": float(M_GRID[i]), "N": float(N[i]), "D": float(M_GRID[i] * N[i]),
            "mean_error": interval(me([N[i]], [M_GRID[i] * N[i]])[:, 0]),
            "median_by_M": [{"M": float(m), "median": float(v)} for m, v in zip(M_GRID, med)]}


def downstream_plan(fit: DownstreamFit, *, budget=None, target_error=None, D_inf: float = 0.0, p: float = 0.9,
                    candidates=None, seed: int = 0, source: str = "") -> dict:
    """The ``plan.json`` body from a downstream route's draws."""
    if budget is None and target_error is None and candidates is None:
        raise UserError("nothing to plan: give --budget, --target-error or --candidates")
    me = MeanError(fit, seed)
    plan = {"posterior": {"from": source, "law": "downstream", **fit.route.to_json(), "estimator": fit.estimator,
                          "draws": fit.n_draws, "outputs": list(fit.outputs)}}
    if budget is not None:
        plan["compute_optimal"] = error_optimal(me, float(budget))
    if target_error is not None:
        plan["inference_aware"] = inference_aware(me, float(target_error), float(D_inf), float(p))
    if candidates is not None:
        N, M = candidates
        plan["candidates"] = [_run(me, float(n), float(m), float(D_inf), target_error) for n, m in zip(N, M)]
    return plan


def table(plan: dict) -> str:
    post = plan["posterior"]
    lines = [f"downstream route {post['route']} ({post['step1']}/{post['step2']}, {post['estimator']}, "
             f"{post['draws']} draws)"]
    iv = lambda x: f"{x['median']:.4f} [{x['lo95']:.4f}, {x['hi95']:.4f}]"  # noqa: E731
    co = plan.get("compute_optimal")
    if co:
        lines.append(f"at C = {co['C']:.3g}: least median task-mean error at M = {co['M']:.3g} (N = {co['N']:.3g}): "
                     f"{iv(co['mean_error'])}")
    ia = plan.get("inference_aware")
    if ia:
        lines.append(f"inference-aware plan: task-mean error <= {ia['Err_target']:g} with p >= {ia['p']:g}, "
                     f"{ia['D_inf']:.3g} inference tokens:")
        if ia["reachable"]:
            lines.append(f"  N = {ia['N']:.4g}, D = {ia['D']:.4g} (M = {ia['M']:.4g}), train {ia['train_flops']:.4g} "
                         f"FLOPs, lifetime {ia['lifetime_flops']:.4g}, P(reach) = {ia['p_reach']:.3f}, task-mean "
                         f"error {iv(ia['mean_error'])}")
        else:
            lines.append(f"  unreachable: {ia['reason']}")
    for c in plan.get("candidates", []):
        pr = f", P(target) {c['p_reach']:.3f}" if "p_reach" in c else ""
        lines.append(f"  candidate N = {c['N']:.4g}, M = {c['M']:.4g}: task-mean error {iv(c['mean_error'])}{pr}")
    return "\n".join(lines)
