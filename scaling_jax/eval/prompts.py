"""Few-shot prompts and their token ids, built as LLM-Foundry's in-context-learning datasets build them.

Rules (``llmfoundry/eval/datasets/in_context_learning_evaluation.py`` and ``utils.py``, read, not
copied):

- every string field of an example is stripped (lists such as ``choices`` are not);
  ``prompt_string`` and ``prelimiter`` are not;
- ``num_fewshot`` other examples are drawn per example, in file order, by one
  ``random.Random(fewshot_random_seed)`` (1234 by default) shared across the file:
  ``set(rng.sample(range(n), k))``, and if the example itself was drawn it is swapped for a fresh
  ``rng.choice``; they are rendered in the set's iteration order after ``prompt_string``, each with
  its gold answer;
- the example delimiter (``'\\n'``) comes before a rendered example whenever text precedes it (the
  prompt string or an earlier shot): ``[\\n]prelimiter + context + continuation_delimiter
  [+ answer]``; the example's own context is right-stripped; schema examples put the prelimiter
  first, ``prelimiter[\\n]option + delimiter + continuation`` as shots, and as scored contexts
  ``prelimiter\\noption + delimiter.rstrip()`` after preceding text, ``prelimiter + option`` without;
- answers (choices, continuations) get a leading space when the tokenizer encodes ``' a'`` as
  one token (GPT-style BPE) and do not start with one;
- few-shot text, context and answer are tokenized separately and concatenated; the context is
  trimmed from the left so context + answer fit the sequence length.

With ``has_categories`` each category is its own few-shot pool with its own generator, as
LLM-Foundry splits such a file into one dataset per category.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from typing import Any, Protocol

import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.eval.tasks import FEWSHOT_SEED as FEWSHOT_SEED
from scaling_jax.eval.tasks import TaskData, TaskSpec


class Tokenizer(Protocol):
    def encode_batch(self, texts: list[str]) -> list[list[int]]: ...

    def decode(self, ids: list[int]) -> str: ...


@dataclasses.dataclass(frozen=True)
class Item:
    """One example: the texts of its scored rows (one per choice / context option)."""

    index: int
    preamble: str
    contexts: tuple[str, ...]
    continuations: tuple[str, ...]
    gold: int | str
    category: str | None = None

    @property
    def prompts(self) -> list[str]:
        return [self.preamble + c for c in self.contexts]


def fewshot_indices(n: int, k: int, example: int, rng: random.Random) -> set[int]:
    """LLM-Foundry's draw: ``k`` distinct indices of ``n`` other than ``example`` (a set: its
    iteration order is the prompt's order)."""
    k = min(n - 1, k)
    idx = set(rng.sample(range(n), k))
    if example in idx:
        idx.remove(example)
        if len(idx) >= n - 1:
            return idx
        extra = rng.choice(range(n))
        while extra in idx or extra == example:
            extra = rng.choice(range(n))
        idx.add(extra)
    return idx


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.strip() if isinstance(v, str) else v for k, v in row.items()}


def _answer(row: dict, kind: str) -> str:
    if kind == "multiple_choice":
        return row["choices"][row["gold"]]
    return row["continuation"]


def _context(row: dict, kind: str) -> str:
    if kind == "multiple_choice":
        return row["query"]
    if kind == "schema":
        return row["context_options"][row["gold"]]
    return row["context"]


def _spaced(text: str, prefix_space: bool) -> str:
    return f" {text}" if prefix_space and not text.startswith(" ") else text


def _shot(row: dict, spec: TaskSpec, lead: str) -> str:
    """A few-shot example with its answer; ``lead`` is the example delimiter when text precedes it
    (a schema example puts the prelimiter before it, the others after it, as LLM-Foundry does)."""
    kind, p = spec.task_type, spec.prelimiter
    head = f"{p}{lead}" if kind == "schema" else f"{lead}{p}"
    return head + _context(row, kind) + spec.continuation_delimiter + _answer(row, kind)


