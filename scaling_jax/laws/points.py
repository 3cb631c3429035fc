"""Fit points: validation and the design checks that decide whether a law is identifiable."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws import forms


def as_points(law: str, inputs: Mapping[str, object], y: object) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Check and convert fit points to float64 arrays; errors name the input and the bad value."""
    _, names, input_names = forms.law(law)
    missing = [k for k in input_names if k not in inputs]
    if missing:
        raise UserError(f"law {law!r} needs inputs {list(input_names)}; missing {missing}")
    y = np.asarray(y, dtype=np.float64).ravel()
    xs = {k: np.asarray(inputs[k], dtype=np.float64).ravel() for k in input_names}
    for k, v in xs.items():
        if v.shape != y.shape:
            raise UserError(f"input {k!r} has {v.size} values but the target has {y.size}")
    for k, v in list(xs.items()) + [("target", y)]:
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise UserError(f"{k} has non-finite value {float(v[bad[0]])!r} at point {bad[0]}")
        if (v <= 0).any():
            i = int(np.flatnonzero(v <= 0)[0])
            raise UserError(f"{k} must be positive; point {i} has {float(v[i])!r}")
    if y.size < len(names):
        raise UserError(f"law {law!r} has {len(names)} parameters but only {y.size} point(s) were given")
    return xs, y


def padded_size(n: int) -> int:
    """The point count a fit compiles for: 8, 12, 16, 24, 32, 48, ... (each step at most 1.5×),
    the smallest that holds ``n``. Fits of different sizes in one step share a compiled program."""
    size = 8
    while size < n:
        size = size * 3 // 2 if (size & (size - 1)) == 0 else size * 4 // 3
    return size


def pad_points(xs, y, W):
    """Pad the last (point) axis of inputs ``xs`` (a tuple), targets ``y`` and weights ``W`` to
    :func:`padded_size`: inputs and targets with copies of the first point, weights with 0. A
    point of weight 0 adds exactly nothing to the residuals and their Jacobian, so the optimum is
    that of the unpadded points."""
    xs, y, W = tuple(np.asarray(x, np.float64) for x in xs), np.asarray(y, np.float64), np.asarray(W, np.float64)
    pad = padded_size(y.shape[-1]) - y.shape[-1]
    copy = lambda a: np.concatenate([a, np.repeat(a[..., :1], pad, axis=-1)], axis=-1)  # noqa: E731
    return tuple(map(copy, xs)), copy(y), np.concatenate([W, np.zeros(W.shape[:-1] + (pad,))], axis=-1)


def require_distinct(law: str, xs: Mapping[str, np.ndarray]) -> None:
    """A point fit needs at least as many distinct inputs as the law has parameters; with fewer,
    every start "converges" to one of infinitely many optima, so refuse instead."""
    _, names, input_names = forms.law(law)
    cols = np.stack([np.asarray(xs[k]) for k in input_names], axis=1)
    distinct = len(np.unique(cols, axis=0))
    if distinct < len(names):
        raise UserError(f"law {law!r} has {len(names)} parameters but the {len(cols)} points hold only {distinct} "
                        f"distinct ({', '.join(input_names)}) value(s): the fit cannot determine them")


def design_problems(law: str, xs: Mapping[str, np.ndarray], weights: np.ndarray | None = None) -> list[str]:
    """Reasons the points (those with nonzero weight) cannot pin every parameter of ``law``."""
    _, names, input_names = forms.law(law)
    keep = np.ones(len(next(iter(xs.values()))), bool) if weights is None else np.asarray(weights) > 0
    cols = np.stack([np.asarray(xs[k])[keep] for k in input_names], axis=1)
    distinct = len(np.unique(cols, axis=0))
    problems = []
    if distinct < len(names):
        problems.append(f"only {distinct} distinct point(s) for {len(names)} parameters")
    if law == "overtrain":
        if len(np.unique(np.round(np.log(xs["M"][keep]), 6))) < 2:
            problems.append("every point has the same token multiplier M: a and b are confounded")
    elif law == "chinchilla":
        M = xs["D"][keep] / xs["N"][keep]
        if len(np.unique(np.round(np.log(M), 6))) < 2:
            problems.append("every point has the same tokens per parameter (D ∝ N): "
                            "alpha, beta and A, B are confounded")
    return problems
