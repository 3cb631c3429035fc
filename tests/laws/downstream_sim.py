"""Synthetic ladders drawn from known downstream laws (issue 30's tests): 4 sizes x 4 token
multipliers, each run's validation loss from a known Eq. 4, each task's loss (bits per byte) from a
known Eq. 3 and its accuracy from a known sigmoid of the route's intermediate (the task's loss for
``two-step``, the validation loss for ``per-task``) or, for ``paper``, the task-mean error from a
known Eq. 5 of the validation loss; noise on every measured value."""

import numpy as np

from scaling_jax.laws import forms
from scaling_jax.testbed.task_points import TaskPoints

SIZES = (2e7, 4e7, 8e7, 1.6e8)
MULTIPLIERS = (5.0, 10.0, 20.0, 40.0)
TARGETS = ((6.4e8, 20.0), (8e8, 20.0))  # 8-16x the ladder's largest compute... (5-10x beyond in C: see tests)
LOSS = {"E": 1.8, "a": 180.0, "b": 320.0, "eta": 0.13}  # validation loss (nats), Eq. 4
TASK_LOSS = [{"E": 0.25, "A": 60.0, "B": 90.0, "alpha": 0.3, "beta": 0.28},
             {"E": 0.35, "A": 40.0, "B": 150.0, "alpha": 0.27, "beta": 0.31}]
CHANCE, CEILING = np.array([0.25, 0.5]), np.array([1.0, 0.95])
SIGMOID_TL = [{"k": 4.0, "L0": 0.9}, {"k": 6.0, "L0": 0.8}]  # accuracy from the task's loss
SIGMOID_LOSS = [{"k": 2.5, "L0": 3.0}, {"k": 3.5, "L0": 2.9}]  # accuracy from the validation loss
EQ5 = {"epsilon": 0.9, "k": 3.0, "gamma": 0.75}
NOISE = {"loss": 0.003, "task_loss": 0.01, "acc": 0.01}


def sigmoid_acc(p, L, c, u):
    """The constraint-anchored sigmoid: acc(0) = u, acc(inf) = c."""
    a = (u - c) * (1 + np.exp(-p["k"] * p["L0"]))  # = (u - c)/sigmoid(k*L0)
    return c + a / (1 + np.exp(p["k"] * (L - p["L0"])))


def truth(route: str, N, D) -> dict:
    """Noise-free intermediates and accuracies at (N, D)."""
    N, D = np.asarray(N, float), np.asarray(D, float)
    loss = forms.overtrain(LOSS, 6 * N * D, D / N)
    tl = np.stack([forms.chinchilla(p, N, D) for p in TASK_LOSS], -1)
    if route == "paper":
        err = np.asarray(forms.error(EQ5, loss))
        acc = np.stack([1 - err, 1 - err], -1)  # two tasks with the mean's error each
    elif route == "per-task":
        acc = np.stack([sigmoid_acc(p, loss, c, u) for p, c, u in zip(SIGMOID_LOSS, CHANCE, CEILING)], -1)
    else:
        acc = np.stack([sigmoid_acc(p, tl[:, t], c, u) for t, (p, c, u) in
                        enumerate(zip(SIGMOID_TL, CHANCE, CEILING))], -1)
    return {"loss": np.asarray(loss), "task_loss": np.asarray(tl), "acc": acc}


def ladder(route: str, seed: int = 0, noise: dict | None = None, extra=()) -> TaskPoints:
    """The 16-run ladder (and ``extra`` (N, M) runs) with measured values."""
    noise = {**NOISE, **(noise or {})}
    NM = [(n, m) for n in SIZES for m in MULTIPLIERS] + list(extra)
    N = np.array([n for n, _ in NM])
    D = np.array([n * m for n, m in NM])
    t = truth(route, N, D)
    rng = np.random.default_rng(seed)
    loss = t["loss"] * np.exp(noise["loss"] * rng.standard_normal(len(N)))
    tl = t["task_loss"] * np.exp(noise["task_loss"] * rng.standard_normal(t["task_loss"].shape))
    acc = np.clip(t["acc"] + noise["acc"] * rng.standard_normal(t["acc"].shape), 0, 1)
    return TaskPoints(N, D, loss, ("t0", "t1"), acc, tl, CHANCE, CEILING, tuple(f"r{i}" for i in range(len(N))),
                      source=f"simulated {route} ladder {seed}")
