"""Run a suite of tasks on one model: prompts → token ids (cached per tokenizer) → bucketed batches
of every task together → scores → per-example records, per-task accuracies and the averages.

Scoring (LLM-Foundry's metrics): multiple choice and schema pick the row with the lowest mean
per-token cross-entropy over its continuation (the first on ties); language modeling is correct
when the greedy argmax matches every continuation token.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from scaling_jax import paths
from scaling_jax.eval import batching
from scaling_jax.eval.aggregate import average_errors
from scaling_jax.eval.prompts import Encoded, Item, build_items, encode_items, needs_prefix_space
from scaling_jax.eval.score import LanguageModel, Scorer, scorer_for
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


def prepare(task: TaskData, tokenizer, max_seq_len: int, limit: int | None) -> tuple[list[Item], list[Encoded]]:
    """The task's items and token ids, tokenized once per (tokenizer, file contents, rules)."""
    s = task.spec
    key = (_tokenizer_key(tokenizer), task.sha256, s.task_type, s.num_fewshot, s.continuation_delimiter,
           s.example_delimiter, s.has_categories, max_seq_len, limit)
    if key not in _ENCODED:
        prefix = getattr(tokenizer, "prefix_space", None)
        prefix = needs_prefix_space(tokenizer) if prefix is None else prefix
        items = build_items(task, prefix, limit)
        _ENCODED[key] = (items, encode_items(items, tokenizer, max_seq_len, s.dataset_uri or s.label))
    return _ENCODED[key]


@dataclasses.dataclass
class SuiteResult:
    summary: dict[str, Any]
    examples: list[dict[str, Any]]

    @property
    def accuracies(self) -> dict[str, float]:
        return {k: v["accuracy"] for k, v in self.summary["tasks"].items()}

    def write(self, out: str | Path) -> None:
        """``eval.json`` and ``examples.jsonl`` into a local folder or ``gs://`` prefix."""
        paths.write_json(paths.join(out, "eval.json"), self.summary)
        paths.write_text(paths.join(out, "examples.jsonl"), "".join(json.dumps(e) + "\n" for e in self.examples))


def _judge(task: TaskSpec, item: Item, enc: Encoded, logprob, exact, greedy, decode) -> dict[str, Any]:
    n_tok = [len(t) - s for t, s in zip(enc.tokens, enc.start)]
    rec = {"task": task.label, "index": item.index,
           "prompt": item.prompts[0] if task.task_type != "schema" else item.prompts,
           "continuations": list(item.continuations), "logprobs": [float(x) for x in logprob], "n_tokens": n_tok}
    if task.task_type == "language_modeling":
        rec["pred"] = decode(list(greedy[0]))
        rec["gold"] = item.gold
        rec["correct"] = bool(exact[0])
    else:
        mean_ce = [-lp / n for lp, n in zip(rec["logprobs"], n_tok)]
        rec["pred"] = min(range(len(mean_ce)), key=mean_ce.__getitem__)  # the first on ties, as np.argmin
        rec["gold"] = item.gold
        rec["correct"] = rec["pred"] == item.gold
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
    prepared = [prepare(t, ids if t.spec.token_text else tokenizer, lm.max_seq_len, limit) for t in tasks]
    flat = [(ti, ii) for ti, (items, _) in enumerate(prepared) for ii in range(len(items))]
    encoded = [prepared[ti][1][ii] for ti, ii in flat]
    scorer = scorer or scorer_for(lm)
    compiles0, seconds0 = scorer.compiles, scorer.seconds
    results: dict[int, dict[int, tuple]] = {i: {} for i in range(len(flat))}
    n_batches = 0
    bar = tqdm(total=len(flat), unit="ex", desc="eval", disable=not progress, dynamic_ncols=True)

    def collect(batch, out) -> None:
        logprob, exact, greedy = scorer.fetch(out)
        done = set()
        for b, ((item, row), (lo, hi)) in enumerate(zip(batch.rows, batch.spans)):
            results[item][row] = (logprob[b], exact[b], greedy[b, lo:hi])
            done.add(item)
        bar.update(len(done))

    pending = None  # one batch in flight while the next is built: the host never waits idle
    for batch in batching.plan(encoded, lm.max_seq_len, tokens_per_batch=tokens_per_batch, shards=lm.shards,
                               smallest_bucket=smallest_bucket):
        out = scorer.dispatch(batch)
        if pending is not None:
            collect(*pending)
        pending = (batch, out)
        n_batches += 1
    if pending is not None:
        collect(*pending)
    bar.close()
    examples, per_task = [], {t.spec.label: [] for t in tasks}
    for k, (ti, ii) in enumerate(flat):
        spec, item, enc = tasks[ti].spec, prepared[ti][0][ii], encoded[k]
        rows = [results[k][r] for r in range(len(enc.tokens))]
        rec = _judge(spec, item, enc, *zip(*rows), (ids if spec.token_text else tokenizer).decode)
        examples.append(rec)
        per_task[spec.label].append(rec)
    summary_tasks = {}
    for t, (items, _) in zip(tasks, prepared):
        recs = per_task[t.spec.label]
        entry = _task_summary(t, items, recs)
        summary_tasks[t.spec.label] = entry
    acc = {k: v["accuracy"] for k, v in summary_tasks.items()}
    seconds = time.perf_counter() - t_start
    summary = {
        "model": lm.name, "tasks": summary_tasks, "missing": missing, **average_errors(acc),
        "limit": limit,
        "speed": {"seconds": seconds, "scoring_seconds": scorer.seconds - seconds0, "examples": len(flat),
                  "batches": n_batches, "compiles": scorer.compiles - compiles0,
                  "examples_per_s": len(flat) / seconds if seconds else None},
    }
    return SuiteResult(summary, examples)


def _task_summary(task: TaskData, items: list[Item], recs: list[dict]) -> dict[str, Any]:
    s = task.spec
    correct = np.array([r["correct"] for r in recs], float)
    chance = s.chance
    if chance is None:
        chance = 0.0 if s.task_type == "language_modeling" else float(np.mean([1 / len(it.contexts) for it in items]))
    entry: dict[str, Any] = {"accuracy": float(correct.mean()) if len(correct) else 0.0, "n_examples": len(recs),
                             "n_examples_in_file": len(task.rows), "chance": chance, "type": s.task_type,
                             "num_fewshot": s.num_fewshot, "file": s.dataset_uri or None, "sha256": task.sha256}
    if s.bayes_accuracy is not None:
        entry["bayes_accuracy"] = s.bayes_accuracy
    if s.has_categories:
        cats: dict[str, list[float]] = {}
        for r, c in zip(recs, correct):
            cats.setdefault(r["category"], []).append(c)
        entry["categories"] = {k: float(np.mean(v)) for k, v in cats.items()}
        entry["accuracy"] = float(np.mean(list(entry["categories"].values())))  # mean over categories
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
