"""Run a suite of tasks on one model: prompts → token ids (cached per tokenizer) → bucketed batches
of every task together → scores → per-example records, per-task accuracies and the averages.

Scoring (LLM-Foundry's metrics): multiple choice and schema pick the row with the lowest mean
per-token cross-entropy over its continuation (the first on ties); language modeling is correct
when the greedy argmax matches every continuation token. Beside that accuracy, ``acc_norm`` is
lm-eval-harness's: the row of highest log-likelihood per character of its choice (the choice
without the leading space the prompt rules add, ``len(choice)`` as lm-eval's
``process_results``; for ASCII text its byte length); for language modeling it is the accuracy.

Task losses (the intermediate of the two-step downstream laws, ``laws.downstream``): per example
the gold continuation's summed log-probability, its token count and its UTF-8 byte count (with
the leading space it is scored with); per task ``loss_per_token`` (mean over examples of the gold
continuation's nats per token) and ``bpb`` (mean over examples of its bits per byte, as the OLMo
ladder's task loss: −log₂ p(gold) / bytes; Paloma's unit).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from scaling_jax import paths
from scaling_jax.eval import batching
from scaling_jax.eval.aggregate import average_errors
from scaling_jax.eval.prompts import Encoded, Item, build_items, encode_items, needs_prefix_space
from scaling_jax.eval.score import LanguageModel, Scorer, score_batches, scorer_for
from scaling_jax.eval.tasks import TaskData, TaskSpec, load_task
from scaling_jax.eval.tokenizers import IdTokenizer

_ENCODED: dict[tuple, tuple[list[Item], list[Encoded]]] = {}


def _tokenizer_key(tokenizer) -> Any:
    """A tokenizer.json by its path, the evaluator's own tokenizers by their ``cache_key``, any
    other object by its identity."""
    path = getattr(tokenizer, "path", None)
    if path:
        return ("file", path)
    return getattr(tokenizer, "cache_key", None) or ("object", id(tokenizer))


def _encoding_key(task: TaskData, tokenizer, max_seq_len: int, limit: int | None) -> tuple:
    return (_tokenizer_key(tokenizer), task.sha256, task.spec.prompt_rules, max_seq_len, limit)


def prepare(task: TaskData, tokenizer, max_seq_len: int, limit: int | None) -> tuple[list[Item], list[Encoded]]:
    """The task's items and token ids, tokenized once per (tokenizer, file contents, rules)."""
    s = task.spec
    key = _encoding_key(task, tokenizer, max_seq_len, limit)
    if key not in _ENCODED:
        prefix = getattr(tokenizer, "prefix_space", None)
        prefix = needs_prefix_space(tokenizer) if prefix is None else prefix
        items = build_items(task, prefix, limit)
        _ENCODED[key] = (items, encode_items(items, tokenizer, max_seq_len, s.dataset_uri or s.label))
    return _ENCODED[key]


@dataclasses.dataclass
class SuiteResult:
    """The suite's summary, and its per-example records built on first use (scoring needs
    only arrays; the records are for ``examples.jsonl``)."""

    summary: dict[str, Any]
    build_examples: Callable[[], list[dict[str, Any]]] = dataclasses.field(repr=False)

    @functools.cached_property
    def examples(self) -> list[dict[str, Any]]:
        return self.build_examples()

    @property
    def accuracies(self) -> dict[str, float]:
        return {k: v["accuracy"] for k, v in self.summary["tasks"].items()}

    @property
    def task_losses(self) -> dict[str, float]:
        """Per task the gold continuation's bits per byte (``bpb``)."""
        return {k: v["bpb"] for k, v in self.summary["tasks"].items()}

    @property
    def acc_norm(self) -> dict[str, float]:
        return {k: v["acc_norm"] for k, v in self.summary["tasks"].items()}

    def write(self, out: str | Path) -> None:
        """``eval.json`` and ``examples.jsonl`` into a local folder or ``gs://`` prefix."""
        paths.write_json(paths.join(out, "eval.json"), self.summary)
        paths.write_text(paths.join(out, "examples.jsonl"), "".join(json.dumps(e) + "\n" for e in self.examples))


@dataclasses.dataclass(frozen=True)
class _Layout:
    """A suite's batches for one model shape, and the flat row order their results are gathered
    in: item ``k``'s row ``r`` is flat row ``first[k] + r``."""

    batches: tuple[batching.Batch, ...]
    where: tuple[np.ndarray, ...]  # per batch: the flat row of each filled batch row
    first: np.ndarray  # per item: its first flat row
    item: np.ndarray  # per flat row: its item
    n_tokens: np.ndarray  # per flat row: continuation tokens scored


_LAYOUTS: dict[tuple, _Layout] = {}


