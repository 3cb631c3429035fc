"""Candidate runs: user-given (N, M) or (N, D), their cost, loss and error bands, and the
probability that each reaches the target."""

from __future__ import annotations

import math

import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws import forms
from scaling_jax.laws.bayes.predict import ErrorLaw, LossLaw, chained_error_draws, loss_draws
from scaling_jax.plan.allocation import band, error_band
from scaling_jax.plan.draws import Draws, p_reach


def parse_candidates(spec: str, flag: str = "--candidates") -> tuple[np.ndarray, np.ndarray]:
    """``N:M,N:M,...`` (or ``N:D=tokens`` for a token count) → arrays (N, M)."""
    Ns, Ms = [], []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        n_raw, sep, m_raw = item.partition(":")
        if not sep:
            raise UserError(f"{flag}: {item!r} is not N:M (or N:D=tokens)")
        is_D = m_raw.strip().startswith("D=")
        try:
            N, x = float(n_raw), float(m_raw.strip().removeprefix("D="))
        except ValueError:
            raise UserError(f"{flag}: {item!r}: not a number") from None
        for name, v in (("N", N), ("D" if is_D else "M", x)):
            if not math.isfinite(v) or v <= 0:
                raise UserError(f"{flag}: {item!r}: {name} must be positive and finite, got {v!r}")
        Ns.append(N)
        Ms.append(x / N if is_D else x)
    if not Ns:
        raise UserError(f"{flag}: no candidates in {spec!r}")
    return np.array(Ns), np.array(Ms)


def candidate_table(loss: LossLaw, error: ErrorLaw | None, N, M, *, dr: Draws | None = None,
                    target: float | None = None, target_is_error: bool = False, seed: int = 0) -> list[dict]:
    """``[{N, M, D, C, loss, error, p_target}]``: bands ``{median, lo95, hi95}`` (the error's with
    ``nonpositive_share``, its draws left out for Err <= 0) and, with a target, P(reach it)."""
    N, M = np.asarray(N, np.float64), np.asarray(M, np.float64)
    D = M * N
    C = forms.compute(N, D)
    ld = loss_draws(loss, C, M, seed=seed)
    ed = chained_error_draws(loss, error, C, M, seed=seed) if error is not None else None
    p = None
    if target is not None:
        p = p_reach(dr if dr is not None else Draws.from_laws(loss, error), C, M, target, error=target_is_error)
    return [{"N": float(N[i]), "M": float(M[i]), "D": float(D[i]), "C": float(C[i]), "loss": band(ld, i),
             "error": error_band(ed, i) if ed is not None else None,
             "p_target": float(p[i]) if p is not None else None} for i in range(len(N))]  # fmt: skip
