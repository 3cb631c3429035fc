"""Inference-aware over-training (Sardana et al. 2023) under a chance constraint.

Given a target loss L* (or downstream error Err*) and D_inf tokens to be served, the run
(N, D) minimising lifetime FLOPs 6·N·D + 2·N·D_inf subject to P(L(N, D) ≤ L*) ≥ p over the
posterior predictive (``draws.p_reach``). At each token multiplier M of a grid the smallest N
that meets the constraint is found by bisection in ln N (the law falls with N at fixed M), all
multipliers at once in one compiled loop; the best M is then refined on a finer grid around
it.

Two deterministic plans are reported beside it. ``median_plan`` is what a point forecast gives:
the run whose median predicted loss (the predictive median every band reports, noise and
discrepancy included, found as the 50 % quantile of the predictive mixture) is at most L*;
the chance constraint at p = 0.5 is the same condition reached by another computation, so the
two must agree (a check of the solver). ``law_median_plan`` uses the posterior-median law
without noise; it differs from both by the skew of the posterior (the mixture's median is not
the median of its centres): on the testbed's Table-1 posteriors by 1-5 % in lifetime cost.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.plan.draws import Draws, median_P, p_reach, p_reach_P, p_reachable, predictive_median_P

LOG_N_RANGE = (np.log(1e5), np.log(1e16))  # parameters searched (1e5 to 1e16)
M_RANGE = (1.0, 1e5)
# Multipliers in the first pass, and around its best in the second: the same count, so both
# passes (and every p of the cost curve) run one compiled program.
COARSE = FINE = 81
BISECTIONS = 26  # ln N to 25/2^26 ≈ 4e-7
P_CURVE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


CRITERIA = ("chance", "median", "law_median")


@functools.partial(jax.jit, static_argnames=("error", "criterion"))
def _smallest_N(dr: Draws, M_G, target, p, error: bool, criterion: str):
    """Per multiplier: the smallest N meeting ``criterion`` (P(reach) ≥ p; the predictive median
    forecast ≤ target; the posterior-median law ≤ target), and whether any N in range does."""

    def slack(log_N):
        N = jnp.exp(log_N)
        C = forms.compute(N, M_G * N)
        if criterion == "median":
            return jnp.log(target) - jnp.log(predictive_median_P(dr, C, M_G, error))
        if criterion == "law_median":
            return jnp.log(target) - jnp.log(median_P(dr, C, M_G, error))
        return p_reach_P(dr, C, M_G, target, error) - p

    lo = jnp.full(M_G.shape, LOG_N_RANGE[0])
    hi = jnp.full(M_G.shape, LOG_N_RANGE[1])

    def step(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        ok = slack(mid) >= 0
        return jnp.where(ok, lo, mid), jnp.where(ok, mid, hi)

    feasible = slack(hi) >= 0
    _, hi = jax.lax.fori_loop(0, BISECTIONS, step, (lo, hi))
    return jnp.exp(hi), feasible


def _lifetime(N, M, D_inf):
    return forms.compute(N, M * N) + 2.0 * N * D_inf


def _cheapest_on(dr, M_G, target, p, D_inf, error, criterion):
    """(N, M, grid index) of least lifetime cost on the multiplier grid, or None."""
    with jax.enable_x64(True):
        N, ok = _smallest_N(dr, jnp.asarray(M_G, jnp.float64), jnp.float64(target), jnp.float64(p), error,
                            criterion)
    N, ok = np.asarray(N), np.asarray(ok)
    cost = np.where(ok, _lifetime(N, M_G, D_inf), np.inf)
    i = int(np.argmin(cost))
    return (N[i], M_G[i], i) if np.isfinite(cost[i]) else None


def _summary(dr, N, M, target, D_inf, error) -> dict:
    D = M * N
    return {"N": float(N), "D": float(D), "M": float(M), "train_flops": float(forms.compute(N, D)),
            "lifetime_flops": float(_lifetime(N, M, D_inf)),
            "p_reach": float(p_reach(dr, forms.compute(N, D), M, target, error=error, exact=True)[0])}  # fmt: skip


def cheapest_run(dr: Draws, target: float, D_inf: float = 0.0, p: float = 0.9, *, error: bool = False,
                 criterion: str = "chance") -> dict | None:
    """The (N, D) of least lifetime FLOPs that reaches ``target`` with probability ``p`` (criterion
    "chance"), whose predictive median forecast does ("median") or whose posterior-median law
    does ("law_median"); None when no run in range does. The multiplier is refined on a finer
    grid around the coarse grid's best."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    coarse = np.geomspace(*M_RANGE, COARSE)
    best = _cheapest_on(dr, coarse, target, p, D_inf, error, criterion)
    if best is None:
        return None
    i = best[2]
    fine = np.geomspace(coarse[max(i - 1, 0)], coarse[min(i + 1, COARSE - 1)], FINE)
    N, M, _ = _cheapest_on(dr, fine, target, p, D_inf, error, criterion) or best
    return _summary(dr, N, M, target, D_inf, error)