def _layout(encoded: list[Encoded], key: tuple, max_seq_len: int, **plan_kw) -> _Layout:
    """Batches planned once per (the tasks' encoding keys, shape): later calls only score."""
    key = (key, max_seq_len, *sorted(plan_kw.items()))
    if key not in _LAYOUTS:
        n_rows = np.array([len(e.tokens) for e in encoded], np.int64)
        first = np.cumsum(n_rows) - n_rows
        batches = tuple(batching.plan(encoded, max_seq_len, **plan_kw))
        where = tuple(np.array([first[i] + r for i, r in b.rows], np.int64) for b in batches)
        n_tok = np.array([len(t) - s for e in encoded for t, s in zip(e.tokens, e.start)], np.float64)
        _LAYOUTS[key] = _Layout(batches, where, first, np.repeat(np.arange(len(encoded)), n_rows), n_tok)
    return _LAYOUTS[key]


def _choices(logprob: np.ndarray, lay: _Layout, length: np.ndarray | None = None) -> np.ndarray:
    """Per item, the row of lowest mean cross-entropy per unit of ``length`` (default: per token,
    LLM-Foundry's rule; per character of the choice: lm-eval's acc_norm), the first on ties as
    np.argmin."""
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_ce = -logprob / (lay.n_tokens if length is None else length)
    lowest = np.fmin.reduceat(mean_ce, lay.first) if len(lay.first) else mean_ce  # a NaN row is never chosen
    at = np.flatnonzero(mean_ce == lowest[lay.item])
    items, firsts = np.unique(lay.item[at], return_index=True)
    pred = np.zeros(len(lay.first), np.int64)
    pred[items] = at[firsts] - lay.first[items]
    return pred


def _record(task: TaskSpec, item: Item, enc: Encoded, logprobs: np.ndarray, pred, correct: bool) -> dict[str, Any]:
    rec = {"task": task.label, "index": item.index,
           "prompt": item.prompts[0] if task.task_type != "schema" else item.prompts,
           "continuations": list(item.continuations), "logprobs": logprobs.tolist(),
           "n_tokens": [len(t) - s for t, s in zip(enc.tokens, enc.start)],
           "n_bytes": [len(c.encode("utf-8")) for c in item.continuations], "pred": pred, "gold": item.gold,
           "correct": bool(correct)}
    if item.category is not None:
        rec["category"] = item.category
    return rec


def run_suite(lm: LanguageModel, tokenizer, specs: list[TaskSpec], *, limit: int | None = None,
              tokens_per_batch: int = 8192, smallest_bucket: int = 16, progress: bool = False,
              scorer: Scorer | None = None) -> SuiteResult:
    """Score every task of ``specs`` that can be read (a missing file is warned about and listed);
    ``tokenizer`` reads the text tasks, token-id tasks (the synthetic suite) read themselves."""
    t_start = time.perf_counter()
    tasks, missing = [], []
    for spec in specs:
        data = load_task(spec)
        if data is None:
            missing.append(spec.label)
        else:
            tasks.append(data)
    ids = IdTokenizer(lm.vocab_size)
    tokenizers = [ids if t.spec.token_text else tokenizer for t in tasks]
    prepared = [prepare(t, tok, lm.max_seq_len, limit) for t, tok in zip(tasks, tokenizers)]
    encoded = [e for _, enc in prepared for e in enc]
    keys = tuple(_encoding_key(t, tok, lm.max_seq_len, limit) for t, tok in zip(tasks, tokenizers))
    lay = _layout(encoded, keys, lm.max_seq_len, tokens_per_batch=tokens_per_batch, shards=lm.shards,
                  smallest_bucket=smallest_bucket)
    scorer = scorer or scorer_for(lm)
    compiles0, seconds0 = scorer.compiles, scorer.seconds
    logprob = np.zeros(len(lay.item), np.float64)
    exact = np.zeros(len(lay.item), bool)
    greedy: list[np.ndarray] = []
    bar = tqdm(total=len(lay.batches), unit="batch", desc="eval", disable=not progress, dynamic_ncols=True)

    def collect(i: int, result) -> None:
        lp, ex, gr = result
        where = lay.where[i]
        logprob[where], exact[where] = lp[:len(where)], ex[:len(where)]
        greedy.append(gr)
        bar.update(1)

    score_batches(scorer, lay.batches, collect)
    bar.close()

    conts = [c for items, _ in prepared for it in items for c in it.continuations]
    n_bytes = np.array([len(c.encode("utf-8")) for c in conts], np.float64)
    choice = _choices(logprob, lay)
    choice_norm = _choices(logprob, lay, np.array([max(len(_choice_text(c)), 1) for c in conts], np.float64))
    summary_tasks, judged, k = {}, [], 0
    for t, (items, _) in zip(tasks, prepared):
        ks = np.arange(k, k + len(items))
        k += len(items)
        if t.spec.task_type == "language_modeling":
            correct = correct_norm = exact[lay.first[ks]]
            gold = lay.first[ks]
        else:
            golds = np.array([it.gold for it in items])
            correct, correct_norm = choice[ks] == golds, choice_norm[ks] == golds
            gold = lay.first[ks] + golds
        judged.append((t, items, ks, correct))
        summary_tasks[t.spec.label] = _task_summary(t, items, correct, correct_norm,
                                                    _gold_losses(logprob[gold], lay.n_tokens[gold], n_bytes[gold]))

    def build_examples() -> list[dict[str, Any]]:
        row_at = {int(f): (b, i) for b, where in enumerate(lay.where) for i, f in enumerate(where)}
        out = []
        for (t, items, ks, correct), tok in zip(judged, tokenizers):
            for item, kk, ok in zip(items, ks.tolist(), correct.tolist()):
                f = int(lay.first[kk])
                rows = slice(f, f + len(encoded[kk].tokens))
                if t.spec.task_type == "language_modeling":
                    b, i = row_at[f]
                    lo, hi = lay.batches[b].spans[i]
                    pred = tok.decode(greedy[b][i, lo:hi].tolist())
                else:
                    pred = int(choice[kk])
                out.append(_record(t.spec, item, encoded[kk], logprob[rows].astype(np.float32), pred, ok))
        return out

    acc = {k: v["accuracy"] for k, v in summary_tasks.items()}
    seconds = time.perf_counter() - t_start
    summary = {
        "model": lm.name, "tasks": summary_tasks, "missing": missing, **average_errors(acc),
        "limit": limit,
        "speed": {"seconds": seconds, "scoring_seconds": scorer.seconds - seconds0, "examples": len(encoded),
                  "batches": len(lay.batches), "compiles": scorer.compiles - compiles0,
                  "examples_per_s": len(encoded) / seconds if seconds else None},
    }
    return SuiteResult(summary, build_examples)


