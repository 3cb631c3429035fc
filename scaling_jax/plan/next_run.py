"""Which cheap run to add next: preposterior analysis by importance reweighting.

For a candidate run x_j, an outcome y is simulated from the current posterior predictive
(a draw d ~ posterior, y = L_d(x_j)·exp(s_d(x_j)·z), noise and discrepancy as in the predictive
kernel). Adding (x_j, y) as a fit point updates the posterior by the fit likelihood,
w_d ∝ Normal(ln y; ln L_d(x_j), σ_fit,d), and moves the support (x_j becomes the nearest fit
run for targets near it, shrinking the discrepancy there). The 95 % predictive band at the
target is then the weighted lognormal mixture's, its quantiles found by bisection (no noise
sampling). Averaged over outcomes (the same draws and z for every candidate), this is the
expected width; the candidate with the smallest expected width is the one to run.

Reweighting is the update a refit would make (same likelihood, same prior), exact as the
draws grow; with one extra point of several, weights stay spread (``ess`` reports the
effective number of draws per outcome). ``width_after`` applies the same update with a
measured outcome, to check a ranking against real runs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.plan.draws import Draws, log_loss, loss_sd, mixture_quantiles

OUTCOMES = 64
QUANTILE_STEPS = 30  # the bracket (a few e-folds) to ~1e-9
LEVEL = (0.025, 0.975)


def _width(mu_D, s_D, w_D):
    """The 95 % band's width, its quantiles bisected in float32 (the band's ends to ~1e-6 in ln L,
    far inside the differences a ranking reads; 4× faster than float64 on the CPU)."""
    f32 = lambda x: x.astype(jnp.float32)  # noqa: E731
    q = mixture_quantiles(f32(mu_D), f32(s_D), f32(w_D), jnp.asarray(LEVEL, jnp.float32), QUANTILE_STEPS)
    lo, hi = jnp.exp(q.astype(mu_D.dtype))
    return hi - lo


@jax.jit
def _widths_after(dr: Draws, C_J, M_J, y_JxS, C_t, M_t):
    """Band width at the target and effective draws after observing ``y_JxS[j]`` at candidate j."""
    mu_c = log_loss(dr, C_J, M_J)  # (draws, J)
    mu_t = log_loss(dr, C_t[None], M_t[None])[:, 0]

    def per_candidate(C, M, mu, ys):
        x_new = jnp.concatenate([dr.x_loss, jnp.stack([jnp.log(C), jnp.log(M)])[None]], axis=0)
        s_t = loss_sd(dr, C_t[None], M_t[None], x_new)[:, 0]

        def per_outcome(y):
            logw = norm.logpdf(jnp.log(y), mu, dr.sigma)
            w = jax.nn.softmax(logw)
            return _width(mu_t, s_t, w), 1.0 / jnp.sum(w**2)

        return jax.vmap(per_outcome)(ys)

    return jax.vmap(per_candidate, in_axes=(0, 0, 1, 0))(C_J, M_J, mu_c, y_JxS)


@jax.jit
def _current_width(dr: Draws, C_t, M_t):
    mu_t = log_loss(dr, C_t[None], M_t[None])[:, 0]
    s_t = loss_sd(dr, C_t[None], M_t[None])[:, 0]
    return _width(mu_t, s_t, jnp.full(mu_t.shape, 1.0 / mu_t.shape[0]))


def _outcomes(dr: Draws, C_J, M_J, n: int, seed: int):
    """Simulated measured losses ``(J, n)`` from the posterior predictive at each candidate; the
    same posterior draws and normal variates for every candidate."""
    rng = np.random.default_rng(seed)
    d = rng.integers(0, len(dr.E), n)
    z = rng.standard_normal(n)
    mu, s = log_loss(dr, C_J, M_J), loss_sd(dr, C_J, M_J)  # (draws, J)
    return jnp.exp(mu[d].T + s[d].T * z[None])


def _target_CM(target: dict):
    N, M = float(target["N"]), float(target["M"])
    return jnp.float64(forms.compute(N, M * N)), jnp.float64(M)


def rank_next_runs(dr: Draws, N_J, M_J, target: dict, *, n_outcomes: int = OUTCOMES, seed: int = 0,
                   info: list[dict] | None = None) -> dict:
    """The ``next_run`` block of plan.json: candidates (N_J, M_J) ranked by the expected 95 % band
    width of the loss at ``target`` ({N, M}) once their outcome is known (smallest first). Each
    row's ``cost`` is its C unless ``info[j]`` (merged into row j) says otherwise: a branch of a
    WSD trunk costs its decay (``branch_candidates``)."""
    N_J, M_J = np.asarray(N_J, np.float64), np.asarray(M_J, np.float64)
    if N_J.size == 0:
        raise UserError("next run: no candidate runs to rank")
    C_J = forms.compute(N_J, M_J * N_J)
    with jax.enable_x64(True):
        C_t, M_t = _target_CM(target)
        y = _outcomes(dr, jnp.asarray(C_J), jnp.asarray(M_J), n_outcomes, seed)
        widths, ess = _widths_after(dr, jnp.asarray(C_J), jnp.asarray(M_J), y, C_t, M_t)
        now = float(_current_width(dr, C_t, M_t))
    expected = np.asarray(widths).mean(axis=1)
    order = np.argsort(expected, kind="stable")
    ranked = [{"N": float(N_J[j]), "M": float(M_J[j]), "C": float(C_J[j]), "cost": float(C_J[j]),
               "expected_width_95": float(expected[j]), "min_ess": float(np.asarray(ess)[j].min()),
               **(info[j] if info else {})} for j in order]  # fmt: skip
    return {"target": {"N": float(target["N"]), "M": float(target["M"])}, "current_width_95": now,
            "n_outcomes": n_outcomes, "ranked": ranked}  # fmt: skip


def width_after(dr: Draws, N_J, M_J, y_J, target: dict) -> np.ndarray:
    """95 % band width at ``target`` after adding each candidate j with its measured loss ``y_J[j]``."""
    N_J, M_J = np.asarray(N_J, np.float64), np.asarray(M_J, np.float64)
    C_J = forms.compute(N_J, M_J * N_J)
    with jax.enable_x64(True):
        C_t, M_t = _target_CM(target)
        y = jnp.asarray(np.asarray(y_J, np.float64))[:, None]
        widths, _ = _widths_after(dr, jnp.asarray(C_J), jnp.asarray(M_J), y, C_t, M_t)
    return np.asarray(widths)[:, 0]


def affordable_grid(C_max: float, N_min: float = 1e7, n_N: int = 10,
                    multipliers=(10.0, 20.0, 40.0, 80.0, 320.0)) -> tuple[np.ndarray, np.ndarray]:
    """A ladder of candidate runs under ``C_max`` FLOPs: ``n_N`` sizes from ``N_min`` up to the
    largest affordable at M = 10, each at the given multipliers where affordable."""
    N_top = np.sqrt(C_max / (6.0 * min(multipliers)))
    if not np.isfinite(C_max) or C_max <= 0 or N_top < N_min:
        raise UserError(f"next run: no candidate run of at least {N_min:.0e} parameters fits under "
                        f"{C_max:.3g} FLOPs (the candidate grid is empty under the budget)")
    N, M = np.meshgrid(np.geomspace(N_min, N_top, n_N), np.asarray(multipliers, np.float64))
    N, M = N.ravel(), M.ravel()
    keep = forms.compute(N, M * N) <= C_max * (1 + 1e-9)
    return N[keep], M[keep]
