"""LLM-Foundry's task keys ``prompt_string``, ``prelimiter`` (and its older name
``question_prelimiter``) and ``fewshot_random_seed`` shape prompts as LLM-Foundry's do; any other
key of a task list is refused by name, never ignored."""

import random

import pytest
import yaml

from scaling_jax.errors import UserError
from scaling_jax.eval import suite
from scaling_jax.eval.prompts import build_items
from scaling_jax.eval.tasks import TaskSpec, load_task, read_task_list
from scaling_jax.eval.tokenizers import ByteTokenizer


def _list(tmp_path, **extra):
    entry = {"label": "t", "dataset_uri": "t.jsonl", "icl_task_type": "multiple_choice", "num_fewshot": [1], **extra}
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump({"icl_tasks": [entry]}))
    return path


def test_the_keys_are_read(tmp_path):
    (spec,) = read_task_list(_list(tmp_path, prompt_string="Answer these.", prelimiter="Q: ", fewshot_random_seed=7))
    assert (spec.prompt_string, spec.prelimiter, spec.fewshot_random_seed) == ("Answer these.", "Q: ", 7)
    (spec,) = read_task_list(_list(tmp_path, question_prelimiter="Question: "))
    assert spec.prelimiter == "Question: "
    (spec,) = read_task_list(_list(tmp_path))
    assert (spec.prompt_string, spec.prelimiter, spec.fewshot_random_seed) == ("", "", 1234)


def test_any_other_key_is_refused_by_name(tmp_path):
    for key, value in (("batch_size", 4), ("metric_names", ["InContextLearningMultipleChoiceAccuracy"]),
                       ("max_seq_len", 1024), ("pass_at_k", 1)):
        with pytest.raises(UserError, match=rf"task 't': unsupported field\(s\) \['{key}'\]"):
            read_task_list(_list(tmp_path, **{key: value}))
    with pytest.raises(UserError, match="both 'prelimiter' and 'question_prelimiter'"):
        read_task_list(_list(tmp_path, prelimiter="Q: ", question_prelimiter="Q: "))
    with pytest.raises(UserError, match="field 'fewshot_random_seed' has the wrong type"):
        read_task_list(_list(tmp_path, fewshot_random_seed="7"))


# LLM-Foundry's construction (in_context_learning_evaluation.py: _generate_few_shot_prompt,
# construct_context, the schema dataset's construct_context and _construct_multiple_contexts; utils.py:
# get_fewshot_sample_idxs), restated here on stripped rows, continuation delimiter " | ".
def _fewshot_idxs(n, k, i, rng):
    idx = set(rng.sample(range(n), min(n - 1, k)))
    if i in idx:
        idx.remove(i)
        if len(idx) != n - 1:
            extra = rng.choice(range(n))
            while extra in idx or extra == i:
                extra = rng.choice(range(n))
            idx.add(extra)
    return idx


def _foundry(rows, kind, k, seed, prompt, pre, cont_del=" | ", ex_del="\n"):
    rng, out = random.Random(seed), []
    for i, row in enumerate(rows):
        text = prompt
        for j in _fewshot_idxs(len(rows), k, i, rng) if k else ():
            r = rows[j]
            if kind == "schema":
                c = r["context_options"][r["gold"]]
                c = f"{ex_del}{c}" if text else c
                text += f"{pre}{c}{cont_del}{r['continuation']}"
            else:
                ctx, ans = (r["query"], r["choices"][r["gold"]]) if kind == "multiple_choice" else \
                    (r["context"], r["continuation"])
                text += f"{ex_del if text else ''}{pre}{ctx}{cont_del}{ans}"
        if kind == "schema":
            ctxs = [f"{pre}{ex_del}{c}{cont_del.rstrip()}" if text else f"{pre}{c}" for c in row["context_options"]]
        else:
            ctx = row["query"] if kind == "multiple_choice" else row["context"]
            ctxs = [f"{ex_del if text else ''}{pre}{ctx}{cont_del}".rstrip()]
        out.append((text, ctxs))
    return out


ROWS = {
    "multiple_choice": [{"query": f"q{i}", "choices": [f"x{i}", f"y{i}"], "gold": i % 2} for i in range(6)],
    "language_modeling": [{"context": f"c{i}", "continuation": f"w{i}"} for i in range(6)],
    "schema": [{"context_options": [f"a{i}", f"b{i}"], "continuation": f"e{i}", "gold": i % 2} for i in range(6)],
}


@pytest.mark.parametrize("kind", sorted(ROWS))
@pytest.mark.parametrize("shots,prompt,pre,seed", [(2, "Answer these.", "Q: ", 7), (0, "Answer these.", "Q: ", 1234),
                                                   (3, "", "Q: ", 99), (2, "", "", 1234)])
def test_prompts_are_llm_foundrys(kind, shots, prompt, pre, seed):
    spec = TaskSpec("t", kind, num_fewshot=shots, continuation_delimiter=" | ", prompt_string=prompt, prelimiter=pre,
                    fewshot_random_seed=seed, rows=tuple(ROWS[kind]))
    items = build_items(load_task(spec), prefix_space=False)
    for it, (text, ctxs) in zip(items, _foundry(ROWS[kind], kind, shots, seed, prompt, pre), strict=True):
        assert it.preamble == text
        assert list(it.contexts) == (ctxs if kind == "schema" else ctxs * len(it.contexts))


def test_the_seed_changes_the_draws_and_the_encoding_cache_tells_specs_apart():
    def spec(**kw):
        return TaskSpec("t", "multiple_choice", num_fewshot=2, rows=tuple(ROWS["multiple_choice"]), **kw)

    base = spec()
    tok = ByteTokenizer(256)
    first = suite.prepare(load_task(base), tok, 512, None)[0]
    assert first == build_items(load_task(base), False)
    for other in (spec(fewshot_random_seed=5), spec(prompt_string="P"), spec(prelimiter="Q: ")):
        items = suite.prepare(load_task(other), tok, 512, None)[0]
        assert [it.prompts for it in items] != [it.prompts for it in first], other
