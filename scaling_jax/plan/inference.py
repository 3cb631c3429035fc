"""Inference-aware over-training (Sardana et al. 2023) under a chance constraint.

Given a target loss L* (or downstream error Err*) and D_inf tokens to be served, the run
(N, D) minimising lifetime FLOPs 6·N·D + 2·N·D_inf subject to P(L(N, D) ≤ L*) ≥ p over the
posterior predictive (``draws.p_reach``). Lifetime cost rises with N at fixed M, so at each
token multiplier M of a grid the plan is the smallest feasible N; the best M is then refined
on a finer grid around it.

P(reach) is not monotone in N. It rises while the law falls toward the target, but the
discrepancy grows with the distance from the fit points, so past the size where the law
crosses the target every draw's probability sinks back toward 1/2: the feasible set at one M
is an interval (or empty) with a peak inside, and a bracket at the largest N sees only its far
side. So the search is over the set itself: P(reach) on a grid in ln N (all multipliers at
once), each multiplier's peak refined by golden section between its grid neighbours, then
the smallest feasible N bisected between the last infeasible grid point and the first
feasible one (or the refined peak, where it alone is feasible). The peak over every (N, M)
is the best P(reach) in range, reported with where it is reached; p above it is unreachable.

Two deterministic plans are reported beside it. ``median_plan`` is what a point forecast gives:
the run whose median predicted loss (the predictive median every band reports, noise and
discrepancy included, found as the 50 % quantile of the predictive mixture) is at most L*;
the chance constraint at p = 0.5 is the same condition reached by another computation, so the
two must agree (a check of the solver). ``law_median_plan`` uses the posterior-median law
without noise; it differs from both by the skew of the posterior (the mixture's median is not
the median of its centres): on the testbed's Table-1 posteriors by 1-5 % in lifetime cost.
The same search serves all three (their slack is ln L* − ln median for the two medians).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.plan.draws import (
    Draws,
    floor_nonpositive_share,
    median_P,
    nonpositive_share,
    p_reach,
    p_reach_P,
    p_reachable,
    predictive_median_P,
)  # fmt: skip

LOG_N_RANGE = (np.log(1e5), np.log(1e16))  # parameters searched (1e5 to 1e16)
M_RANGE = (1.0, 1e5)
# Multipliers in the first pass, and around its best in the second: the same count, so both
# passes (and every p of the cost curve) run one compiled program.
COARSE = FINE = 81
N_GRID = 24  # ln N grid: 25.3 e-folds in 23 steps of 1.1
GOLDEN = 30  # a peak's bracket (2 grid steps) to 2.2·0.618^30 ≈ 1e-6 in ln N
BISECTIONS = 22  # ln N to 1.1/2^22 ≈ 3e-7
P_CURVE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
# A coarse peak this close below the level (in P, or in ln L for the medians) sends the search to
# the fine multiplier grid around it before calling the level unreachable.
NEAR_MISS = 0.02
INV_PHI = (np.sqrt(5.0) - 1.0) / 2.0


CRITERIA = ("chance", "median", "law_median")


def _value(dr: Draws, log_N, M_G, target, error: bool, criterion: str):
    """Per multiplier at ln N: P(reach) ("chance"), or ln target − ln (predictive median) or
    − ln (posterior-median law): the criterion holds where this is ≥ its level (p, or 0)."""
    N = jnp.exp(log_N)
    C = forms.compute(N, M_G * N)
    if criterion == "median":
        return jnp.log(target) - jnp.log(predictive_median_P(dr, C, M_G, error))
    if criterion == "law_median":
        return jnp.log(target) - jnp.log(median_P(dr, C, M_G, error))
    return p_reach_P(dr, C, M_G, target, error)


def _log_N_grid():
    return jnp.linspace(*LOG_N_RANGE, N_GRID)


@functools.partial(jax.jit, static_argnames=("error", "criterion"))
def _scan(dr: Draws, M_G, target, error: bool, criterion: str):
    """The criterion's value on the ln N grid ``(N_GRID, M)`` and each multiplier's peak (ln N,
    value), refined by golden section between the grid neighbours of its best grid point. The
    peak is refined for "chance" always (the best P(reach) is reported) and for the medians
    only when some multiplier has no feasible grid point (it is then what decides feasibility)."""
    grid = _log_N_grid()
    f = lambda ln: _value(dr, ln, M_G, target, error, criterion)  # noqa: E731
    V = jax.lax.map(lambda ln: f(jnp.full(M_G.shape, ln)), grid)
    k = jnp.argmax(V, axis=0)
    at_grid = (grid[k], jnp.max(V, axis=0))

    def golden(_):
        a, b = grid[jnp.maximum(k - 1, 0)], grid[jnp.minimum(k + 1, N_GRID - 1)]
        c, d = b - INV_PHI * (b - a), a + INV_PHI * (b - a)

        def step(_, s):
            a, b, c, d, fc, fd = s
            left = fc >= fd  # the peak is in [a, d]: keep c as the new d
            a, b = jnp.where(left, a, c), jnp.where(left, d, b)
            x = jnp.where(left, b - INV_PHI * (b - a), a + INV_PHI * (b - a))
            fx = f(x)
            c, d = jnp.where(left, x, d), jnp.where(left, c, x)
            fc, fd = jnp.where(left, fx, fd), jnp.where(left, fc, fx)
            return a, b, c, d, fc, fd

        fcd = _value(dr, jnp.concatenate([c, d]), jnp.concatenate([M_G, M_G]), target, error, criterion)
        n = M_G.shape[0]
        _, _, c, d, fc, fd = jax.lax.fori_loop(0, GOLDEN, step, (a, b, c, d, fcd[:n], fcd[n:]))
        x, fx = jnp.where(fc >= fd, c, d), jnp.maximum(fc, fd)
        better = fx > at_grid[1]
        return jnp.where(better, x, at_grid[0]), jnp.where(better, fx, at_grid[1])

    if criterion == "chance":
        peak = golden(None)
    else:
        peak = jax.lax.cond(jnp.all(jnp.any(V >= 0, axis=0)), lambda _: at_grid, golden, None)
    return V, *peak


@functools.partial(jax.jit, static_argnames=("error", "criterion"))
def _smallest_N(dr: Draws, M_G, target, level, V, x_peak, v_peak, error: bool, criterion: str):
    """Per multiplier: the smallest N whose value is ≥ ``level``, and whether any N in range is.
    Bisection between the last grid point below the level and the first at or above it (or
    the refined peak, where no grid point is feasible)."""
    grid = _log_N_grid()
    ok = V >= level
    on_grid = jnp.any(ok, axis=0)
    j = jnp.argmax(ok, axis=0)  # the first feasible grid point
    below_peak = jnp.clip(jnp.searchsorted(grid, x_peak, side="right") - 1, 0, N_GRID - 1)
    lo = jnp.where(on_grid, grid[jnp.maximum(j - 1, 0)], grid[below_peak])
    hi = jnp.where(on_grid, grid[j], x_peak)
    lo = jnp.where(on_grid & (j == 0), hi, lo)  # the smallest N in range is feasible

    def step(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        good = _value(dr, mid, M_G, target, error, criterion) >= level
        return jnp.where(good, lo, mid), jnp.where(good, mid, hi)

    _, hi = jax.lax.fori_loop(0, BISECTIONS, step, (lo, hi))
    return jnp.exp(hi), on_grid | (v_peak >= level)


def _lifetime(N, M, D_inf):
    return forms.compute(N, M * N) + 2.0 * N * D_inf


def _fine_grid(coarse: np.ndarray, i: int) -> np.ndarray:
    return np.geomspace(coarse[max(i - 1, 0)], coarse[min(i + 1, len(coarse) - 1)], FINE)


@dataclass(frozen=True)
class _Scan:
    """One criterion's values on one multiplier grid, and each multiplier's peak."""

    M: np.ndarray
    V: jax.Array
    x_peak: jax.Array
    v_peak: jax.Array

    @property
    def best(self) -> int:
        return int(np.argmax(np.asarray(self.v_peak)))


class Search:
    """The feasibility search for one posterior and target: scans cached per criterion and
    multiplier grid, so the plan, the cost curve and the best P(reach) share them."""

    def __init__(self, dr: Draws, target: float, D_inf: float = 0.0, error: bool = False):
        self.dr, self.target, self.D_inf, self.error = dr, float(target), float(D_inf), error
        self._scans: dict = {}

    def scan(self, criterion: str, M_G: np.ndarray) -> _Scan:
        key = (criterion, M_G.tobytes())
        if key not in self._scans:
            with jax.enable_x64(True):
                out = _scan(self.dr, jnp.asarray(M_G, jnp.float64), jnp.float64(self.target), self.error, criterion)
            self._scans[key] = _Scan(M_G, *out)
        return self._scans[key]

    def cheapest_on(self, scan: _Scan, level: float, criterion: str):
        """(N, M, grid index) of least lifetime cost on the scan's multipliers, or None."""
        with jax.enable_x64(True):
            N, ok = _smallest_N(self.dr, jnp.asarray(scan.M, jnp.float64), jnp.float64(self.target),
                                jnp.float64(level), scan.V, scan.x_peak, scan.v_peak, self.error, criterion)
        N, ok = np.asarray(N), np.asarray(ok)
        cost = np.where(ok, _lifetime(N, scan.M, self.D_inf), np.inf)
        i = int(np.argmin(cost))
        return (N[i], scan.M[i], i) if np.isfinite(cost[i]) else None

    def cheapest(self, level: float, criterion: str = "chance", refine: bool = True):
        """(N, M) of the cheapest run meeting ``criterion`` at ``level`` (the multiplier refined on
        a finer grid around the coarse best with ``refine``), or None. Where no coarse multiplier
        is feasible but the best peak is within ``NEAR_MISS`` of the level, the fine grid around
        it is tried before giving up (between coarse multipliers the peak moves by far less)."""
        coarse = self.scan(criterion, np.geomspace(*M_RANGE, COARSE))
        best = self.cheapest_on(coarse, level, criterion)
        if best is None:
            if float(np.max(np.asarray(coarse.v_peak))) < level - NEAR_MISS:
                return None
            best = self.cheapest_on(self.scan(criterion, _fine_grid(coarse.M, coarse.best)), level, criterion)
            return None if best is None else best[:2]
        if not refine:
            return best[:2]
        fine = self.scan(criterion, _fine_grid(coarse.M, best[2]))
        return (self.cheapest_on(fine, level, criterion) or best)[:2]

    def best_reach(self) -> dict:
        """The highest P(reach) of any run in range and where: the coarse multipliers' peaks,
        then a fine grid around the best of them."""
        coarse = self.scan("chance", np.geomspace(*M_RANGE, COARSE))
        fine = self.scan("chance", _fine_grid(coarse.M, coarse.best))
        scan = max((coarse, fine), key=lambda s: float(np.max(np.asarray(s.v_peak))))
        i = scan.best
        return self.summary(float(np.exp(np.asarray(scan.x_peak)[i])), float(scan.M[i]))

    def summary(self, N: float, M: float) -> dict:
        D = M * N
        C = forms.compute(N, D)
        out = {"N": float(N), "D": float(D), "M": float(M), "train_flops": float(C),
               "lifetime_flops": float(_lifetime(N, M, self.D_inf)),
               "p_reach": float(p_reach(self.dr, C, M, self.target, error=self.error, exact=True)[0])}  # fmt: skip
        if self.error:
            out["nonpositive_share"] = float(nonpositive_share(self.dr, C, M)[0])
        return out