def _items(rows: list[dict], idx: list[int], spec: TaskSpec, prefix_space: bool, limit: int | None) -> list[Item]:
    kind, d_cont, d_ex, p = spec.task_type, spec.continuation_delimiter, spec.example_delimiter, spec.prelimiter
    rng = random.Random(spec.fewshot_random_seed)
    out = []
    for local, i in enumerate(idx):
        if limit is not None and i >= limit:
            break
        pre = spec.prompt_string
        if spec.num_fewshot > 0:
            for j in fewshot_indices(len(idx), spec.num_fewshot, local, rng):
                pre += _shot(rows[idx[j]], spec, d_ex if pre else "")
        row = rows[i]
        lead = d_ex if pre else ""
        if kind == "schema":
            contexts = tuple(f"{p}{lead}{c}{d_cont.rstrip()}" if pre else p + c for c in row["context_options"])
            conts = (_spaced(row["continuation"], prefix_space),) * len(contexts)
            gold: int | str = row["gold"]
        elif kind == "multiple_choice":
            conts = tuple(_spaced(c, prefix_space) for c in row["choices"])
            contexts = ((lead + p + row["query"] + d_cont).rstrip(),) * len(conts)
            gold = row["gold"]
        else:
            conts = (_spaced(row["continuation"], prefix_space),)
            contexts = ((lead + p + row["context"] + d_cont).rstrip(),)
            gold = row["continuation"]
        out.append(Item(i, pre, contexts, conts, gold, row.get("category")))
    return out


def build_items(task: TaskData, prefix_space: bool, limit: int | None = None) -> list[Item]:
    """Every example of ``task`` (the first ``limit`` of the file) with its few-shot prompt."""
    rows = [_strip(r) for r in task.rows]
    if not task.spec.has_categories:
        return _items(rows, list(range(len(rows))), task.spec, prefix_space, limit)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(r["category"], []).append(i)
    items = [it for idx in groups.values() for it in _items(rows, idx, task.spec, prefix_space, limit)]
    return sorted(items, key=lambda it: it.index)


def needs_prefix_space(tokenizer: Tokenizer) -> bool:
    """LLM-Foundry's test: GPT-style BPE encodes ``' a'`` as one token and wants a leading space."""
    return len(tokenizer.encode_batch([" a"])[0]) == 1


@dataclasses.dataclass(frozen=True)
class Encoded:
    """An item's scored rows as token ids: ``tokens[r]`` is the trimmed context then the
    continuation, whose span starts at ``start[r]``."""

    tokens: tuple[tuple[int, ...], ...]
    start: tuple[int, ...]

    @functools.cached_property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """``tokens`` as int32 arrays, built once per cached encoding (batch assembly copies
        slices of them, which is much cheaper than converting tuples on every run)."""
        return tuple(np.asarray(t, np.int32) for t in self.tokens)


def encode_items(items: list[Item], tokenizer: Tokenizer, max_seq_len: int, where: str) -> list[Encoded]:
    """Token ids of every row, tokenized in one batch per kind of text."""
    pre_ids = tokenizer.encode_batch([it.preamble for it in items])
    ctx_ids = tokenizer.encode_batch([c for it in items for c in it.contexts])
    cont_ids = tokenizer.encode_batch([c for it in items for c in it.continuations])
    out, r = [], 0
    for it, pre in zip(items, pre_ids):
        toks, starts = [], []
        for _ in it.contexts:
            ctx, cont = pre + ctx_ids[r], cont_ids[r]
            r += 1
            if not cont:
                raise UserError(f"{where}: example {it.index}: a continuation encodes to no tokens")
            room = max_seq_len - len(cont)
            if room < 1:
                raise UserError(f"{where}: example {it.index}: continuation of {len(cont)} tokens leaves no "
                                f"context within the sequence length {max_seq_len} after trimming")
            ctx = ctx[-room:] if len(ctx) > room else ctx
            if not ctx:
                raise UserError(f"{where}: example {it.index}: empty context; the first continuation token "
                                "has nothing to be predicted from")
            toks.append(tuple(ctx + cont))
            starts.append(len(ctx))
        out.append(Encoded(tuple(toks), tuple(starts)))
    return out
