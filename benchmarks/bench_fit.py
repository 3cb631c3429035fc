"""Eq. 4 fitting speed: JAX Levenberg–Marquardt against the SciPy ``curve_fit`` loop (the
paper's reference procedure), in the same run, on the same points and start grid.

Measures one 128-start fit and a bootstrap (each resample refitted from all 128 starts) on
the paper's Table-1 points and on a larger set (every RedPajama run with M ≤ 80). Both sides
skip the same underdetermined resamples. JAX times exclude compilation, which is reported
separately. JAX spreads resamples over ``--devices`` CPU devices (default: one per core; the
SciPy loop is the paper's single-process loop). Run:
``python benchmarks/bench_fit.py [--testbed DIR] [--resamples 1000] [--devices N]``.
"""

from __future__ import annotations

import argparse
import os
import sys


def _devices_from_argv() -> int:
    """--devices must take effect before JAX is imported."""
    if "--devices" in sys.argv:
        return int(sys.argv[sys.argv.index("--devices") + 1])
    return os.cpu_count() or 1


_FLAG = f"--xla_force_host_platform_device_count={_devices_from_argv()}"
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from scaling_jax.laws.bootstrap import bootstrap, resample_weights
from scaling_jax.laws.fit import fit_law
from scaling_jax.laws.points import design_problems
from scaling_jax.laws.starts import start_grid
from scaling_jax.paper import recipe
from scaling_jax.testbed import load_testbed


def _eq4(x, E, a, b, eta):
    C, M = x
    return E + (a * M**eta + b * M ** (-eta)) * C ** (-eta)


def scipy_fit(C, M, y, starts, sigma=None):
    best = np.inf
    for p0 in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                p, _ = curve_fit(_eq4, (C, M), y, p0=p0, sigma=sigma, maxfev=10000)
        except RuntimeError:
            continue
        r = (_eq4((C, M), *p) - y) if sigma is None else (_eq4((C, M), *p) - y) / sigma
        best = min(best, float(np.sum(r**2)))
    return best


def scipy_bootstrap(C, M, y, starts, W):
    for w in W:
        keep = w > 0
        # A multiplicity w is a weight w on the squared residual: sigma = 1/sqrt(w).
        scipy_fit(C[keep], M[keep], y[keep], starts, sigma=1.0 / np.sqrt(w[keep]))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def bench(name, runs, resamples, seed=0):
    C = np.array([r.C for r in runs])
    M = np.array([r.M for r in runs])
    y = np.array([r.loss("c4_val") for r in runs])
    xs = {"C": C, "M": M}
    starts = start_grid("overtrain")
    rows = []
    t_first, _ = timed(lambda: fit_law("overtrain", xs, y))
    t_jax, _ = timed(lambda: fit_law("overtrain", xs, y))
    t_sp, _ = timed(lambda: scipy_fit(C, M, y, starts))
    rows.append((f"{name}: 1 fit × 128 starts", t_first - t_jax, t_jax, t_sp))
    W = resample_weights(len(y), resamples, seed)
    ok = np.array([not design_problems("overtrain", xs, w) for w in W])
    for dedupe in (False, True):
        t_first, b = timed(lambda: bootstrap("overtrain", xs, y, n_resamples=resamples, seed=seed, dedupe=dedupe))
        t_jax, b = timed(lambda: bootstrap("overtrain", xs, y, n_resamples=resamples, seed=seed, dedupe=dedupe))
        label = (f"{name}: bootstrap {resamples} × 128 starts "
                 f"({int(ok.sum())} determined{', deduplicated' if dedupe else ''})")
        rows.append((label, max(t_first - t_jax, 0.0), t_jax, None))
    t_sp, _ = timed(lambda: scipy_bootstrap(C, M, y, starts, W[ok]))
    rows[-1] = rows[-1][:3] + (t_sp,)
    rows[-2] = rows[-2][:3] + (t_sp,)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(__file__).resolve().parents[2] / "shared" / "testbed"
    ap.add_argument("--testbed", default=os.environ.get("SCALING_JAX_TESTBED", str(shared)))
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=os.cpu_count() or 1, help="CPU devices for JAX")
    args = ap.parse_args()
    tb = load_testbed(args.testbed)
    sets = [("Table-1 (5 pts)", recipe.loss_fit_runs(tb, "rpj")),
            ("RPJ M<=80 (%d pts)", [r for r in tb.select(dataset="rpj") if r.M <= 80.5])]
    sets[1] = (sets[1][0] % len(sets[1][1]), sets[1][1])
    rows = []
    for name, runs in sets:
        rows += bench(name, runs, args.resamples)
    print(f"{'case':<78} {'JAX compile s':>13} {'JAX run s':>10} {'SciPy s':>9} {'SciPy/JAX':>9}")
    for case, comp, tj, ts in rows:
        ratio = f"{ts / tj:9.1f}" if ts is not None else f"{'':>9}"
        print(f"{case:<78} {comp:13.2f} {tj:10.3f} {ts:9.2f} {ratio}")
    import jax

    print(f"cores: {os.cpu_count()}; JAX devices: {len(jax.devices())}; goal: bootstrap SciPy/JAX >= 50")


if __name__ == "__main__":
    main()
