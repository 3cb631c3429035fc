"""The suite end to end: CLI files, accuracy above chance and rising with training on the synthetic
suite, chance level for a random model on a real multiple-choice task, the training record."""

import json
import math

import pytest

from scaling_jax.cli import main
from scaling_jax.data.synthetic import SyntheticConfig
from scaling_jax.eval.suite import run_suite
from scaling_jax.eval.synthetic_tasks import mixture_lm, synthetic_suite
from scaling_jax.eval.tasks import read_task_list, select
from scaling_jax.eval.tokenizers import ByteTokenizer

SYN = SyntheticConfig(vocab_size=64, n_sources=8, successors=4)


def test_cli_writes_eval_and_examples(trained_run, tmp_path, icl_dir, capsys, monkeypatch):
    monkeypatch.setenv("SCALING_JAX_ICL_TASKS", str(icl_dir / "heavy.yaml"))
    out = tmp_path / "out"
    assert main(["eval", str(trained_run), "--tasks", "boolq,lambada_openai,squad", "--limit", "8",
                 "--out", str(out), "--no-progress"]) == 0
    s = json.loads((out / "eval.json").read_text())
    assert set(s["tasks"]) == {"boolq", "lambada_openai"} and s["missing"] == ["squad"]  # squad is not public
    assert s["err_17_n_tasks"] == 2 and s["err_46_n_tasks"] == 2
    assert s["tasks"]["boolq"]["n_examples"] == 8 and s["tasks"]["boolq"]["chance"] == 0.5
    assert len(s["tasks"]["boolq"]["sha256"]) == 64
    assert s["speed"]["compiles"] <= 1  # one bucket: the model's 32 tokens
    ex = [json.loads(x) for x in (out / "examples.jsonl").read_text().splitlines()]
    assert len(ex) == 16
    e = ex[0]
    assert set(e) >= {"task", "index", "prompt", "continuations", "logprobs", "n_tokens", "pred", "gold", "correct"}
    assert e["task"] == "boolq" and sorted(e["continuations"]) == ["no", "yes"] and len(e["logprobs"]) == 2
    assert e["prompt"].endswith("\nAnswer:") and e["prompt"].count("\nAnswer: ") == 10  # 10 shots
    assert "missing task files: squad" in capsys.readouterr().out


def test_accuracy_rises_with_training_above_chance_below_bayes(trained_run, tmp_path):
    from scaling_jax.train.lm import load_run

    specs = synthetic_suite(SYN, n_examples=200)
    early = run_suite(load_run(trained_run / "checkpoints" / "10").lm, None, specs).summary
    late = run_suite(load_run(trained_run).lm, None, specs).summary
    assert late["err_synthetic"] < early["err_synthetic"] - 0.05
    for name, t in late["tasks"].items():
        assert t["chance"] + 0.1 < t["accuracy"] < t["bayes_accuracy"], name
    record = json.loads((trained_run / "record.json").read_text())
    assert set(record["accuracies"]) == {"synth_source_mc", "synth_complete", "synth_schema"}
    # issue 30: the record's task losses (bits per byte) and acc_norm are the suite's, with chance and Bayes
    summary = json.loads((trained_run / "eval.json").read_text())["tasks"]
    assert record["task_losses"] == {k: v["bpb"] for k, v in summary.items()} and all(
        v > 0 for v in record["task_losses"].values())
    assert record["acc_norm"] == {k: v["acc_norm"] for k, v in summary.items()}
    assert record["hyperparameters"]["eval"]["bayes_accuracy"] == {k: v["bayes_accuracy"] for k, v in summary.items()}
    assert record["err_17"] == record["err_46"] == pytest.approx(1 - sum(record["accuracies"].values()) / 3)
    assert record["hyperparameters"]["eval"]["suite"] == "synthetic"
    from scaling_jax.testbed.points_io import read_points

    assert read_points(trained_run, need_error=True)["error"][0] == pytest.approx(record["err_17"])


def test_bayes_accuracy_bounds_the_true_mixture():
    specs = synthetic_suite(SYN, n_examples=200)
    s = run_suite(mixture_lm(SYN), None, specs).summary
    for name, t in s["tasks"].items():
        sd = math.sqrt(t["bayes_accuracy"] * (1 - t["bayes_accuracy"]) / 200) + 1e-3
        assert t["accuracy"] <= t["bayes_accuracy"] + 3 * sd, name
        assert t["accuracy"] > t["chance"] + 0.15, name


def test_records_agree_with_the_summary_and_a_repeat_call():
    """Accuracies are judged on arrays and the records built afterwards: both must agree, on every
    task type, and a second call (batches from the cached layout) must give the same records."""
    specs = synthetic_suite(SYN, n_examples=60)
    first, again = (run_suite(mixture_lm(SYN), None, specs) for _ in range(2))
    assert first.examples == again.examples and first.summary["tasks"] == again.summary["tasks"]
    for name, t in first.summary["tasks"].items():
        recs = [e for e in first.examples if e["task"] == name]
        assert len(recs) == t["n_examples"] == 60
        assert t["accuracy"] == pytest.approx(sum(e["correct"] for e in recs) / len(recs)), name
        for e in recs:
            if t["type"] == "language_modeling":
                assert e["correct"] == (e["pred"] == e["gold"]), e
            else:  # the lowest mean cross-entropy, the first on ties
                ce = [-lp / n for lp, n in zip(e["logprobs"], e["n_tokens"])]
                assert e["pred"] == ce.index(min(ce)) and e["correct"] == (e["pred"] == e["gold"]), e


def test_ties_go_to_the_first_choice():
    import numpy as np

    from scaling_jax.eval.suite import _choices, _Layout

    first = np.array([0, 3, 5])  # items of 3, 2 and 4 rows
    lay = _Layout((), (), first, np.repeat([0, 1, 2], [3, 2, 4]), np.array([2.0, 1, 1, 4, 2, 1, 1, 1, 1]))
    logprob = np.array([-2.0, -1, -1, -4, -2, -3, -1, -1, -2])  # mean CE: 1 1 1 | 1 1 | 3 1 1 2
    assert _choices(logprob, lay).tolist() == [0, 0, 1]


def test_random_model_is_at_chance_on_a_real_task(icl_dir):
    from tests.eval.conftest import random_transformer

    lm, _ = random_transformer(1, seq_len=256, vocab_size=256)
    specs = select(read_task_list(icl_dir / "heavy.yaml"), ["arc_easy"], "t")
    n = 200
    s = run_suite(lm, ByteTokenizer(256), specs, limit=n, smallest_bucket=256).summary  # one bucket, one compile
    assert s["speed"]["compiles"] == 1
    acc = s["tasks"]["arc_easy"]["accuracy"]
    half = 3.29 * math.sqrt(0.25 * 0.75 / n)  # 99.9 % binomial interval around chance
    assert abs(acc - 0.25) < half
