"""The scoring function: one ``jit`` per bucket shape, any JAX language model behind ``LanguageModel``.

A batch row yields the sum of log-probabilities of its continuation tokens, whether the greedy
argmax matched every continuation token, and the argmax tokens. Inputs are laid out over the
model's batch sharding (the mesh's data axis, as in the training step); results come back
replicated so every process reads them.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any, Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.eval.batching import Batch


@dataclasses.dataclass(frozen=True)
class LanguageModel:
    """What the evaluator needs of a model: ``apply(params, tokens_BxL) -> logits_BxLxV`` (pure,
    jittable), its parameters and longest sequence; optionally the mesh and the batch sharding
    its inputs take."""

    apply: Callable[[Any, jax.Array], jax.Array]
    params: Any
    max_seq_len: int
    vocab_size: int
    mesh: Any = None
    batch_sharding: Any = None
    name: str = ""

    @property
    def shards(self) -> int:
        """Batch rows must split evenly over this many devices."""
        if self.batch_sharding is None:
            return 1
        spec = self.batch_sharding.spec[0] if self.batch_sharding.spec else None
        axes = (spec,) if isinstance(spec, str) else (spec or ())
        return int(np.prod([self.mesh.shape[a] for a in axes])) if axes else 1


def _score(apply, params, inputs, targets, mask):
    logits = apply(params, inputs).astype(jnp.float32)
    lse = jax.nn.logsumexp(logits, axis=-1)
    picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logprob = ((picked - lse) * mask).sum(-1)
    exact = jnp.all((greedy == targets) | (mask == 0), axis=-1)
    return logprob, exact, greedy


_SCORERS: dict[tuple, "Scorer"] = {}


def scorer_for(lm: LanguageModel) -> "Scorer":
    """The one scorer of ``lm.apply`` on its mesh (its compiled programs reused across calls),
    holding ``lm``'s current parameters."""
    key = (lm.apply, lm.mesh, lm.batch_sharding)
    if key not in _SCORERS:
        _SCORERS[key] = Scorer(lm)
    sc = _SCORERS[key]
    sc.lm = lm
    return sc


def release_scorers() -> None:
    """Drop the parameters the cached scorers hold (their compiled programs stay): a process that
    trains run after run would otherwise keep every model size's last parameters alive."""
    for sc in _SCORERS.values():
        sc.lm = None


class Scorer:
    """Scores batches of one model; ``compiles`` counts the programs built (one per bucket)."""

    def __init__(self, lm: LanguageModel):
        self.lm = lm
        self.compiles = 0
        self.seconds = 0.0
        self.tokens = 0

        apply = lm.apply

        def fn(params, inputs, targets, mask):
            self.compiles += 1  # runs once per trace, i.e. per new input shape
            return _score(apply, params, inputs, targets, mask)

        kw = {}
        if lm.mesh is not None:
            rep = jax.sharding.NamedSharding(lm.mesh, jax.sharding.PartitionSpec())
            kw["out_shardings"] = (rep, rep, rep)
        self._fn = jax.jit(fn, **kw)

    def _put(self, x: np.ndarray) -> jax.Array:
        sh = self.lm.batch_sharding
        if sh is None:
            return jnp.asarray(x)
        if jax.process_count() == 1:
            return jax.device_put(x, sh)
        return jax.make_array_from_callback(x.shape, sh, lambda idx: x[idx])

    def dispatch(self, batch: Batch):
        """Start scoring ``batch`` (asynchronously); ``fetch`` the result."""
        t0 = time.perf_counter()
        args = [self._put(a) for a in (batch.inputs, batch.targets, batch.mask)]
        if self.lm.mesh is not None:
            with jax.set_mesh(self.lm.mesh):
                out = self._fn(self.lm.params, *args)
        else:
            out = self._fn(self.lm.params, *args)
        self.seconds += time.perf_counter() - t0
        self.tokens += batch.inputs.size
        return out

    def fetch(self, out) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log-probability sums, greedy-exact flags, argmax tokens) of a dispatched batch."""
        t0 = time.perf_counter()
        logprob, exact, greedy = jax.device_get(out)  # one wait for all three
        self.seconds += time.perf_counter() - t0
        return logprob, exact, greedy

    def __call__(self, batch: Batch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.fetch(self.dispatch(batch))


IN_FLIGHT = 8  # batches dispatched ahead of the one being read back


def score_batches(scorer: Scorer, batches: Iterable[Batch],
                  on_result: Callable[[int, tuple[np.ndarray, np.ndarray, np.ndarray]], None]) -> None:
    """Score ``batches`` in order, calling ``on_result(i, scorer's result)`` for batch ``i``. Up to
    ``IN_FLIGHT`` batches are queued on the device before the oldest is read back: the device runs
    them back to back while the host sends the next and reads results."""
    pending: collections.deque = collections.deque()
    for i, batch in enumerate(batches):
        pending.append((i, scorer.dispatch(batch)))
        if len(pending) > IN_FLIGHT:
            j, out = pending.popleft()
            on_result(j, scorer.fetch(out))
    while pending:
        j, out = pending.popleft()
        on_result(j, scorer.fetch(out))
