"""An in-context suite drawn from the synthetic corpus's own sources, with exact Bayes accuracies.

Tiny CPU models score at chance on real tasks; on these they climb with model quality, so a sweep
of tiny runs yields (loss, error) pairs Eq. 5 can fit. Examples are written as token-id text
(``"12 5 33"``, read by ``tokenizers.IdTokenizer``) in the three LLM-Foundry formats and go through the same
prompt, batching and scoring code as the real tasks (0-shot: a few-shot example from another
source would only confuse the source the context identifies). Every document is a fresh draw
of the mixture (its own ``eval`` stream, disjoint from train and val).

- ``synth_source_mc`` (multiple_choice, 4 choices): a context of ``CONTEXT`` tokens; the gold
  choice is its true next ``MC_CONT`` tokens, each distractor the same number of tokens drawn
  from the context's last token by a source chosen uniformly (whatever the context's source).
  Only the source the context identifies tells them apart.
- ``synth_complete`` (language_modeling): complete the next ``LM_CONT`` tokens; correct when the
  greedy argmax matches each of them.
- ``synth_schema`` (schema, 2 context options): two documents' first ``CONTEXT`` tokens, one
  continuation of ``MC_CONT`` tokens that follows the gold one.

Bayes accuracy: per example, the posterior probability of the gold answer's event under the
decision that maximises it, averaged over the examples, computed exactly from the sources'
tables (multiple choice: max_j P(gold = j | context, choices), with the distractor process in
the likelihood; completion: the probability of the joint mode of the continuation; schema:
max_j P(gold = j | options, continuation)). No model can expect more on these examples.
"""

from __future__ import annotations

import functools

import numpy as np

from scaling_jax.data.synthetic import MarkovMixture, SyntheticConfig, logsumexp, mixture
from scaling_jax.errors import UserError
from scaling_jax.eval.score import LanguageModel
from scaling_jax.eval.tasks import TaskSpec

CONTEXT, MC_CONT, LM_CONT, N_CHOICES, N_OPTIONS = 12, 3, 2, 4, 2
EVAL_STREAM = 1 << 40  # document indices of the val split far past any validation set


def _text(x) -> str:
    return " ".join(str(int(t)) for t in x)


def _walk(mix: MarkovMixture, k: int, prev: int, n: int, u: np.ndarray) -> list[int]:
    """``n`` tokens of source ``k`` after ``prev``, from uniforms ``u``."""
    out = []
    for t in range(n):
        cdf = np.cumsum(mix.prob_KxVxS[k, prev])
        prev = int(mix.succ_KxVxS[k, prev, min(int(np.searchsorted(cdf, u[t], side="right")), len(cdf) - 1)])
        out.append(prev)
    return out


def _posterior(mix: MarkovMixture, x) -> tuple[np.ndarray, np.ndarray]:
    """The sources that can have written ``x`` and their log posterior probabilities."""
    ids, lj = mix.joint(np.asarray(x))
    return ids, lj - logsumexp(lj)


def _docs(mix: MarkovMixture, first: int, n: int, length: int) -> np.ndarray:
    return mix.generate("val", np.arange(EVAL_STREAM + first, EVAL_STREAM + first + n), length)


def source_mc(mix: MarkovMixture, n: int, seed: int) -> tuple[list[dict], float]:
    K = mix.cfg.n_sources
    docs = _docs(mix, 0, n, CONTEXT + MC_CONT)
    rng = np.random.default_rng([seed, 0xE7A1, 0])
    rows, bayes = [], []
    for x in docs:
        ctx, gold_cont = x[:CONTEXT], list(x[CONTEXT:])
        choices = [gold_cont] + [_walk(mix, int(rng.integers(K)), int(ctx[-1]), MC_CONT, rng.random(MC_CONT))
                                 for _ in range(N_CHOICES - 1)]
        order = rng.permutation(N_CHOICES)
        choices = [choices[i] for i in order]
        gold = int(np.argmax(order == 0))
        # P(gold = j | c, X) ∝ p(x_j | c) Π_{i≠j} q(x_i) ∝ p(x_j | c) / q(x_j), q(x) = Σ_k P_k(x) / K
        ids, logw = _posterior(mix, ctx)
        p = np.array([np.exp(mix.path(int(ctx[-1]), c, ids, logw)[1]).sum() for c in choices])
        q = np.array([np.exp(mix.path(int(ctx[-1]), c)[1]).sum() / K for c in choices])
        post = p / q
        bayes.append(post.max() / post.sum())
        rows.append({"query": _text(ctx), "choices": [_text(c) for c in choices], "gold": gold})
    return rows, float(np.mean(bayes))