def _choice_text(continuation: str) -> str:
    """The choice as lm-eval's ``doc_to_choice`` gives it: without the leading space that the
    prompt rules (``prompts._spaced``) or lm-eval's target delimiter put before it."""
    return continuation[1:] if continuation.startswith(" ") else continuation


def _gold_losses(logprob: np.ndarray, n_tokens: np.ndarray, n_bytes: np.ndarray) -> dict[str, float | None]:
    """``loss_per_token`` and ``bpb`` of the gold continuations: means over examples of −log p /
    tokens (nats) and −log₂ p / bytes (None for a task with no examples)."""
    if not len(logprob):
        return {"loss_per_token": None, "bpb": None}
    return {"loss_per_token": float(np.mean(-logprob / n_tokens)),
            "bpb": float(np.mean(-logprob / (np.log(2.0) * np.maximum(n_bytes, 1.0))))}


def _mean_by_category(items: list[Item], flags: np.ndarray) -> tuple[float, dict[str, float]]:
    """Mean of ``flags`` over the categories' means (LLM-Foundry's accuracy of a task with categories)."""
    cats: dict[str, list[float]] = {}
    for it, c in zip(items, flags):
        cats.setdefault(it.category, []).append(c)
    by_cat = {k: float(np.mean(v)) for k, v in cats.items()}
    return float(np.mean(list(by_cat.values()))), by_cat


def _task_summary(task: TaskData, items: list[Item], correct: np.ndarray, correct_norm: np.ndarray,
                  losses: dict[str, float | None]) -> dict[str, Any]:
    s = task.spec
    correct, correct_norm = correct.astype(float), correct_norm.astype(float)
    chance = s.chance
    if chance is None:
        chance = 0.0 if s.task_type == "language_modeling" else float(np.mean([1 / len(it.contexts) for it in items]))
    entry: dict[str, Any] = {"accuracy": float(correct.mean()) if len(correct) else 0.0,
                             "acc_norm": float(correct_norm.mean()) if len(correct) else 0.0, **losses,
                             "n_examples": len(items),
                             "n_examples_in_file": len(task.rows), "chance": chance, "type": s.task_type,
                             "num_fewshot": s.num_fewshot, "file": s.dataset_uri or None, "sha256": task.sha256}
    if s.bayes_accuracy is not None:
        entry["bayes_accuracy"] = s.bayes_accuracy
    if s.has_categories:
        entry["accuracy"], entry["categories"] = _mean_by_category(items, correct)  # mean over categories
        entry["acc_norm"], _ = _mean_by_category(items, correct_norm)
    return entry


def resolve_tasks(arg: str, synthetic=None, *, where: str = "--tasks") -> list[TaskSpec]:
    """``synthetic`` (the suite of the corpus config ``synthetic``), a ``heavy.yaml``-style file, or
    comma-separated labels of the default list."""
    from scaling_jax.errors import UserError
    from scaling_jax.eval.synthetic_tasks import synthetic_suite
    from scaling_jax.eval.tasks import default_list_path, read_task_list, select

    arg = arg.strip()
    if arg == "synthetic":
        if synthetic is None:
            raise UserError(f"{where} synthetic: the model was not trained on the synthetic corpus "
                            "(data.corpus.kind: synthetic), so it has no synthetic suite")
        return synthetic_suite(synthetic)
    if arg.endswith((".yaml", ".yml")) or Path(arg).is_file():
        return read_task_list(arg)
    labels = [x.strip() for x in arg.split(",") if x.strip()]
    if not labels:
        raise UserError(f"{where}: empty")
    return select(read_task_list(default_list_path()), labels, f"{where} {arg}")