def cost_curve(dr: Draws, target: float, D_inf: float, ps=P_CURVE, *, error: bool = False) -> list[dict]:
    """Lifetime cost of the chance-constrained plan against p (coarse multiplier grid);
    ``lifetime_flops: None`` where p is out of reach."""
    runs = [_cheapest_on(dr, np.geomspace(*M_RANGE, COARSE), target, q, D_inf, error, "chance") for q in ps]
    return [{"p": float(q), **({"lifetime_flops": None, "N": None, "M": None} if r is None else
                               {"lifetime_flops": float(_lifetime(r[0], r[1], D_inf)), "N": float(r[0]),
                                "M": float(r[1])})} for q, r in zip(ps, runs)]  # fmt: skip


def check_target(target: float, error: bool, D_inf: float, p: float) -> None:
    what = "--target-error" if error else "--target-loss"
    if not np.isfinite(target) or target <= 0 or (error and target >= 1):
        raise UserError(f"{what}: must be {'in (0, 1)' if error else 'positive and finite'}, got {target!r}")
    if not np.isfinite(D_inf) or D_inf < 0:
        raise UserError(f"--inference-tokens: must be >= 0 and finite, got {D_inf!r}")
    if not 0 < p < 1:
        raise UserError(f"--p: a probability in (0, 1), got {p!r}")


def inference_aware(dr: Draws, target: float, D_inf: float = 0.0, p: float = 0.9, *, error: bool = False,
                    p_curve=P_CURVE) -> dict:
    """The ``inference_aware`` block of plan.json: the chance-constrained plan at ``p``, the plan
    from the median forecast, and lifetime cost against p. An unreachable target gives
    ``reachable: false`` and the probability that it is reachable at all (never NaN)."""
    check_target(target, error, D_inf, p)
    if error and not dr.chained:
        raise UserError("--target-error needs a posterior with the error law (Eq. 5) chained to the loss law")
    out = {"L_target": None if error else target, **({"Err_target": target} if error else {}),
           "D_inf": D_inf, "p": p, "p_reachable": p_reachable(dr, target, error)}
    plan = cheapest_run(dr, target, D_inf, p, error=error)
    median = cheapest_run(dr, target, D_inf, error=error, criterion="median")
    law_median = cheapest_run(dr, target, D_inf, error=error, criterion="law_median")
    out["median_plan"] = median if median is not None else {"reachable": False}
    out["law_median_plan"] = law_median if law_median is not None else {"reachable": False}
    if plan is None:
        what = "error" if error else "loss"
        floor = "the error at the irreducible loss" if error else "the irreducible loss E"
        out |= {"reachable": False, "N": None, "D": None, "M": None, "train_flops": None, "lifetime_flops": None,
                "p_reach": None,
                "reason": (f"target {what} {target:g} is not reached with probability {p:g} by any run of up to "
                           f"{np.exp(LOG_N_RANGE[1]):.0e} parameters; P({floor} < target) = "
                           f"{out['p_reachable']:.3g}")}  # fmt: skip
    else:
        out |= {"reachable": True, **plan}
    out["cost_curve"] = cost_curve(dr, target, D_inf, error=error)
    return out
