"""Default start grids for each law, in the paper's parameter order.

The Eq. 4 grid is the paper's own (its reference code fits
``alpha·N^b' + beta·6^{b'/2}·(M·N)^b' + E`` from alpha, beta ∈ {1e2, 3e2, 1e3, 3e3},
b' ∈ {−0.1, −0.3}, E ∈ {0, 1, 2, 10}: 4×4×2×4 = 128 starts), mapped to Eq. 4's names
(η = −b'/2, a = alpha·6^η, b = beta).
"""

from __future__ import annotations

import itertools

import numpy as np

_PAPER_ALPHA_BETA = (1e2, 3e2, 1e3, 3e3)
_PAPER_EXPONENT = (-0.1, -0.3)
_PAPER_E = (0.0, 1.0, 2.0, 10.0)


def _overtrain() -> np.ndarray:
    rows = []
    for alpha, beta, b, E in itertools.product(_PAPER_ALPHA_BETA, _PAPER_ALPHA_BETA, _PAPER_EXPONENT, _PAPER_E):
        eta = -b / 2.0
        rows.append((E, alpha * 6.0**eta, beta, eta))
    return np.array(rows)


def _chinchilla() -> np.ndarray:
    # Same grid with separate exponents on N and D: 4·4·2·2·4 = 256 starts.
    rows = [
        (E, A, B, -bn, -bd)
        for A, B, bn, bd, E in itertools.product(
            _PAPER_ALPHA_BETA, _PAPER_ALPHA_BETA, _PAPER_EXPONENT, _PAPER_EXPONENT, _PAPER_E
        )
    ]
    return np.array(rows)


def _error() -> np.ndarray:
    # SciPy's default start (1, 1, 1) plus a small grid around plausible values.
    return np.array(list(itertools.product((0.5, 1.0), (0.5, 1.0, 5.0, 20.0), (0.3, 1.0, 2.0))))


def _sigmoid() -> np.ndarray:
    # a (rise), b (floor), k (steepness), L0 (midpoint): errors of 0.2-0.8 over losses of 2-5 nats.
    return np.array(list(itertools.product((0.3, 0.6), (0.0, 0.3), (1.0, 3.0, 10.0), (2.5, 3.5, 4.5))))


def _power() -> np.ndarray:
    # c, a, b as in the paper's curve_fit_powlaw_irreducible, with more exponents.
    return np.array(list(itertools.product((0.0, 1.0), (3e1, 3e2, 3e3), (-0.1, -0.3))))


GRIDS = {"overtrain": _overtrain, "chinchilla": _chinchilla, "error": _error, "sigmoid": _sigmoid, "power": _power}


def start_grid(law: str) -> np.ndarray:
    """(S, P) start points for ``law``."""
    if law not in GRIDS:
        raise ValueError(f"no start grid for law {law!r}; choose one of {sorted(GRIDS)}")
    return GRIDS[law]()
