"""Bad task lists, task files and checkpoints end in one clear line (UserError)."""

import json

import pytest

from scaling_jax.errors import UserError
from scaling_jax.eval.prompts import build_items, encode_items
from scaling_jax.eval.tasks import TaskSpec, load_task, read_task_list
from scaling_jax.eval.tokenizers import ByteTokenizer


def _list(tmp_path, body, rows=None):
    if rows is not None:
        (tmp_path / "t.jsonl").write_text("".join(r + "\n" for r in rows))
    p = tmp_path / "tasks.yaml"
    p.write_text("icl_tasks:\n" + body)
    return p


MC = "- {label: t, dataset_uri: t.jsonl, num_fewshot: [0], icl_task_type: multiple_choice}\n"


@pytest.mark.parametrize("row,msg", [
    ('{"query": "q", "choices": ["a", "b"], "gold": 1', "t.jsonl:2: not valid JSON"),
    ('{"query": "q", "choices": ["a", "b"], "gold": 2}', "t.jsonl:2: gold index 2 is out of range for 2 choices"),
    ('{"query": "q", "choices": [], "gold": 0}', "t.jsonl:2: field 'choices' is empty"),
    ('{"choices": ["a"], "gold": 0}', "t.jsonl:2: missing field 'query'"),
])
def test_bad_task_lines_name_file_and_line(tmp_path, row, msg):
    good = '{"query": "q", "choices": ["a", "b"], "gold": 0}'
    (spec,) = read_task_list(_list(tmp_path, MC, [good, row]))
    with pytest.raises(UserError, match=msg):
        load_task(spec)


def test_unknown_task_type(tmp_path):
    p = _list(tmp_path, "- {label: t, dataset_uri: t.jsonl, num_fewshot: [0], icl_task_type: generation}\n")
    with pytest.raises(UserError, match=r"task 't': unknown icl_task_type 'generation'"):
        read_task_list(p)


def test_missing_file_is_a_warning(tmp_path):
    (spec,) = read_task_list(_list(tmp_path, MC))
    with pytest.warns(UserWarning, match=r"task 't': file .*t.jsonl not found"):
        assert load_task(spec) is None


def test_continuation_longer_than_the_sequence(tmp_path):
    spec = TaskSpec("t", "language_modeling", rows=({"context": "abc", "continuation": "x" * 40},))
    items = build_items(load_task(spec), False)
    msg = "t.jsonl: example 0: continuation of 40 tokens leaves no context within the sequence length 32"
    with pytest.raises(UserError, match=msg):
        encode_items(items, ByteTokenizer(256), 32, "t.jsonl")


def test_checkpoint_of_another_shape(trained_run, tmp_path):
    import shutil

    from scaling_jax.cli import main

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["set"]["d_model"] = 32
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"checkpoint is of another model shape"):
        from scaling_jax.train.lm import load_run
        load_run(run)
    assert main(["eval", str(run), "--tasks", "synthetic", "--out", str(tmp_path / "o")]) == 2
