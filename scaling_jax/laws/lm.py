"""Levenberg–Marquardt least squares in JAX, batched over start points and resamples.

Why not optimistix: its ``LevenbergMarquardt`` damps with λ·I, which on these laws (a, b ~ 1e2,
η ~ 1e-1, all in one vector) needs hundreds of steps per start; vmapped over 128 starts it ran
~10× slower than SciPy's MINPACK loop. This is MINPACK's recipe instead: Marquardt's diagonal
scaling (damping λ·diag(JᵀJ), kept as a running maximum), Nielsen's damping update, Jacobians
by forward-mode autodiff, the P×P normal equations solved by an unrolled Cholesky (P ≤ 6).

Layout: every array carries its S independent fits ("lanes") on the last axis (parameters
P×S, residuals n×S), so each operation is one wide elementwise loop; on XLA:CPU this ran
1.5–2× faster per iteration than ``vmap`` over fits with the point axis minor. Lanes are
independent: the Jacobian of lane s is the forward derivative along a tangent that is one in
row k for every lane. Bootstrap resamples enter as per-lane point weights, keeping shapes static.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class LMResult(NamedTuple):
    """S fits, lanes on the last axis of ``params`` and first of the rest (see ``fit_starts``)."""

    params: jnp.ndarray  # the optima
    rss: jnp.ndarray  # weighted residual sum of squares at the optimum
    iterations: jnp.ndarray  # steps taken
    converged: jnp.ndarray  # a tolerance was met before max_iter, and the optimum is finite


def cholesky_solve(A: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Solve A x = b for small SPD A (P×P×...) and b (P×...) by an unrolled Cholesky.

    Trailing axes are lanes: every operation is elementwise across them.
    """
    P = A.shape[0]
    tiny = jnp.finfo(A.dtype).tiny
    L = [[None] * P for _ in range(P)]
    for i in range(P):
        for j in range(i + 1):
            s = A[i, j] - sum(L[i][k] * L[j][k] for k in range(j))
            L[i][j] = jnp.sqrt(jnp.maximum(s, tiny)) if i == j else s / L[j][j]
    z = [None] * P
    for i in range(P):
        z[i] = (b[i] - sum(L[i][k] * z[k] for k in range(i))) / L[i][i]
    x = [None] * P
    for i in reversed(range(P)):
        x[i] = (z[i] - sum(L[k][i] * x[k] for k in range(i + 1, P))) / L[i][i]
    return jnp.stack(x)


