"""Compute cuts for rolling-origin evaluation: fit on runs with C ≤ C₀, score the runs above.

Selection cuts lie below the final cut (the compute of the largest run the final fit may use);
at each, only runs up to the final cut are scored, so a recipe is chosen without any run the
final prediction is judged on.
"""

from __future__ import annotations

import numpy as np

from scaling_jax.errors import UserError

# A selection cut needs this many runs at or below it: 3 × Eq. 3's parameters. With 2× (10 runs) the
# lowest cuts' fits end in flat valleys where rounding alone moved predictions by up to 4.7 % (the
# same rows fitted alone or batched with other sets), enough to change which recipe was chosen.
MIN_FIT_RUNS = 15
MIN_RATIO = 2.0  # and the final cut at least this far above it (something to extrapolate to)


def selection_cuts(C: np.ndarray, final_cut: float, n_cuts: int = 5, min_fit_runs: int = MIN_FIT_RUNS) -> np.ndarray:
    """Up to ``n_cuts`` cuts below ``final_cut``, at run computes, evenly spread in log C between
    the first with ``min_fit_runs`` runs at or below it and the last with a run to extrapolate to."""
    if n_cuts < 1:
        raise UserError(f"--cuts: must be >= 1, got {n_cuts}")
    C = np.sort(np.asarray(C, np.float64))
    ok = np.array([(np.sum(C <= c * (1 + 1e-9)) >= min_fit_runs) and c * MIN_RATIO <= final_cut
                   and np.any((C > c * (1 + 1e-9)) & (C <= final_cut * (1 + 1e-9))) for c in C])
    valid = np.unique(C[ok])
    if not valid.size:
        raise UserError(f"no compute cut below the final cut {final_cut:.3g} has {min_fit_runs} runs at or below it "
                        f"and a run at least {MIN_RATIO:g}× above it to score: {int(np.sum(C <= final_cut))} "
                        "run(s) up to the final cut are too few to backtest")
    if valid.size <= n_cuts:
        return valid
    want = np.geomspace(valid[0], valid[-1], n_cuts)
    picked = np.unique([valid[np.argmin(np.abs(np.log(valid) - np.log(w)))] for w in want])
    return picked


def parse_cut(value: str, flag: str = "--final-cut") -> float:
    try:
        v = float(value)
    except ValueError:
        raise UserError(f"{flag}: not a number: {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise UserError(f"{flag}: must be a positive FLOP count, got {value!r}")
    return v