def cheapest_run(dr: Draws, target: float, D_inf: float = 0.0, p: float = 0.9, *, error: bool = False,
                 criterion: str = "chance", search: Search | None = None) -> dict | None:
    """The (N, D) of least lifetime FLOPs that reaches ``target`` with probability ``p`` (criterion
    "chance"), whose predictive median forecast does ("median") or whose posterior-median law
    does ("law_median"); None when no run in range does. ``search`` shares scans between calls."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    search = search or Search(dr, target, D_inf, error)
    best = search.cheapest(p if criterion == "chance" else 0.0, criterion)
    return None if best is None else search.summary(*best)


def cost_curve(dr: Draws, target: float, D_inf: float, ps=P_CURVE, *, error: bool = False,
               search: Search | None = None) -> list[dict]:
    """Lifetime cost of the chance-constrained plan against p (coarse multiplier grid);
    ``lifetime_flops: None`` only where p exceeds the best P(reach) of any run in range."""
    search = search or Search(dr, target, D_inf, error)
    runs = [search.cheapest(q, refine=False) for q in ps]
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
    from the median forecast, lifetime cost against p, and the best P(reach) of any run in range
    (``best_p_reach``, with its run). An unreachable target gives ``reachable: false``, the best
    P(reach) and the probability that it is reachable at all (never NaN). For an error target,
    the shares of draws where Eq. 5 gives Err ≤ 0 (dropped, see ``plan.draws``)."""
    check_target(target, error, D_inf, p)
    if error and not dr.chained:
        raise UserError("--target-error needs a posterior with the error law (Eq. 5) chained to the loss law")
    search = Search(dr, target, D_inf, error)
    out = {"L_target": None if error else target, **({"Err_target": target} if error else {}),
           "D_inf": D_inf, "p": p, "p_reachable": p_reachable(dr, target, error)}
    if error:
        out["p_reachable_nonpositive_share"] = floor_nonpositive_share(dr)
    best = search.best_reach()
    out["best_p_reach"] = best
    plan = cheapest_run(dr, target, D_inf, p, error=error, search=search)
    median = cheapest_run(dr, target, D_inf, error=error, criterion="median", search=search)
    law_median = cheapest_run(dr, target, D_inf, error=error, criterion="law_median", search=search)
    out["median_plan"] = median if median is not None else {"reachable": False}
    out["law_median_plan"] = law_median if law_median is not None else {"reachable": False}
    if plan is None:
        what = "error" if error else "loss"
        floor = "the error at the irreducible loss" if error else "the irreducible loss E"
        out |= {"reachable": False, "N": None, "D": None, "M": None, "train_flops": None, "lifetime_flops": None,
                "p_reach": None,
                "reason": (f"target {what} {target:g} is not reached with probability {p:g} by any run of "
                           f"{np.exp(LOG_N_RANGE[0]):.0e} to {np.exp(LOG_N_RANGE[1]):.0e} parameters: the best "
                           f"P(reach) is {best['p_reach']:.3g}, at N = {best['N']:.3g}, M = {best['M']:.3g}; "
                           f"P({floor} < target) = {out['p_reachable']:.3g}")}  # fmt: skip
    else:
        out |= {"reachable": True, **plan}
    out["cost_curve"] = cost_curve(dr, target, D_inf, p_curve, error=error, search=search)
    return out
