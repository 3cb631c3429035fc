"""Fit a named law by Levenberg–Marquardt from a grid of starts, in float64.

``fit_law`` is the point fit (best start by residual, as the paper chose); ``fit_batch`` is the
jit-compiled kernel it and the bootstrap share: starts × weight vectors in one call.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import forms, lm
from scaling_jax.laws.identify import identifiability
from scaling_jax.laws.points import as_points, pad_points, require_distinct
from scaling_jax.laws.starts import start_grid

ROWS_PER_STEP = 1


@dataclasses.dataclass(frozen=True)
class FitResult:
    """A point fit: the best start's optimum and how it got there."""

    law: str
    params: dict[str, float]
    rss: float  # sum of squared residuals at the optimum (the objective)
    iterations: int
    converged: bool
    n_starts: int
    n_converged: int
    identifiability: dict

    def predict(self, **inputs) -> np.ndarray:
        return predict(self.law, self.params, **inputs)

    def to_json(self, estimator: str = "lm") -> dict:
        return {
            "law": self.law,
            "estimator": estimator,
            "params": dict(self.params),
            "objective": self.rss,
            "converged": self.converged,
            "iterations": self.iterations,
            "starts": {"total": self.n_starts, "converged": self.n_converged},
            "identifiability": self.identifiability,
        }


def predict(law: str, params: Mapping[str, float], **inputs) -> np.ndarray:
    """Evaluate ``law`` at ``inputs`` (its input names as keywords) in float64."""
    fn, names, input_names = forms.law(law)
    with jax.enable_x64(True):
        p = {k: jnp.asarray(params[k], jnp.float64) for k in names}
        return np.asarray(fn(p, *(jnp.asarray(inputs[k], jnp.float64) for k in input_names)))


def _map_chunks(f, arrays, k: int):
    """``f`` over chunks of ``k`` rows of ``arrays`` (a pytree, rows on the leading axis), one chunk
    after another (``lax.map``): each chunk's LM loop stops when its own lanes converge, and its
    working set stays in cache. Rows are padded to whole chunks with copies of the first."""
    R = jax.tree.leaves(arrays)[0].shape[0]
    pad = -R % k

    def split(a):
        a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad,) + a.shape[1:])]) if pad else a
        return a.reshape((-1, k) + a.shape[1:])

    out = jax.lax.map(f, jax.tree.map(split, arrays))
    return jax.tree.map(lambda a: a.reshape((-1,) + a.shape[2:])[:R], out)


def _best_per_row(res: lm.LMResult, k: int, S: int):
    """(best fit per row, converged starts per row) of k rows × S starts laid out as lanes."""
    res = jax.tree.map(lambda a: a.reshape((k, S) + a.shape[1:]), res)
    best, _ = jax.vmap(lm.best_of)(res)
    return best, jnp.sum(res.converged, axis=1)


@functools.partial(jax.jit, static_argnames=("law", "max_iter", "rows_per_step"))
def _fit_batch(law: str, starts, xs, y, W, max_iter: int, rows_per_step: int):
    """For each weight row of ``W`` (R, n), fit from every start (S, P); return the best per row
    and per-row counts of converged starts."""
    fn, names, _ = forms.law(law)
    model = lambda p, x: fn(dict(zip(names, p)), *x)
    S, k = starts.shape[0], rows_per_step

    def chunk(Wc):
        # k rows × S starts as one batch of lanes: per-lane weights, one LM loop.
        res = lm.fit_starts(model, jnp.tile(starts, (k, 1)), xs, y, jnp.repeat(Wc, S, axis=0).T, max_iter=max_iter)
        return _best_per_row(res, k, S)

    return _map_chunks(chunk, W, k)