def levenberg_marquardt(
    residual: Callable[[jnp.ndarray], jnp.ndarray],
    p0: jnp.ndarray,
    *,
    max_iter: int = 200,
    ftol: float = 1e-12,
    xtol: float = 1e-10,
    gtol: float = 1e-14,
    lambda0: float = 1e-3,
) -> LMResult:
    """Minimise ``sum(residual(p)**2, axis=0)`` for every lane of ``p0`` (P×S).

    ``residual`` maps P×S parameters to n×S residuals, lane by lane. Convergence per lane
    (as MINPACK's ``lmdif``): relative reduction of the sum of squares below ``ftol`` (also when
    a rejected step's predicted reduction is that small: at the optimum rounding rejects every
    step), relative step below ``xtol``, or scaled gradient below ``gtol``. Finished lanes are
    frozen; the loop ends when all are. Returns params P×S and S-vectors.
    """
    P, S = p0.shape
    dt = p0.dtype
    tiny = jnp.finfo(dt).tiny
    eye = jnp.eye(P, dtype=dt)

    def value_and_jac(p):
        # One linearisation gives the residual and, per parameter row, its forward derivative.
        r, lin = jax.linearize(residual, p)
        return r, jnp.stack([lin(jnp.broadcast_to(eye[k][:, None], p.shape)) for k in range(P)])

    def body(state):
        p, r, J, lam, nu, diag, it, done = state
        A = jnp.sum(J[:, None] * J[None, :], axis=2)  # P×P×S
        g = jnp.sum(J * r[None], axis=1)  # P×S
        diag = jnp.maximum(diag, jnp.stack([A[k, k] for k in range(P)]))
        scale = jnp.maximum(diag, tiny)
        step = cholesky_solve(A + eye[:, :, None] * (lam * scale)[None], -g)
        p_new = p + step
        r_new, J_new = value_and_jac(p_new)
        f, f_new = jnp.sum(r * r, 0), jnp.sum(r_new * r_new, 0)
        # Nielsen's damping update from the gain ratio rho = actual / predicted reduction.
        predicted = jnp.sum(step * (lam * scale * step - g), 0)
        rho = (f - f_new) / jnp.maximum(predicted, tiny)
        ok = jnp.isfinite(f_new) & (f_new < f) & ~done
        rel_f = jnp.where(ok, (f - f_new) / jnp.maximum(f, tiny), 1.0)
        rel_x = jnp.sqrt(jnp.sum(scale * step**2, 0) / jnp.maximum(jnp.sum(scale * p**2, 0), tiny))
        grad = jnp.max(jnp.abs(g) / jnp.sqrt(scale), 0) / jnp.sqrt(jnp.maximum(f, tiny))
        finished = (
            (ok & ((rel_f < ftol) | (rel_x < xtol)))
            | (predicted / jnp.maximum(f, tiny) < ftol)
            | (grad < gtol)
            | (f < tiny)
            | (lam > 1e16)
        )
        return (
            jnp.where(ok, p_new, p),
            jnp.where(ok, r_new, r),
            jnp.where(ok, J_new, J),
            jnp.where(done, lam, jnp.where(ok, lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), lam * nu)),
            jnp.where(done, nu, jnp.where(ok, 2.0, nu * 2.0)),
            diag,
            jnp.where(done, it, it + 1),
            done | finished,
        )

    def cond(state):
        it, done = state[-2:]
        return (jnp.max(it) < max_iter) & ~jnp.all(done)

    r0, J0 = value_and_jac(p0)
    init = (p0, r0, J0, jnp.full((S,), lambda0, dt), jnp.full((S,), 2.0, dt), jnp.zeros_like(p0),
            jnp.zeros((S,), jnp.int32), jnp.zeros((S,), bool))
    p, r, _, lam, _, _, it, done = jax.lax.while_loop(cond, body, init)
    rss = jnp.sum(r * r, 0)
    converged = done & (lam <= 1e16) & jnp.all(jnp.isfinite(p), 0) & jnp.isfinite(rss)
    return LMResult(p, rss, it, converged)


def fit_starts(
    model: Callable[[jnp.ndarray, tuple], jnp.ndarray],
    starts: jnp.ndarray,
    x: tuple,
    y: jnp.ndarray,
    weights: jnp.ndarray | None = None,
    transform: Callable[[jnp.ndarray], jnp.ndarray] | None = None,
    **lm_kwargs,
) -> LMResult:
    """Fit ``model(p, x) ≈ y`` from every row of ``starts`` (S×P); params come back S×P.

    ``model`` takes parameters P×S and inputs shaped n×1 and broadcasts to n×S.
    ``weights`` multiply squared residuals: (n,) for all starts or (n, S) per start (bootstrap
    multiplicities, or 0 to drop a point). ``transform`` maps each residual before it is squared
    (a robust loss written as a square, as ``laws.huber`` does).
    """
    x_col = tuple(xi[:, None] for xi in x)
    w = jnp.ones_like(y) if weights is None else weights
    sw = jnp.sqrt(w if w.ndim == 2 else w[:, None])
    f = (lambda r: r) if transform is None else transform
    res = levenberg_marquardt(lambda p: sw * f(model(p, x_col) - y[:, None]), starts.T, **lm_kwargs)
    return res._replace(params=res.params.T)


def best_of(results: LMResult) -> tuple[LMResult, jnp.ndarray]:
    """The lowest-residual finite fit over the leading (start) axis, as the paper chose."""
    rss = jnp.where(jnp.isfinite(results.rss) & jnp.all(jnp.isfinite(results.params), -1), results.rss, jnp.inf)
    i = jnp.argmin(rss)
    return jax.tree.map(lambda a: a[i], results), i
