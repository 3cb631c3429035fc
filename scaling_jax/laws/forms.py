"""The paper's laws as pure ``jnp`` functions, with its parameter names.

Every law takes its parameters as a dict (a pytree), so fitters can treat them uniformly,
and its inputs as arrays. Notation (Gadre et al. 2024): N parameters, D tokens, C = 6ND
compute, M = D/N token multiplier.
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp

Params = Mapping[str, jnp.ndarray]


def _pow(x, e):
    """x^e for x > 0 as exp(e·log x): log x is loop-invariant in a fit, so XLA hoists it."""
    return jnp.exp(e * jnp.log(x))


def compute(N, D):
    """C = 6·N·D FLOPs."""
    return 6.0 * N * D


def multiplier(N, D):
    """M = D/N tokens per parameter."""
    return D / N


def chinchilla(p: Params, N, D):
    """Eq. 3: L(N, D) = E + A·N^−α + B·D^−β."""
    return chinchilla_at_logs(p, jnp.log(N), jnp.log(D))


def chinchilla_at_logs(p: Params, logN, logD):
    """Eq. 3 from ln N and ln D: callers that broadcast few inputs against many parameter draws
    pass the logs precomputed, as XLA recomputes a fused log for every (draw, input) element."""
    return p["E"] + p["A"] * jnp.exp(-p["alpha"] * logN) + p["B"] * jnp.exp(-p["beta"] * logD)


def overtrain(p: Params, C, M):
    """Eq. 4: L(C, M) = E + (a·M^η + b·M^−η)·C^−η."""
    return overtrain_at_logs(p, jnp.log(C), jnp.log(M))


def overtrain_at_logs(p: Params, logC, logM):
    """Eq. 4 from ln C and ln M (see :func:`chinchilla_at_logs`)."""
    eta = p["eta"]
    # Two exponentials, not three powers: a·exp(η(log M − log C)) + b·exp(−η(log M + log C)).
    return p["E"] + p["a"] * jnp.exp(eta * (logM - logC)) + p["b"] * jnp.exp(-eta * (logM + logC))


def error(p: Params, L):
    """Eq. 5: Err(L) = ε − k·exp(−γ·L), average top-1 downstream error from loss."""
    return p["epsilon"] - p["k"] * jnp.exp(-p["gamma"] * L)


def sigmoid_error(p: Params, L):
    """Downstream error as a sigmoid in loss (the OLMo ladder's form, Bhagia et al. 2024):
    Err(L) = b + a·σ(k·(L − L0)), flat at b for low loss and rising to b + a (chance) for high."""
    return p["b"] + p["a"] * jax.nn.sigmoid(p["k"] * (L - p["L0"]))


def power(p: Params, x):
    """Power law with an irreducible term: y = c + a·x^b."""
    return p["c"] + p["a"] * _pow(x, p["b"])


def chinchilla_to_overtrain(p: Params) -> dict:
    """Eq. 3 with α = β, rewritten as Eq. 4.

    With N = (C/(6M))^½ and D = (CM/6)^½: A·N^−α = A·6^{α/2}·M^{α/2}·C^{−α/2} and
    B·D^−α = B·6^{α/2}·M^{−α/2}·C^{−α/2}, so η = α/2, a = A·6^η, b = B·6^η.
    Eq. 3's β is ignored: the rewrite holds only where α = β.
    """
    eta = p["alpha"] / 2.0
    return {"E": p["E"], "a": p["A"] * 6.0**eta, "b": p["B"] * 6.0**eta, "eta": eta}


def overtrain_to_chinchilla(p: Params) -> dict:
    """Inverse of :func:`chinchilla_to_overtrain`: α = β = 2η, A = a·6^−η, B = b·6^−η."""
    eta = p["eta"]
    scale = 6.0 ** (-eta)
    return {"E": p["E"], "A": p["a"] * scale, "B": p["b"] * scale, "alpha": 2.0 * eta, "beta": 2.0 * eta}


def optimal_multiplier(p: Params):
    """Compute-optimal M* = (b/a)^(1/(2η)) of Eq. 4 (where ∂L/∂M = 0 at fixed C)."""
    return (p["b"] / p["a"]) ** (1.0 / (2.0 * p["eta"]))


def chained_error(loss_p: Params, err_p: Params, C, M):
    """(C, M) → L → Err: Eq. 4 then Eq. 5."""
    return error(err_p, overtrain(loss_p, C, M))


LawFn = Callable[..., jnp.ndarray]

# name -> (function, parameter names in the paper's order, input names)
LAWS: dict[str, tuple[LawFn, tuple[str, ...], tuple[str, ...]]] = {
    "chinchilla": (chinchilla, ("E", "A", "B", "alpha", "beta"), ("N", "D")),
    "overtrain": (overtrain, ("E", "a", "b", "eta"), ("C", "M")),
    "error": (error, ("epsilon", "k", "gamma"), ("L",)),
    "sigmoid": (sigmoid_error, ("a", "b", "k", "L0"), ("L",)),
    "power": (power, ("c", "a", "b"), ("x",)),
}


def law(name: str):
    """Look a law up by name; the error lists the valid names."""
    if name not in LAWS:
        raise ValueError(f"unknown law {name!r}; choose one of {sorted(LAWS)}")
    return LAWS[name]
