"""Chinchilla approach 3 as the Epoch AI replication did it: a robust fit in log space.

Parameters live in log space (log E, log A, log B for Eq. 3; log E, log a, log b for Eq. 4)
plus the exponents; the law is written as a log-sum-exp so every term stays positive; the
objective is the Huber loss (δ = 1e-3) of log-prediction minus log-loss, summed over points,
minimised by L-BFGS (optax, with its zoom line search) from a grid of starts, vmapped. The
best start by objective wins and the converged objective is reported, so users can compare
this estimator with Levenberg–Marquardt on the same points. Backtests, which fit hundreds of
rows, minimise the same objective by Levenberg–Marquardt on square-root Huber residuals
(:func:`fit_huber_rows`): as low an objective, an order of magnitude faster there.
"""

from __future__ import annotations

import functools
import itertools
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling_jax.errors import UserError
from scaling_jax.laws import forms, lm
from scaling_jax.laws.fit import FitResult
from scaling_jax.laws.identify import identifiability
from scaling_jax.laws.points import as_points, require_distinct

DELTA = 1e-3


# The log-space laws take one parameter vector t (P,) with inputs (n,), or P×S lanes with inputs (n, 1).
def _log_chinchilla(t, x):
    logN, logD = x
    e, a, b, alpha, beta = t
    return jax.nn.logsumexp(jnp.stack(jnp.broadcast_arrays(a - alpha * logN, b - beta * logD, e)), axis=0)


def _log_overtrain(t, x):
    logC, logM = x
    e, a, b, eta = t
    terms = jnp.broadcast_arrays(e, a + eta * (logM - logC), b - eta * (logM + logC))
    return jax.nn.logsumexp(jnp.stack(terms), axis=0)


def _chinchilla_params(t):
    e, a, b, alpha, beta = t
    return {"E": np.exp(e), "A": np.exp(a), "B": np.exp(b), "alpha": alpha, "beta": beta}


def _overtrain_params(t):
    e, a, b, eta = t
    return {"E": np.exp(e), "a": np.exp(a), "b": np.exp(b), "eta": eta}


# law -> (log-space prediction, to paper params, input names, default grid of starts)
LOG_FORMS = {
    "chinchilla": (
        _log_chinchilla,
        _chinchilla_params,
        ("N", "D"),
        # Epoch AI's grid (e, a, b, alpha, beta), thinned from 4,500 to 162 starts: a vmapped
        # L-BFGS costs ~40 ms per start on 2 CPU cores. Pass ``starts`` for the full grid.
        lambda: np.array(list(itertools.product((0.0, 1.0), (0.0, 5.0, 10.0), (0.0, 5.0, 10.0),
                                                (0.2, 0.5, 1.0), (0.2, 0.5, 1.0)))),
    ),
    "overtrain": (
        _log_overtrain,
        _overtrain_params,
        ("C", "M"),
        lambda: np.array(list(itertools.product((0.0, 0.5, 1.0), (0.0, 5.0, 10.0), (0.0, 5.0, 10.0),
                                                (0.05, 0.15, 0.3)))),
    ),
}

# Few starts per resample for the bootstrap (see bootstrap_starts): 2^3 corners of the exponents
# and E around the mid grid values, in log space like LOG_FORMS' grids.
BOOTSTRAP_GRID = {
    "chinchilla": np.array([(e, 5.0, 5.0, al, be) for e in (0.0, 1.0) for al in (0.2, 0.5) for be in (0.2, 0.5)]),
    "overtrain": np.array([(e, a, 5.0, eta) for e in (0.0, 1.0) for a in (0.0, 5.0) for eta in (0.05, 0.3)]),
}