def complete(mix: MarkovMixture, n: int) -> tuple[list[dict], float]:
    """Bayes: the probability of the joint mode of the two continuation tokens (LM_CONT = 2)."""
    docs = _docs(mix, n, n, CONTEXT + LM_CONT)
    V = mix.cfg.vocab_size
    rows, bayes = [], []
    for x in docs:
        ctx, last = x[:CONTEXT], int(x[CONTEXT - 1])
        ids, logw = _posterior(mix, ctx)                         # the K' sources the context allows
        ks = ids[:, None]
        a1 = mix.succ_KxVxS[ids, last]                           # K'×S
        p1 = np.exp(logw)[:, None] * mix.prob_KxVxS[ids, last]   # K'×S
        a2 = mix.succ_KxVxS[ks, a1]                              # K'×S×S
        p2 = p1[:, :, None] * mix.prob_KxVxS[ks, a1]
        joint = np.zeros(V * V)
        np.add.at(joint, (np.broadcast_to(a1[:, :, None], a2.shape) * V + a2).ravel(), p2.ravel())
        bayes.append(joint.max())
        rows.append({"context": _text(ctx), "continuation": _text(x[CONTEXT:])})
    return rows, float(np.mean(bayes))


def schema(mix: MarkovMixture, n: int, seed: int) -> tuple[list[dict], float]:
    docs = _docs(mix, 2 * n, n * N_OPTIONS, CONTEXT + MC_CONT).reshape(n, N_OPTIONS, -1)
    rng = np.random.default_rng([seed, 0xE7A1, 2])
    rows, bayes = [], []
    for group in docs:
        gold = int(rng.integers(N_OPTIONS))
        cont = group[gold, CONTEXT:]
        options = group[:, :CONTEXT]
        # options are independent draws: P(gold = j | options, cont) ∝ p(cont | option j)
        lik = np.array([np.exp(mix.path(int(o[-1]), cont, *_posterior(mix, o))[1]).sum() for o in options])
        bayes.append(lik.max() / lik.sum())
        rows.append({"context_options": [_text(o) for o in options], "continuation": _text(cont), "gold": gold})
    return rows, float(np.mean(bayes))


def synthetic_suite(cfg: SyntheticConfig, n_examples: int = 400, seed: int = 0) -> list[TaskSpec]:
    """The three tasks for the corpus ``cfg``, ``n_examples`` each, with chance and Bayes accuracy."""
    if cfg.n_sources < 2:
        raise UserError(f"synthetic suite: needs at least 2 sources, the corpus has {cfg.n_sources}")
    return list(_suite(cfg, n_examples, seed))


@functools.lru_cache(maxsize=8)
def _suite(cfg: SyntheticConfig, n_examples: int, seed: int) -> tuple[TaskSpec, ...]:
    """Built once per process for each corpus: the exact Bayes accuracies take seconds, and a sweep
    worker evaluates every run of a ladder on the same suite."""
    mix = mixture(cfg)
    mc, mc_bayes = source_mc(mix, n_examples, seed)
    lm, lm_bayes = complete(mix, n_examples)
    sc, sc_bayes = schema(mix, n_examples, seed)
    return (
        TaskSpec("synth_source_mc", "multiple_choice", chance=1 / N_CHOICES, bayes_accuracy=mc_bayes, rows=tuple(mc),
                 token_text=True),
        TaskSpec("synth_complete", "language_modeling", chance=0.0, bayes_accuracy=lm_bayes, rows=tuple(lm),
                 token_text=True),
        TaskSpec("synth_schema", "schema", chance=1 / N_OPTIONS, bayes_accuracy=sc_bayes, rows=tuple(sc),
                 token_text=True),
    )


def mixture_lm(cfg: SyntheticConfig, max_seq_len: int = 4096) -> LanguageModel:
    """The corpus's own posterior predictive p(x_t | x_<t) as a ``LanguageModel``: the best model
    of the language, scored by the same code (memory K·B·L·V: for small corpora only). Impossible
    transitions get log-probability -1e4 instead of -inf so every score stays finite."""
    import jax
    import jax.numpy as jnp

    mix = mixture(cfg)
    K, V = cfg.n_sources, cfg.vocab_size
    T = np.zeros((K, V, V))
    np.add.at(T, (np.arange(K)[:, None, None], np.arange(V)[None, :, None], mix.succ_KxVxS), mix.prob_KxVxS)
    S = np.zeros((K, V))
    np.add.at(S, (np.arange(K)[:, None], mix.start_KxS), mix.start_prob_KxS)
    with np.errstate(divide="ignore"):
        logT = np.maximum(np.log(T), -1e4).astype(np.float32)
        logS = np.maximum(np.log(mix.prior_K)[:, None] + np.log(S), -1e4).astype(np.float32)

    def apply(params, tokens_BxL):
        logT_KxVxV, logS_KxV = params
        first_KxB = logS_KxV[:, tokens_BxL[:, 0]]
        step_KxBxL = logT_KxVxV[:, tokens_BxL[:, :-1], tokens_BxL[:, 1:]]
        cum_KxBxL = jnp.concatenate([first_KxB[..., None], first_KxB[..., None] + jnp.cumsum(step_KxBxL, -1)], -1)
        return jax.nn.logsumexp(cum_KxBxL[..., None] + logT_KxVxV[:, tokens_BxL], axis=0)

    return LanguageModel(apply=apply, params=(jnp.asarray(logT), jnp.asarray(logS)), max_seq_len=max_seq_len,
                         vocab_size=V, name=f"mixture(seed={cfg.seed})")
