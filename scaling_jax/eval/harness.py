"""lm-evaluation-harness on our checkpoints: the lm-eval model ``scaling_jax``.

``lm_eval --model scaling_jax --model_args run=DIR[,step=S,batch_tokens=T,tokenizer=...] --tasks ...``
scores a run's checkpoint with the evaluator's own jitted scorer (``eval/score.py``): every
(context, continuation) request becomes one row of token ids, left-truncated to the model's
``max_seq_len + 1`` tokens as lm-eval's Hugging Face model truncates; rows go into the
evaluator's length buckets and padded batches (``eval/batching.py``), so one program compiles
per bucket, laid out over the mesh's data axis. ``loglikelihood_rolling`` scores lm-eval's
disjoint rolling windows the same way; ``generate_until`` decodes greedily (a full forward of
the bucket's batch per token, no cache) until a stop sequence, the end-of-document token or
``max_gen_toks``.

The tokenizer is the run's (its ``eval.tokenizer``, else its corpus's) or ``tokenizer=``: a
``tokenizer.json``, ``ids`` (space-separated token ids, the synthetic language) or ``bytes``.
A run on the synthetic language has no text tokenizer and must name one.

lm-eval finds the model by name through an entry point (group ``lm_eval.models``, read by
lm-eval releases with plugin discovery) and, for releases without it, through
``eval/lm_eval_hook.py``, which the installed ``scaling_jax_lm_eval.pth`` loads.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import lm_eval.models  # noqa: F401  (the built-in models register before ours: lm-eval loads them only into an empty registry)
import numpy as np
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

from scaling_jax import paths
from scaling_jax.errors import UserError
from scaling_jax.eval import batching
from scaling_jax.eval.prompts import Encoded
from scaling_jax.eval.score import LanguageModel, score_batches, scorer_for
from scaling_jax.eval.tokenizers import ByteTokenizer, IdTokenizer

MODEL_NAME = "scaling_jax"
SMALLEST_BUCKET = 16  # as the evaluator's suites
log = logging.getLogger(__name__)


def harness_tokenizer(cfg, vocab_size: int, choice: str | None, where: str):
    """The text tokenizer for lm-eval's strings: ``choice`` (``ids``, ``bytes`` or a
    tokenizer.json), else the run's own (``eval.tokenizer``, else its corpus's); a run on the
    synthetic language has none and must be given one."""
    from scaling_jax.train.lm import run_tokenizer

    if choice == "ids":
        return IdTokenizer(vocab_size)
    if choice == "bytes":
        return ByteTokenizer(vocab_size)
    if not choice and not cfg.eval.tokenizer and cfg.data.corpus.kind == "synthetic":
        raise UserError(f"{where}: has no tokenizer (trained on the synthetic language); pass tokenizer=ids "
                        "(token-id text), tokenizer=bytes or tokenizer=PATH (a tokenizer.json)")
    try:
        return run_tokenizer(cfg, vocab_size, choice or None)
    except KeyError:
        raise UserError(f"{where}: has no tokenizer (its corpus {cfg.data.corpus.path} names none); "
                        "pass tokenizer=PATH (a tokenizer.json)") from None


def request_row(context: list[int], continuation: list[int], max_len: int) -> tuple[tuple[int, ...], int]:
    """One scored row: context then continuation, the oldest tokens dropped so that at most
    ``max_len + 1`` remain (``max_len`` model inputs, as lm-eval's HF model truncates), and where
    the scored continuation starts (at least one context token stays; a continuation longer than
    the model keeps only its last ``max_len`` tokens scored)."""
    toks = (list(context) + list(continuation))[-(max_len + 1):]
    return tuple(toks), len(toks) - min(len(continuation), len(toks) - 1)


def stop_at(text: str, until: list[str]) -> int | None:
    """Where the first of the stop sequences ``until`` begins in ``text`` (None if none occurs)."""
    hits = [i for i in (text.find(s) for s in until if s) if i >= 0]
    return min(hits) if hits else None


@register_model(MODEL_NAME)
class HarnessLM(TemplateLM):
    """lm-eval's model interface on a ``LanguageModel`` (``model_args``: ``run`` a run folder, its
    ``checkpoints/`` folder or one step's folder; ``step``; ``batch_tokens`` tokens per scoring
    batch; ``tokenizer``; ``max_gen_toks``). lm-eval's ``batch_size``, ``max_batch_size`` and
    ``device`` are accepted and unused: batches are sized in tokens and placed on the run's mesh."""

    def __init__(self, run: str, step: int | None = None, batch_tokens: int = 8192, tokenizer: str | None = None,
                 max_gen_toks: int = 256, batch_size: Any = None, max_batch_size: Any = None, device: Any = None):
        from scaling_jax.train.lm import load_run

        path = paths.join(str(run), "checkpoints", str(step)) if step is not None else str(run)
        loaded = load_run(path)
        tok = harness_tokenizer(loaded.config, loaded.lm.vocab_size, tokenizer, f"run {run}")
        self._setup(loaded.lm, tok, batch_tokens=batch_tokens, max_gen_toks=max_gen_toks,
                    info={"run": str(run), "step": loaded.step})

    @classmethod
    def from_lm(cls, lm: LanguageModel, tokenizer, *, batch_tokens: int = 8192, max_gen_toks: int = 256,
                info: dict | None = None) -> "HarnessLM":
        """The model around an already loaded ``LanguageModel`` and tokenizer."""
        self = cls.__new__(cls)
        self._setup(lm, tokenizer, batch_tokens=batch_tokens, max_gen_toks=max_gen_toks, info=info or {})
        return self

    def _setup(self, lm: LanguageModel, tokenizer, *, batch_tokens: int, max_gen_toks: int, info: dict) -> None:
        super().__init__()
        for name, v in (("batch_tokens", batch_tokens), ("max_gen_toks", max_gen_toks)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UserError(f"model_args {name}: must be an integer >= 1, got {v!r}")
        self.lm, self._tokenizer, self.batch_tokens, self._max_gen_toks = lm, tokenizer, batch_tokens, max_gen_toks
        self.info = {"run_name": lm.name, **info}  # lm-eval adds it to its results' config
        self.scorer = scorer_for(lm)

    # --- what TemplateLM asks of a model -------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        """The end-of-document id (a text tokenizer's); id 0 for the ids and bytes tokenizers."""
        return int(getattr(self._tokenizer, "eod_id", 0))

    @property
    def max_length(self) -> int:
        return self.lm.max_seq_len

    @property
    def max_gen_toks(self) -> int:
        return self._max_gen_toks

    @property
    def tokenizer_name(self) -> str:
        return str(getattr(self._tokenizer, "path", None) or getattr(self._tokenizer, "cache_key", ("?",))[0])

    def get_model_info(self) -> dict:
        return dict(self.info)

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self._tokenizer.encode_batch([string])[0]

    def tok_decode(self, tokens) -> str:
        return self._tokenizer.decode(list(tokens))

    # --- scoring -------------------------------------------------------------------------------
    def encode_pairs(self, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context ids, continuation ids) per (context, continuation) as ``TemplateLM.loglikelihood``
        makes them (an empty context is the end-of-document token, or the continuation's first
        token if it is that; else the context's trailing spaces move to the continuation, and the
        whole string is encoded and split after the context's ids), every distinct string
        encoded in one batch (lm-eval encodes two strings a request, one at a time)."""
        split = [(c.rstrip(), c[len(c.rstrip()):] + k) if c else ("", k) for c, k in pairs]
        texts = list(dict.fromkeys(t for (c, _), (s, k) in zip(pairs, split) for t in ((s + k, s) if c else (k,))))
        enc = dict(zip(texts, self._tokenizer.encode_batch(texts)))
        out = []
        for (c, _), (s, k) in zip(pairs, split):
            if c:
                ctx = enc[s]
                out.append((ctx, enc[s + k][len(ctx):]))
            else:
                cont = enc[k]
                first = cont[:1] == [self.prefix_token_id]
                out.append((cont[:1], cont[1:]) if first else ([self.prefix_token_id], cont))
        return out

    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        pairs = [tuple(req.args) for req in requests]
        encoded = self.encode_pairs(pairs)
        return self._loglikelihood_tokens([(p, c, k) for p, (c, k) in zip(pairs, encoded)], disable_tqdm)

    def score_rows(self, rows: list[tuple[tuple[int, ...], int]]) -> tuple[np.ndarray, np.ndarray]:
        """(log-probability of the continuation, greedy-exact) per row (tokens, continuation
        start), each distinct row scored once, in the evaluator's buckets and batches."""
        unique = list(dict.fromkeys(rows))
        at = {r: i for i, r in enumerate(unique)}
        encoded = [Encoded((toks,), (start,)) for toks, start in unique]
        batches = list(batching.plan(encoded, self.max_length, tokens_per_batch=self.batch_tokens,
                                     shards=self.lm.shards, smallest_bucket=SMALLEST_BUCKET))
        logprob, exact = np.zeros(len(unique)), np.zeros(len(unique), bool)

        def collect(i: int, result) -> None:
            lp, ex, _ = result
            idx = [item for item, _ in batches[i].rows]
            logprob[idx], exact[idx] = lp[:len(idx)], ex[:len(idx)]

        score_batches(self.scorer, batches, collect)
        pick = np.array([at[r] for r in rows], np.int64)
        return logprob[pick], exact[pick]

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        rows = [request_row(ctx, cont, self.max_length) for _, ctx, cont in requests]
        cut = sum(len(cont) > self.max_length for _, _, cont in requests)
        if cut:  # the log-likelihood of part of the continuation: said, not passed off as the whole
            warnings.warn(f"{cut} of {len(requests)} continuation(s) are longer than the model's {self.max_length} "
                          f"tokens: only their last {self.max_length} tokens are scored", stacklevel=2)
        scored = [i for i, (_, _, cont) in enumerate(requests) if cont]  # an empty continuation: 0.0, greedy
        out = [(0.0, True)] * len(requests)
        if scored:
            lp, ex = self.score_rows([rows[i] for i in scored])
            for i, a, b in zip(scored, lp.tolist(), ex.tolist()):
                out[i] = (float(a), bool(b))
        for (key, _, _), res in zip(requests, out):
            if key is not None:
                self.cache_hook.add_partial("loglikelihood", key, res)
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Each string's total log-likelihood over lm-eval's disjoint rolling windows (the first
        conditioned on the end-of-document token)."""
        windows, owner = [], []
        for i, (string,) in enumerate(req.args for req in requests):
            for ctx, cont in map(make_disjoint_window, get_rolling_token_windows(
                    token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length, context_len=1)):
                windows.append((None, ctx, cont))
                owner.append(i)
        totals = np.zeros(len(requests))
        if windows:
            np.add.at(totals, owner, [lp for lp, _ in self._loglikelihood_tokens(windows)])
        for req, total in zip(requests, totals.tolist()):
            self.cache_hook.add_partial("loglikelihood_rolling", (req.args[0],), total)
        return totals.tolist()

    # --- generation ----------------------------------------------------------------------------
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy continuations, grouped by their generation settings."""
        out: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            groups.setdefault(repr(sorted(req.args[1].items())), []).append(i)
        bar = tqdm(total=len(requests), desc="generate", disable=disable_tqdm)
        for idx in groups.values():
            kw = normalize_gen_kwargs(requests[idx[0]].args[1], self.max_gen_toks)
            if kw.get("do_sample"):
                log.warning("%s: decodes greedily; do_sample=True ignored", MODEL_NAME)
            until = handle_stop_sequences(kw.get("until"), eos=None)
            texts = self.greedy([requests[i].args[0] for i in idx], until, int(kw["max_gen_toks"]))
            for i, text in zip(idx, texts):
                out[i] = text
                self.cache_hook.add_partial("generate_until", requests[i].args, text)
            bar.update(len(idx))
        bar.close()
        return out  # type: ignore[return-value]

    def greedy(self, contexts: list[str], until: list[str], max_gen_toks: int) -> list[str]:
        """Greedy decoding of ``contexts``: each step feeds every unfinished row (its last
        ``max_len`` tokens) through the scorer and appends the argmax at its last position."""
        ctx = self._tokenizer.encode_batch(contexts)
        gen: list[list[int]] = [[] for _ in contexts]
        text = [""] * len(contexts)
        longest = min(self.max_length, max((len(c) for c in ctx), default=1) + max_gen_toks - 1)
        length = next(b for b in batching.buckets(self.max_length, min(SMALLEST_BUCKET, self.max_length))
                      if b >= longest)
        n_rows = batching.rows_per_batch(length, self.batch_tokens, self.lm.shards, 1)
        eod = getattr(self._tokenizer, "eod_id", None)
        active = [i for i, c in enumerate(ctx) if c]  # an empty context has nothing to predict from
        for _ in range(max_gen_toks):
            if not active:
                break
            batches, inputs = [], []
            for k in range(0, len(active), n_rows):
                seqs = []
                for i in active[k:k + n_rows]:
                    toks = np.asarray((ctx[i] + gen[i])[-self.max_length:] + [batching.PAD_ID], np.int32)
                    seqs.append((toks, len(toks) - 1, i, len(toks) - 2))
                batches.append(batching.make_batch(seqs, n_rows, length))
                inputs.append(seqs)

            def collect(b: int, result) -> None:
                for row, (_, _, i, last) in enumerate(inputs[b]):
                    gen[i].append(int(result[2][row, last]))

            score_batches(self.scorer, batches, collect)
            still = []
            for i in active:
                text[i] = self.tok_decode(gen[i][:-1] if gen[i][-1] == eod else gen[i])
                if gen[i][-1] != eod and stop_at(text[i], until) is None:
                    still.append(i)
            active = still
        return [postprocess_generated_text(t, until, None) for t in text]