def _minimise_one(law, starts, xs, logy, w, max_iter):
    """L-BFGS from every start (vmapped) on the objective Σ wᵢ·huber(log-prediction − log yᵢ)."""
    log_fn = LOG_FORMS[law][0]

    def objective(t):
        return jnp.sum(w * optax.losses.huber_loss(log_fn(t, xs), logy, delta=DELTA))

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def run(t0):
        def cond(s):
            t, state, it, gnorm = s
            return (it < max_iter) & (gnorm > 1e-12)

        def body(s):
            t, state, it, _ = s
            v, g = value_and_grad(t, state=state)
            upd, state = opt.update(g, state, t, value=v, grad=g, value_fn=objective)
            t = optax.apply_updates(t, upd)
            return t, state, it + 1, optax.tree.norm(g)

        t, _, it, gnorm = jax.lax.while_loop(cond, body, (t0, opt.init(t0), 0, jnp.inf))
        return t, objective(t), it, gnorm

    return jax.vmap(run)(starts)


@functools.partial(jax.jit, static_argnames=("law", "max_iter"))
def _minimise(law, starts, xs, logy, W, max_iter):
    """For every weight row of ``W`` (R, n), all starts (S, P): (R, S) optima, objectives, iterations.

    Points are shared (``xs``, ``logy`` of shape (n,)) or the row's own ((R, n) each). Rows run
    one after another (``lax.map``), so each row's loop stops when its own starts do: on XLA:CPU
    this beat every row × start as lanes of one loop by 1.5-9× (issue 14: `git log -p BENCHMARKS.md`).
    """
    if logy.ndim == 2:
        return jax.lax.map(lambda a: _minimise_one(law, starts, a[0], a[1], a[2], max_iter)[:3], (xs, logy, W))
    return jax.lax.map(lambda w: _minimise_one(law, starts, xs, logy, w, max_iter)[:3], W)


def _log_args(law, xs, y, W, starts):
    """The minimisers' arguments as float64 arrays (call under ``jax.enable_x64``): starts, log
    inputs, log losses, weights."""
    log_xs = tuple(jnp.log(jnp.asarray(xs[k], jnp.float64)) for k in LOG_FORMS[law][2])
    return jnp.asarray(starts, jnp.float64), log_xs, jnp.log(jnp.asarray(y, jnp.float64)), jnp.asarray(W, jnp.float64)


def _best_start(obj):
    """(R, S) objectives with non-finite ones as inf, and the index (rows, start) of each row's lowest."""
    obj = np.where(np.isfinite(obj), obj, np.inf)
    return obj, (np.arange(len(obj)), np.argmin(obj, axis=1))


def _param_rows(law, t):
    """(R, P) log-space optima -> (R, P) parameters in the paper's order and names."""
    return np.array([list(LOG_FORMS[law][1](row).values()) for row in t]).reshape(len(t), -1)


def _run(law, xs, y, W, starts, max_iter):
    """Best start per weight row: (R, P) log-space optima, objectives, converged flags, and (R,)
    counts of converged starts. ``xs[k]`` and ``y`` are (n,), or (R, n) for rows with their own points."""
    with jax.enable_x64(True):
        t, obj, it = _minimise(law, *_log_args(law, xs, y, W, starts), max_iter)
    t, obj, it = map(np.asarray, (t, obj, it))
    obj, best = _best_start(obj)
    converged = np.isfinite(obj) & (it < max_iter)
    return t[best], obj[best], it[best], converged[best], converged.sum(axis=1)


def _sqrt_huber(r):
    """s with s²/2 = huber(r) and the sign of r: least squares on s is the Huber fit (the
    square-root trick of robust Gauss–Newton). Continuous with slope 1 at |r| = δ."""
    big = jnp.abs(r) > DELTA
    return jnp.where(big, jnp.sign(r) * jnp.sqrt(jnp.maximum(2 * DELTA * jnp.abs(r) - DELTA**2, DELTA**2)), r)


@functools.partial(jax.jit, static_argnames=("law", "max_iter"))
def _minimise_lm(law, starts, xs, logy, W, max_iter):
    """Levenberg–Marquardt on square-root Huber residuals, every start as a lane, rows (each with
    its own points) one after another: (R, S) optima and objectives Σ wᵢ·huber(rᵢ)."""
    def row(a):
        xs_r, logy_r, w = a
        res = lm.fit_starts(LOG_FORMS[law][0], starts, xs_r, logy_r, w / 2, transform=_sqrt_huber, max_iter=max_iter)
        return res.params, res.rss

    return jax.lax.map(row, (xs, logy, W))


