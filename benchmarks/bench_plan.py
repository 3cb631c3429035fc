"""Planning speed: compiled, vectorised kernels over posterior draws against NumPy loops over
the same draws, in the same run.

1. P(L ≤ L*) at 10,000 candidate (N, D) points × 4,000 posterior draws (``plan.draws.p_reach``:
   one jit-compiled evaluation) against a NumPy loop over the draws (each draw vectorised over
   the points). Goal: under 1 s after compilation, ≥ 20× the loop. The kernel runs in float32
   (``exact=True``: float64, also timed); the loop is timed in float64 (the reference) and in
   float32, so the gain from precision and the gain from compilation are both on the table.
2. Next-experiment ranking of 50 candidate runs (``plan.next_run.rank_next_runs``, 64 simulated
   outcomes each, importance reweighting, band width by mixture quantiles) against a NumPy loop
   over the candidates (vectorised over draws and outcomes), in float64 (the reference) and in
   float32 (the kernel's quantile precision). Goal: under 60 s, ≥ 20× the loop.

The posterior is RedPajama's Table-1 fit (Eq. 4 chained to Eq. 5, 4 chains × 1,000 draws, prior
discrepancy), sampled here and saved to ``--posterior FILE`` when that file does not exist yet,
else read from it.
Run: ``python benchmarks/bench_plan.py [--testbed DIR] [--posterior FILE]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from scipy.special import ndtr

from scaling_jax.laws import forms
from scaling_jax.laws.bayes import NutsConfig
from scaling_jax.laws.bayes.design import loss_distance
from scaling_jax.plan.draws import Draws, p_reach
from scaling_jax.plan.next_run import LEVEL, OUTCOMES, QUANTILE_STEPS, _outcomes, rank_next_runs


def posterior(args):
    from pathlib import Path

    if args.posterior and Path(args.posterior).is_file():
        from scaling_jax.laws.bayes.posterior_file import read_posterior

        post = read_posterior(args.posterior)
    else:
        from scaling_jax.paper.plan import fit_for_plan
        from scaling_jax.testbed import load_testbed

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            post = fit_for_plan(load_testbed(args.testbed), "rpj", config=NutsConfig(num_warmup=500, num_samples=1000),
                                save=args.posterior)
        print(f"(RedPajama Table-1 posterior sampled in {time.perf_counter() - t0:.0f} s)")
    return post.loss_law, post.error_law


def _law(loss, d, C, M):
    """Eq. 4 at draw ``d`` (all draws for ``d=slice(None)``, as a column) in float64 NumPy."""
    E, a, b, eta = (np.asarray(getattr(loss, k))[d] for k in ("E", "a", "b", "eta"))
    if np.ndim(E):
        E, a, b, eta = (x[:, None] for x in (E, a, b, eta))
    logC, logM = np.log(C), np.log(M)
    return E + a * np.exp(eta * (logM - logC)) + b * np.exp(-eta * (logM + logC))


def numpy_p_reach(loss, C, M, target, dtype=np.float64):
    """The loop over draws, each vectorised over the points, in ``dtype`` (float32: the kernel's
    precision; SciPy's ``ndtr`` has a float32 loop)."""
    dist2 = (loss_distance(loss.support, C, M) ** 2).astype(dtype)  # depends on the points only
    tau2 = (loss.discrepancy.tau_DxK**2).astype(dtype)
    var0 = (loss.sigma**2 + loss.discrepancy.floor**2).astype(dtype)
    E, a, b, eta = (np.asarray(getattr(loss, k), dtype) for k in ("E", "a", "b", "eta"))
    u, v, log_t = (np.log(M) - np.log(C)).astype(dtype), (np.log(M) + np.log(C)).astype(dtype), dtype(np.log(target))
    acc = np.zeros(len(C))
    for d in range(len(E)):
        L = E[d] + a[d] * np.exp(eta[d] * u) + b[d] * np.exp(-eta[d] * v)
        acc += ndtr((log_t - np.log(L)) / np.sqrt(var0[d] + dist2 @ tau2[d]))
    return acc / len(E)


def numpy_ranking(loss, dr, N_J, M_J, target, y_JxS, dtype=np.float64):
    """Expected 95 % width per candidate, looping over candidates (same update as plan.next_run),
    the quantile bisection in ``dtype`` (float32: the kernel's)."""
    C_J = forms.compute(N_J, M_J * N_J)
    C_t, M_t = forms.compute(target["N"], target["M"] * target["N"]), target["M"]
    mu_t = np.log(_law(loss, slice(None), np.array([C_t]), np.array([M_t])))[:, 0]
    tau2 = loss.discrepancy.tau_DxK**2
    out = []
    for j in range(len(N_J)):
        mu_c = np.log(_law(loss, slice(None), C_J[j:j + 1], M_J[j:j + 1]))[:, 0]
        support = type(loss.support)(np.vstack([loss.support.x_FxK, [np.log(C_J[j]), np.log(M_J[j])]]))
        s_t = np.sqrt(loss.sigma**2 + loss.discrepancy.floor**2 + tau2 @ loss_distance(support, [C_t], [M_t])[0] ** 2)
        logw = -0.5 * ((np.log(y_JxS[j])[:, None] - mu_c) / loss.sigma) ** 2 - np.log(loss.sigma)  # (S, D)
        w = np.exp(logw - logw.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        w, mu, s = w.astype(dtype), mu_t.astype(dtype), s_t.astype(dtype)
        lo = np.full((len(w), 2), np.min(mu - 8 * s), dtype)
        hi = np.full((len(w), 2), np.max(mu + 8 * s), dtype)
        for _ in range(QUANTILE_STEPS):
            mid = 0.5 * (lo + hi)
            F = np.einsum("sd,sqd->sq", w, ndtr((mid[..., None] - mu) / s))
            below = F < np.asarray(LEVEL, dtype)
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        q = np.exp(0.5 * (lo + hi).astype(np.float64))
        out.append(float(np.mean(q[:, 1] - q[:, 0])))
    return np.array(out)


def _table(rows, ref_s: float, ref, what: str) -> None:
    """One line per (name, seconds, values, note): time, speed-up over the reference, max deviation."""
    for name, sec, val, note in rows:
        dev = np.max(np.abs(val - ref))
        print(f"   {name:<26} {sec:8.3f} s   {ref_s / sec:5.1f}x   max |{what} - ref| {dev:.1e}   {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--testbed", default=None)
    ap.add_argument("--posterior", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    loss, error = posterior(args)
    dr = Draws.from_laws(loss, error)
    D = len(loss.E)
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e8), np.log(1e11), 10_000))
    M = np.exp(rng.uniform(np.log(5.0), np.log(2000.0), 10_000))
    C, target = forms.compute(N, M * N), 2.6
    t0 = time.perf_counter()
    p_reach(dr, C, M, target)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        p = p_reach(dr, C, M, target)
    jit_s = (time.perf_counter() - t0) / args.repeats
    p_exact = p_reach(dr, C, M, target, exact=True)
    t0 = time.perf_counter()
    for _ in range(args.repeats):
        p_exact = p_reach(dr, C, M, target, exact=True)
    exact_s = (time.perf_counter() - t0) / args.repeats
    t0 = time.perf_counter()
    p_np = numpy_p_reach(loss, C, M, target)
    np_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    p_np32 = numpy_p_reach(loss, C, M, target, np.float32)
    np32_s = time.perf_counter() - t0
    print(f"1. P(L <= {target}) at {len(C):,} (N, D) points x {D:,} draws (reference: the float64 NumPy loop)")
    rows = [("jit float32 (default)", jit_s, p, f"first call incl. compile {first:.2f} s"),
            ("jit float64 (exact=True)", exact_s, p_exact, ""),
            ("NumPy loop, float64", np_s, p_np, "the reference"),
            ("NumPy loop, float32", np32_s, p_np32, "")]
    _table(rows, np_s, p_np, "p")

    target_run = {"N": 6.89e9, "M": 20.0}
    N_J = np.repeat(np.geomspace(1e7, 4e8, 10), 5)
    M_J = np.tile([10.0, 20.0, 40.0, 80.0, 320.0], 10)
    t0 = time.perf_counter()
    ranked = rank_next_runs(dr, N_J, M_J, target_run)
    rank_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    ranked = rank_next_runs(dr, N_J, M_J, target_run)
    rank_s = time.perf_counter() - t0
    import jax

    with jax.enable_x64(True):  # the same simulated outcomes as rank_next_runs (same seed)
        y = np.asarray(_outcomes(dr, forms.compute(N_J, M_J * N_J), M_J, OUTCOMES, 0))
    t0 = time.perf_counter()
    w_np = numpy_ranking(loss, dr, N_J, M_J, target_run, y)
    rank_np = time.perf_counter() - t0
    t0 = time.perf_counter()
    w_np32 = numpy_ranking(loss, dr, N_J, M_J, target_run, y, np.float32)
    rank_np32 = time.perf_counter() - t0
    by = {(r["N"], r["M"]): r["expected_width_95"] for r in ranked["ranked"]}
    w_jit = np.array([by[(float(n), float(m))] for n, m in zip(N_J, M_J)])
    print(f"2. next-run ranking: {len(N_J)} candidates x {OUTCOMES} outcomes x {D:,} draws, target 6.9B at M = 20 "
          "(reference: the float64 NumPy loop)")
    rows = [("jit, float32 quantiles", rank_s, w_jit, f"first call incl. compile {rank_first:.2f} s"),
            ("NumPy loop, float64", rank_np, w_np, "the reference"),
            ("NumPy loop, float32", rank_np32, w_np32, "")]
    _table(rows, rank_np, w_np, "width")

if __name__ == "__main__":
    main()
