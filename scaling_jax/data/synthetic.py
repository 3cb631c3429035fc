"""A synthetic language whose true loss is known exactly.

Every document (one training window of ``seq_len + 1`` tokens) comes from one of K sparse
first-order Markov sources over V token ids, chosen with Zipf weights ``pi_k ∝ k^-s``.
Each source has its own sparse start distribution and, for each state, ``successors``
possible next tokens with Dirichlet-drawn probabilities. The design aim: frequent sources
are learned first and rare ones need more parameters and more data, so the loss keeps
falling with scale along a heavy tail instead of saturating after one easy pattern. (That
the fall is a power law over the paper's range of N and M has not been measured yet.)

Documents are generated on the fly from ``(seed, split, index)`` with a counter-based
seed, so any index is random access, train and val use disjoint streams, and there is no
end to the unique tokens (an M = 640 run never repeats a document).

True loss. A model reading x_0..x_{t-1} of a window and predicting x_t can do no better
than the mixture's posterior predictive p(x_t | x_<t) = Σ_k p(k | x_<t) P_k(x_t | x_{t-1}).
By the chain rule its summed log loss over a window is exactly
-log p(x_1..x_L | x_0) = -log Σ_k π_k s_k(x_0) Π_t P_k(x_t|x_{t-1}) + log Σ_k π_k s_k(x_0).
``bayes_loss`` returns that divided by L, per sequence: the Bayes-optimal validation loss
(nats per predicted token) on the very sequences the model is scored on. A fitted
irreducible term E is to be compared with its mean (as L grows the posterior concentrates,
so it approaches the source-known conditional entropy rate).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from scaling_jax.config import NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, POSITIVE_INT, check_ranges

SPLIT_IDS = {"train": 0, "val": 1}
UNLIMITED = 1 << 62


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    vocab_size: int = 512
    n_sources: int = 256
    successors: int = 8
    zipf_exponent: float = 1.1
    concentration: float = 0.5
    seed: int = 0

    def __post_init__(self):
        check_ranges(self, vocab_size=POSITIVE_INT, n_sources=POSITIVE_INT, successors=POSITIVE_INT,
                     zipf_exponent=NON_NEGATIVE, concentration=POSITIVE, seed=NON_NEGATIVE_INT)


def logsumexp(a: np.ndarray) -> float:
    """log Σ exp(a) over all of ``a``, stable; -inf when every entry is -inf (NumPy only, no SciPy)."""
    if np.size(a) == 0:
        return float("-inf")
    m = np.max(a)
    if not np.isfinite(m):
        return float(m)
    return float(m + np.log(np.exp(a - m).sum()))


def zipf_prior(K: int, exponent: float) -> np.ndarray:
    """π_k ∝ k^-exponent over ranks k = 1..K: the sources' prior."""
    w = np.arange(1, K + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def _cdf(p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=-1)
    c[..., -1] = 1.0
    return c


class MarkovMixture:
    """The sources' tables, drawn once from the config's seed."""

    def __init__(self, cfg: SyntheticConfig):
        self.cfg = cfg
        K, V, S = cfg.n_sources, cfg.vocab_size, cfg.successors
        rng = np.random.default_rng([cfg.seed, 0x5EED])
        self.prior_K = zipf_prior(K, cfg.zipf_exponent)
        self.succ_KxVxS = rng.integers(0, V, (K, V, S), dtype=np.int32)
        self.prob_KxVxS = _dirichlet(rng, cfg.concentration, (K, V, S))
        self.start_KxS = rng.integers(0, V, (K, S), dtype=np.int32)
        self.start_prob_KxS = _dirichlet(rng, cfg.concentration, (K, S))
        self._prior_cdf = _cdf(self.prior_K)
        self._cdf_KxVxS = _cdf(self.prob_KxVxS)
        self._start_cdf_KxS = _cdf(self.start_prob_KxS)
        # An index from start token to the sources that can begin with it (a source may list a
        # token twice), so a document's posterior starts from those sources alone.
        key, inverse = np.unique(self.start_KxS.astype(np.int64) * K + np.arange(K)[:, None], return_inverse=True)
        prob = np.bincount(inverse.ravel(), weights=self.start_prob_KxS.ravel(), minlength=len(key))
        self._start_src = key % K
        self._start_logw = np.log(self.prior_K[self._start_src]) + np.log(prob)
        self._start_bounds_V = np.searchsorted(key // K, np.arange(V + 1))
        # One instance is shared by a process's train, val and eval sets (``mixture``), and
        # ``start``/``path`` hand out views: make every table read-only.
        for table in vars(self).values():
            if isinstance(table, np.ndarray):
                table.setflags(write=False)

    def _uniforms(self, split: str, idx_B: np.ndarray, n: int) -> np.ndarray:
        """The uniforms behind documents ``idx_B`` of ``split``: (B, n), each row its own stream."""
        if split not in SPLIT_IDS:
            raise ValueError(f"split {split!r}: expected one of {list(SPLIT_IDS)}")
        return np.stack([np.random.default_rng([self.cfg.seed, SPLIT_IDS[split], int(i)]).random(n)
                         for i in idx_B])

    def _source(self, u_B: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self._prior_cdf, u_B, side="right"), len(self.prior_K) - 1)

    def sources(self, split: str, idx_B: np.ndarray) -> np.ndarray:
        """The source (0-based Zipf rank) that wrote each of documents ``idx_B`` of ``split``."""
        return self._source(self._uniforms(split, idx_B, 1)[:, 0])

    def generate(self, split: str, idx_B: np.ndarray, length: int) -> np.ndarray:
        """Documents ``idx_B`` of ``split``, each ``length`` tokens: int32 (B, length)."""
        S = self.cfg.successors
        u_BxT = self._uniforms(split, idx_B, length + 1)
        k_B = self._source(u_BxT[:, 0])
        out = np.empty((len(idx_B), length), np.int32)
        j_B = np.minimum((u_BxT[:, 1, None] >= self._start_cdf_KxS[k_B]).sum(-1), S - 1)
        x_B = self.start_KxS[k_B, j_B]
        out[:, 0] = x_B
        for t in range(1, length):
            j_B = np.minimum((u_BxT[:, t + 1, None] >= self._cdf_KxVxS[k_B, x_B]).sum(-1), S - 1)
            x_B = self.succ_KxVxS[k_B, x_B, j_B]
            out[:, t] = x_B
        return out

    def path(self, prev: int, x_T: np.ndarray, ids: np.ndarray | None = None,
             logw: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The sources among ``ids`` (default: all, in order) that can emit x_1..x_T after x_0 =
        ``prev``, and for each ``logw`` (default 0) + log P_k(x_1..x_T | prev).

        Step by step over the sources still possible: each step keeps about successors/V of them,
        so even a million sources cost about one pass over their tables, not T."""
        x_T = np.asarray(x_T, dtype=np.int64)
        prevs = np.concatenate([[prev], x_T[:-1]])
        if logw is None:
            logw = np.zeros(len(self.prior_K) if ids is None else len(ids))
        for prev_t, x_t in zip(prevs, x_T):
            rows = slice(None) if ids is None else ids  # the first step of all sources reads views
            p = (self.prob_KxVxS[rows, prev_t] * (self.succ_KxVxS[rows, prev_t] == x_t)).sum(-1)
            keep = np.flatnonzero(p > 0)
            ids = keep if ids is None else ids[keep]
            logw = logw[keep] + np.log(p[keep])
        return (np.arange(len(self.prior_K)) if ids is None else ids), logw

    def start(self, x0: int) -> tuple[np.ndarray, np.ndarray]:
        """The sources that can start a document with ``x0`` (in order), and log π_k s_k(x0) for each."""
        if not 0 <= x0 < self.cfg.vocab_size:
            raise ValueError(f"token {x0}: outside the vocabulary [0, {self.cfg.vocab_size})")
        lo, hi = self._start_bounds_V[x0], self._start_bounds_V[x0 + 1]
        return self._start_src[lo:hi], self._start_logw[lo:hi]

    def joint(self, x_T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sources that can emit the document x_0..x_T, and log π_k p_k(x_0..x_T) for each: the
        unnormalised posterior over sources (every other source has probability 0)."""
        return self.path(int(x_T[0]), x_T[1:], *self.start(int(x_T[0])))

    def bayes_loss(self, tokens_BxT: np.ndarray) -> np.ndarray:
        """Bayes-optimal mean loss (nats/token) of predicting x_1..x_L from the prefix, per row."""
        tokens_BxT = np.asarray(tokens_BxT)
        out = np.empty(len(tokens_BxT))
        for b, x_T in enumerate(tokens_BxT):
            ids, logw = self.start(int(x_T[0]))
            joint = logsumexp(self.path(int(x_T[0]), x_T[1:], ids, logw)[1])
            out[b] = -(joint - logsumexp(logw)) / (len(x_T) - 1)
        return out


def _dirichlet(rng: np.random.Generator, alpha: float, shape: tuple[int, ...]) -> np.ndarray:
    g = rng.gamma(alpha, size=shape) + 1e-12
    return g / g.sum(-1, keepdims=True)


def unigram_entropy(tokens: np.ndarray) -> float:
    """Entropy (nats) of the empirical unigram distribution: a model of no context's loss."""
    counts = np.bincount(np.asarray(tokens).ravel())
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


@functools.lru_cache(maxsize=4)
def mixture(cfg: SyntheticConfig) -> MarkovMixture:
    """The tables of ``cfg``, drawn once per process: a corpus of a million sources takes seconds
    and a gigabyte to draw, and a sweep worker reads it for each run's train and val sets and for
    its evaluation suite."""
    return MarkovMixture(cfg)


class SyntheticWindows:
    """Random-access windows of ``seq_len + 1`` tokens, one synthetic document each."""

    def __init__(self, cfg: SyntheticConfig, seq_len: int, split: str, n_windows: int = UNLIMITED):
        self.mixture = mixture(cfg)
        self.seq_len, self.split, self.n = seq_len, split, n_windows
        self.vocab_size = cfg.vocab_size
        self.name = f"synthetic(seed={cfg.seed})/{split}"

    def __len__(self) -> int:
        return self.n

    def read_batch(self, idx_B) -> np.ndarray:
        return self.mixture.generate(self.split, np.asarray(idx_B), self.seq_len + 1)

    def mean_bayes_loss(self, n: int) -> float:
        """The Bayes-optimal loss of the first ``n`` windows, once per process for each (corpus,
        split, length, n): the runs of a sweep share their validation set."""
        key = (self.mixture.cfg, self.split, self.seq_len, n)
        if key not in _BAYES_LOSS:
            _BAYES_LOSS[key] = float(self.mixture.bayes_loss(self.read_batch(np.arange(n))).mean())
        return _BAYES_LOSS[key]


_BAYES_LOSS: dict[tuple, float] = {}