def fit_huber_rows(law: str, xs: Mapping[str, np.ndarray], y: np.ndarray, W: np.ndarray, starts: np.ndarray,
                   max_iter: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Huber fits of many rows, each with its own points (``xs[k]``, ``y``, ``W`` all (R, n); pad
    short rows with weight 0), by Levenberg–Marquardt on :func:`_sqrt_huber` residuals: the same
    objective as :func:`fit_huber_batch`, whose L-BFGS it replaces where hundreds of rows are fit.

    On the testbed backtest's 96 Huber rows (issue 14, BENCHMARKS.md) it reached an objective no
    higher than L-BFGS's on every row (lower on 5, where L-BFGS stopped short along a flat valley)
    in 1/13 of the time for Eq. 4. Returns (R, P) parameters in the paper's order, (R,) objectives
    and (R,) flags: the best start's optimum is finite.
    """
    _check(law)
    with jax.enable_x64(True):
        t, obj = _minimise_lm(law, *_log_args(law, xs, y, W, np.atleast_2d(starts)), max_iter)
    obj, best = _best_start(np.asarray(obj))
    return _param_rows(law, np.asarray(t)[best]), obj[best], np.isfinite(obj[best])


def _check(law: str) -> None:
    if law not in LOG_FORMS:
        raise UserError(f"the Huber estimator supports laws {sorted(LOG_FORMS)}, not {law!r}")


def bootstrap_starts(law: str, params: Mapping[str, float] | None = None) -> np.ndarray:
    """Log-space starts for refitting resamples: the point estimate ``params`` (when given) and
    BOOTSTRAP_GRID's few corners. Resamples lie near the full data, so their optima lie near the
    point estimate; the grid guards against a resample whose optimum has moved to another basin.
    Each start costs one L-BFGS run per resample, so keep this short."""
    _check(law)
    grid = BOOTSTRAP_GRID[law]
    if params is None:
        return grid.copy()
    names = forms.law(law)[1]
    centre = [np.log(params[k]) if k in ("E", "A", "B", "a", "b") else params[k] for k in names]
    return np.vstack([np.asarray(centre, np.float64)[None], grid])


def fit_huber_batch(law: str, xs: Mapping[str, np.ndarray], y: np.ndarray, W: np.ndarray, starts: np.ndarray,
                    max_iter: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Huber fits of every weight row of ``W`` (R, n) from log-space ``starts`` (S, P), one jit call.

    Points are shared (``xs[k]``, ``y`` of shape (n,)) or each row's own ((R, n); pad short rows
    with weight 0). Weights multiply the points' Huber terms (integer weights = a bootstrap resample's
    multiplicities). Returns (R, P) parameters in the paper's order and names, (R,) objectives
    and (R,) converged flags of each row's best start.
    """
    _check(law)
    t, obj, _, conv, _ = _run(law, xs, np.asarray(y, np.float64), np.atleast_2d(W), np.atleast_2d(starts), max_iter)
    return _param_rows(law, t), obj, conv


def fit_huber(law: str, inputs: Mapping[str, object], y: object, *, starts: np.ndarray | None = None,
              max_iter: int = 500) -> FitResult:
    """Robust log-space fit of ``law`` (``chinchilla`` or ``overtrain``); ``rss`` holds the Huber objective."""
    _check(law)
    xs, y = as_points(law, inputs, y)
    require_distinct(law, xs)
    to_params, grid = LOG_FORMS[law][1], LOG_FORMS[law][3]
    starts = grid() if starts is None else np.atleast_2d(np.asarray(starts, np.float64))
    t, obj, it, conv, n_conv = _run(law, xs, y, np.ones((1, y.size)), starts, max_iter)
    params = {k: float(v) for k, v in to_params(t[0]).items()}
    return FitResult(
        law=law,
        params=params,
        rss=float(obj[0]),
        iterations=int(it[0]),
        converged=bool(conv[0]),
        n_starts=len(starts),
        n_converged=int(n_conv[0]),
        identifiability=identifiability(law, np.array(list(params.values())), xs),
    )
