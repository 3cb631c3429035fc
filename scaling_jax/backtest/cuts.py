"""Cuts for rolling-origin evaluation: fit on the runs below a cut, score the runs above it.

A cut runs along one axis: compute (``C``: fit runs with C ≤ C₀) or model size (``N``: fit every
multiplier of the smallest sizes, N ≤ N₀, and score every larger size). Selection cuts lie below
the final cut (the compute of the largest run the final fit may use); at each, only runs up to
the final cut are scored, so a recipe is chosen without any run the final prediction is judged on.

Compute cuts need many runs below each cut (``MIN_FIT_RUNS``); a small ladder of a few sizes at
a few multipliers (4 × 4 = 16 runs, say) has none, so it is cut by size instead: each cut keeps
``MIN_SIZES`` or more whole sizes (2 when fewer than 2 such cuts exist, so a 4-size ladder gets
cuts at 2 and 3 sizes). Whether a recipe can be fitted at a cut is then the fit's own rule
(:func:`scaling_jax.backtest.fits.fit_rows`): at least as many runs as the law has parameters
(Eq. 4: 4, Eq. 3: 5, Eq. 5 and the sigmoid: 3 and 4) and a design that pins each parameter
(two or more sizes and multipliers: :func:`scaling_jax.laws.points.design_problems`); a recipe
that cannot be fitted at some selection cut is not eligible.
"""

from __future__ import annotations

import numpy as np

from scaling_jax.errors import UserError

# A selection cut needs this many runs at or below it: 3 × Eq. 3's parameters. With 2× (10 runs) the
# lowest cuts' fits end in flat valleys where rounding alone moved predictions by up to 4.7 % (the
# same rows fitted alone or batched with other sets), enough to change which recipe was chosen.
MIN_FIT_RUNS = 15
MIN_RATIO = 2.0  # and the final cut at least this far above it (something to extrapolate to)
MIN_SIZES = 3  # a size cut keeps at least this many model sizes (2 where fewer cuts would exist)
MIN_SIZE_CUT_RUNS = 4  # and at least this many runs at two or more multipliers: Eq. 4's parameters
AXES = ("C", "N")  # compute cuts, size cuts
CUTS_BY = ("compute", "size", "auto")
_TOL = 1 + 1e-9  # a run at the cut is below it (exact compute and size values, read from files)


def below(axis: str, N: np.ndarray, D: np.ndarray, cut: float) -> np.ndarray:
    """Runs a fit at ``cut`` may use along ``axis``: C ≤ cut, or N ≤ cut."""
    N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
    x = 6.0 * N * D if axis == "C" else N
    return x <= cut * _TOL


def distance(axis: str, N: np.ndarray, D: np.ndarray, cut: float) -> np.ndarray:
    """How far past ``cut`` a run lies along ``axis``, in decades (log10 C/C₀ or log10 N/N₀): the
    selection score weighs each scored run's error by it."""
    x = 6.0 * np.asarray(N, np.float64) * np.asarray(D, np.float64) if axis == "C" else np.asarray(N, np.float64)
    return np.log10(x / cut)


def size_cuts(N: np.ndarray, C: np.ndarray, final_cut: float, min_sizes: int = MIN_SIZES) -> np.ndarray:
    """Size cuts below ``final_cut``: N₀ = each model size such that at least ``min_sizes`` sizes lie
    at or below it and some larger size has a run at or below the final compute cut to score;
    when that leaves fewer than two cuts, cuts keeping 2 sizes are allowed too."""
    N, C = np.asarray(N, np.float64), np.asarray(C, np.float64)
    avail = C <= final_cut * _TOL
    sizes = np.unique(N[avail])
    M = C / (6.0 * N * N)

    def fittable(s):  # the fewest runs any law could be fitted on, at two or more multipliers
        kept = avail & (N <= s * _TOL)
        return kept.sum() >= MIN_SIZE_CUT_RUNS and len(np.unique(np.round(np.log(M[kept]), 6))) >= 2

    scorable = [s for s in sizes if np.any(avail & (N > s * _TOL)) and fittable(s)]
    for k in (min_sizes, 2):
        picked = np.array([s for s in scorable if np.sum(sizes <= s * _TOL) >= k])
        if picked.size >= 2 or k == 2:
            break
    if not picked.size:
        raise UserError(f"no size cut below the final cut {final_cut:.3g}: {sizes.size} model size(s) up to it; "
                        f"a size cut keeps 2 or more sizes ({MIN_SIZE_CUT_RUNS} or more runs at 2 or more "
                        "multipliers) and scores a larger one, so a backtest by size needs 3 or more sizes")
    return picked


def choose_cuts(N: np.ndarray, C: np.ndarray, final_cut: float, by: str, n_cuts: int = 5) -> tuple[str, np.ndarray]:
    """``(axis, cuts)`` for ``--cuts-by`` ``by``: compute cuts, size cuts, or ``auto``: compute cuts
    where two or more can be formed (a single one scores only the few runs just below the final
    cut), else size cuts, else the one compute cut. Errors say why neither could be formed."""
    if by not in CUTS_BY:
        raise UserError(f"--cuts-by: {by!r} is not one of {list(CUTS_BY)}")
    if n_cuts < 1:
        raise UserError(f"--cuts: must be >= 1, got {n_cuts}")
    if by == "size":
        return "N", size_cuts(N, C, final_cut)
    try:
        compute = selection_cuts(C, final_cut, n_cuts)
    except UserError as e:
        if by == "compute":
            raise
        try:
            return "N", size_cuts(N, C, final_cut)
        except UserError as e2:
            raise UserError(f"{e}; by size: {e2}") from None
    if by == "compute" or compute.size >= min(2, n_cuts):
        return "C", compute
    try:
        return "N", size_cuts(N, C, final_cut)
    except UserError:
        return "C", compute


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