def fit_batch(law: str, xs: Mapping[str, np.ndarray], y: np.ndarray, W: np.ndarray, starts: np.ndarray | None = None,
              max_iter: int = 400, rows_per_step: int = ROWS_PER_STEP) -> tuple[lm.LMResult, np.ndarray]:
    """Best-of-starts fits for every weight row of ``W`` (R, n); float64 throughout.

    The point axis is padded (weight 0, :func:`~scaling_jax.laws.points.pad_points`) so fits of
    nearby sizes share one compiled program. Rows are split across the local devices (e.g. CPU cores exposed with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``); JAX's asynchronous dispatch runs
    the parts concurrently.
    """
    _, _, input_names = forms.law(law)
    starts = start_grid(law) if starts is None else np.asarray(starts, np.float64)
    x, y, W = pad_points(tuple(xs[k] for k in input_names), y, W)
    devices = jax.local_devices()[: max(1, len(W))]
    parts = [idx for idx in np.array_split(np.arange(len(W)), len(devices)) if len(idx)]
    with jax.enable_x64(True):
        pending = []
        for idx, device in zip(parts, devices):
            args = jax.device_put((starts, x, y, W[idx]), device)
            pending.append(_fit_batch(law, *args, max_iter, min(rows_per_step, len(idx))))
        outs = [jax.tree.map(np.asarray, o) for o in pending]
    best = jax.tree.map(lambda *a: np.concatenate(a), *[o[0] for o in outs])
    return best, np.concatenate([o[1] for o in outs])


@functools.partial(jax.jit, static_argnames=("law", "max_iter", "rows_per_step"))
def _fit_own_rows(law: str, starts, xs, y, W, max_iter: int, rows_per_step: int):
    fn, names, _ = forms.law(law)
    S, k = starts.shape[0], rows_per_step

    def chunk(rows):
        xc, yc, Wc = rows
        lanes = lambda a: jnp.repeat(a, S, axis=0).T  # noqa: E731 - (k, n) -> (n, k·S): row r's S starts
        x, yl, sw = tuple(lanes(v) for v in xc), lanes(yc), jnp.sqrt(lanes(Wc))
        res = lm.levenberg_marquardt(lambda p: sw * (fn(dict(zip(names, p)), *x) - yl), jnp.tile(starts, (k, 1)).T,
                                     max_iter=max_iter)
        return _best_per_row(res._replace(params=res.params.T), k, S)

    return _map_chunks(chunk, (xs, y, W), k)


def fit_own_rows(law: str, xs: Mapping[str, np.ndarray], y: np.ndarray, W: np.ndarray,
                 starts: np.ndarray | None = None, max_iter: int = 400,
                 rows_per_step: int | None = None) -> tuple[lm.LMResult, np.ndarray]:
    """Like :func:`fit_batch`, but every row has its own points: inputs, ``y`` and weights all
    (R, n) (pad short rows with weight 0; the point axis is padded as in :func:`fit_batch`);
    float64. ``rows_per_step`` rows × starts share one LM loop, chunks run one after another;
    the default (None) puts every row in one loop."""
    _, _, input_names = forms.law(law)
    starts = start_grid(law) if starts is None else np.asarray(starts, np.float64)
    x, y, W = pad_points(tuple(xs[name] for name in input_names), y, W)
    k = len(W) if rows_per_step is None else min(rows_per_step, len(W))
    with jax.enable_x64(True):
        out = _fit_own_rows(law, jnp.asarray(starts), tuple(jnp.asarray(v) for v in x), jnp.asarray(y),
                            jnp.asarray(W), max_iter, k)
        return jax.tree.map(np.asarray, out)


def fit_law(law: str, inputs: Mapping[str, object], y: object, *, starts: np.ndarray | None = None,
            max_iter: int = 400) -> FitResult:
    """Fit ``law`` to points (inputs by the law's input names) from ``starts`` (default grid)."""
    xs, y = as_points(law, inputs, y)
    require_distinct(law, xs)
    _, names, _ = forms.law(law)
    starts = start_grid(law) if starts is None else np.atleast_2d(np.asarray(starts, np.float64))
    if starts.shape[-1] != len(names):
        raise ValueError(f"starts have {starts.shape[-1]} columns; law {law!r} has parameters {list(names)}")
    best, n_conv = fit_batch(law, xs, y, np.ones((1, y.size)), starts, max_iter)
    p = best.params[0]
    if not np.all(np.isfinite(p)):
        raise ValueError(f"law {law!r}: no start reached a finite optimum on these {y.size} points")
    return FitResult(
        law=law,
        params={k: float(v) for k, v in zip(names, p)},
        rss=float(best.rss[0]),
        iterations=int(best.iterations[0]),
        converged=bool(best.converged[0]),
        n_starts=len(starts),
        n_converged=int(n_conv[0]),
        identifiability=identifiability(law, p, xs),
    )
