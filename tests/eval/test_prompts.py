"""Prompts built as LLM-Foundry builds them, on the real task files."""

import random

import pytest

from scaling_jax.eval.prompts import FEWSHOT_SEED, build_items, encode_items, fewshot_indices
from scaling_jax.eval.tasks import load_task, read_task_list, select
from scaling_jax.eval.tokenizers import ByteTokenizer


@pytest.fixture(scope="module")
def heavy(icl_dir):
    return read_task_list(icl_dir / "heavy.yaml")


def _items(heavy, label, limit=None, prefix_space=True):
    (spec,) = select(heavy, [label], "test")
    return load_task(spec), build_items(load_task(spec), prefix_space, limit)


def test_the_list_is_the_papers(heavy, icl_dir):
    assert len(heavy) == 46
    piqa = select(heavy, ["piqa"], "t")[0]
    assert (piqa.task_type, piqa.num_fewshot, piqa.continuation_delimiter) == ("multiple_choice", 10, "\nAnswer: ")
    assert piqa.dataset_uri == str(icl_dir / "local_data/commonsense_reasoning/piqa.jsonl")


def test_copa_zero_shot(heavy):
    task, items = _items(heavy, "copa")
    assert len(items) == len(task.rows) == 100
    it = items[0]
    assert it.preamble == ""
    assert it.prompts == ["The man turned on the faucet, therefore"] * 2  # query + ' ', right-stripped
    assert it.continuations == (" the toilet filled with water.", " water flowed from the spout.")
    assert it.gold == 1
    # a SentencePiece-style tokenizer (no one-token ' a') gets no prefix space
    assert build_items(task, False, 1)[0].continuations[1] == "water flowed from the spout."


def _reference_draws(n, k, examples):
    """LLM-Foundry's get_fewshot_sample_idxs, run in file order from one Random(1234)."""
    rng, out = random.Random(1234), []
    for i in range(examples):
        k_ = min(n - 1, k)
        idx = set(rng.sample(range(n), k_))
        if i in idx:
            idx.remove(i)
            extra = rng.choice(range(n))
            while extra in idx or extra == i:
                extra = rng.choice(range(n))
            idx.add(extra)
        out.append(list(idx))
    return out


def test_piqa_ten_shot(heavy):
    task, items = _items(heavy, "piqa", limit=40)
    assert len(items) == 40  # --limit: the first K, draws unchanged
    rows = [{k: v.strip() if isinstance(v, str) else v for k, v in r.items()} for r in task.rows]
    draws = _reference_draws(len(rows), 10, 40)
    for it, shots in zip(items, draws):
        assert it.index not in shots and len(set(shots)) == 10
        expected = "\n".join(f"{rows[j]['query']}\nAnswer: {rows[j]['choices'][rows[j]['gold']]}" for j in shots)
        assert it.preamble == expected
        assert it.prompts[0] == expected + "\n" + rows[it.index]["query"] + "\nAnswer:"
        assert it.continuations == tuple(" " + c.lstrip(" ") if not c.startswith(" ") else c
                                         for c in task.rows[it.index]["choices"])
    # the draws of example 39 do not depend on the limit
    assert _items(heavy, "piqa")[1][39] == items[39]


def test_fewshot_draws_exclude_the_example_and_are_distinct():
    rng = random.Random(FEWSHOT_SEED)
    for i in range(200):
        idx = fewshot_indices(12, 10, i % 12, rng)
        assert len(idx) == 10 and i % 12 not in idx
    assert fewshot_indices(3, 10, 0, random.Random(0)) == {1, 2}  # fewer rows than shots: all others


def test_winograd_schema(heavy):
    task, items = _items(heavy, "winograd")
    it = items[0]
    assert it.prompts == ["The city councilmen refused the demonstrators a permit because the city councilmen",
                          "The city councilmen refused the demonstrators a permit because the demonstrators"]
    assert it.continuations == (" feared violence.",) * 2 and it.gold == 0


def test_schema_with_fewshot_uses_the_stripped_delimiter(tmp_path):
    from scaling_jax.eval.tasks import TaskSpec
    rows = ({"context_options": [f"a{i}", f"b{i}"], "continuation": f"c{i}", "gold": i % 2} for i in range(4))
    spec = TaskSpec("s", "schema", num_fewshot=1, continuation_delimiter=" => ", rows=tuple(rows))
    it = build_items(load_task(spec), True)[0]
    shot = it.preamble  # one other example, its gold option and continuation
    assert shot in {"b1 => c1", "a2 => c2", "b3 => c3"}
    assert it.prompts == [shot + "\na0 =>", shot + "\nb0 =>"]


def test_lambada(heavy):
    task, items = _items(heavy, "lambada_openai", limit=3)
    row = {k: v.strip() for k, v in task.rows[0].items()}
    assert items[0].prompts == [row["context"]] and items[0].continuations == (" " + row["continuation"],)
    assert items[0].gold == row["continuation"]


def test_jeopardy_categories_are_separate_pools(heavy):
    task, items = _items(heavy, "jeopardy")
    by_cat = {}
    for it in items:
        by_cat.setdefault(it.category, set()).add(it.index)
    assert len(by_cat) == 5 and len(items) == len(task.rows)
    for it in items[:50]:
        shots = [p.split("\nAnswer: ")[0] for p in it.preamble.split("\n") if p and not p.startswith("Answer")]
        assert len(shots) == 10
        assert all(s.split(":")[0] == it.prompts[0].split(":")[0] for s in shots)  # same category


def test_context_is_trimmed_from_the_left(heavy):
    task, items = _items(heavy, "piqa", limit=2, prefix_space=False)
    tok = ByteTokenizer(256)
    (enc, _) = encode_items(items, tok, 256, "piqa")
    cont = list(items[0].continuations[0].encode())
    assert len(enc.tokens[0]) == 256 and list(enc.tokens[0][enc.start[0]:]) == cont
    assert bytes(enc.tokens[0][:enc.start[0]]) == items[0].prompts[0].encode()[-(256 - len(cont)):]
