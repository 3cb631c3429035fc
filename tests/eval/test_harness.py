"""lm-evaluation-harness on our checkpoints (eval/harness.py, eval/harness_suite.py): the model's
log-likelihoods against our own scorer and a plain forward pass, rolling log-likelihoods, greedy
generation with stop sequences, a local lm-eval task (a YAML over a jsonl, no network) end to end
through ``scaling-jax eval --harness lm-eval`` and through the ``lm_eval`` CLI, and bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # the local task's jsonl needs no network
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window  # noqa: E402

from scaling_jax.cli import main  # noqa: E402
from scaling_jax.eval import harness_suite  # noqa: E402
from scaling_jax.eval.harness import request_row, stop_at  # noqa: E402

TASK = "synth_source_mc"
YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
  cache_dir: {cache}
test_split: test
output_type: multiple_choice
doc_to_text: query
doc_to_choice: choices
doc_to_target: gold
target_delimiter: ""
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
  - {{metric: acc_norm, aggregation: mean, higher_is_better: true}}
"""


@pytest.fixture(scope="module")
def examples(trained_run):
    """The run's own scored multiple-choice examples (our evaluator at the last checkpoint)."""
    rows = [json.loads(x) for x in (trained_run / "examples.jsonl").read_text().splitlines()]
    return [e for e in rows if e["task"] == TASK]


@pytest.fixture(scope="module")
def task_dir(examples, tmp_path_factory):
    """A local lm-eval task over the same examples: context = our prompt, choices = our continuations."""
    d = tmp_path_factory.mktemp("lm_eval_tasks")
    data = d / f"{TASK}.jsonl"
    data.write_text("".join(json.dumps({"query": e["prompt"], "choices": e["continuations"], "gold": e["gold"]}) + "\n"
                            for e in examples))
    (d / f"{TASK}.yaml").write_text(YAML.format(task=TASK, data=data, cache=d / "hf_cache"))
    return d


@pytest.fixture(scope="module")
def harness(trained_run):
    """The model as lm-eval builds it: by name from the registry, from a model_args string."""
    from lm_eval.api.registry import get_model

    return get_model("scaling_jax").create_from_arg_string(f"run={trained_run},step=40,tokenizer=ids,batch_tokens=1024",
                                                           {"batch_size": 1, "device": "cpu"})


def _ids(text):
    return [int(w) for w in text.split()]


def _reference(lm, tokens):
    """log p(token i+1 | tokens ≤ i) and the argmax at each position, from one plain forward
    pass of the whole row (right-padded to the model's length: one compile)."""
    x = np.zeros((1, lm.max_seq_len), np.int32)
    x[0, :len(tokens) - 1] = tokens[:-1]
    logp = np.asarray(jax.nn.log_softmax(_apply(lm)(lm.params, jnp.asarray(x)).astype(jnp.float32), -1))[0]
    n = len(tokens) - 1
    return logp[np.arange(n), tokens[1:]], logp[:n].argmax(-1)


_JIT = {}


def _apply(lm):
    return _JIT.setdefault(lm.apply, jax.jit(lm.apply))


def test_loglikelihoods_match_our_scorer_and_a_plain_forward(harness, examples):
    ex = examples[:25]
    pairs = [(e["prompt"], c) for e in ex for c in e["continuations"]]
    long_ctx = " ".join(str(i % 60) for i in range(70))  # 70 tokens: left-truncated to the model's 33
    pairs += [("", " 5 6 7"), (long_ctx, " 1 2")]
    got = harness.loglikelihood([Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)])
    ours = [lp for e in ex for lp in e["logprobs"]]
    n_tok = [n for e in ex for n in e["n_tokens"]]
    assert len(ours) == 100
    for (g, _), o, n in zip(got, ours, n_tok):  # our evaluator's records: float32
        assert abs(g - o) <= 1e-4 * n, (g, o)
    max_len = harness.max_length
    for (ctx, cont), (g, greedy) in zip(pairs, got):
        c = _ids(cont)
        toks, start = request_row(_ids(ctx) or [harness.eot_token_id], c, max_len)
        assert len(toks) <= max_len + 1 and toks[-len(c):] == tuple(c)
        lp, arg = _reference(harness.lm, np.array(toks))
        assert abs(g - lp[start - 1:].sum()) <= 1e-4 * len(c)
        assert greedy == bool((arg[start - 1:] == np.array(toks[start:])).all())


def test_batched_tokenization_is_lm_evals(harness, tmp_path, monkeypatch):
    """``encode_pairs`` gives the ids TemplateLM.loglikelihood gives, one string at a time, on a
    byte-level BPE (where encoding the whole string and splitting it differs from encoding parts)."""
    from lm_eval.api.model import TemplateLM

    from scaling_jax.data.tokenizer import train_bpe
    from scaling_jax.eval.harness import HarnessLM

    words = ["the cat sat", "on the mat", "a dog ran", "the end"] * 20
    bpe = HarnessLM.from_lm(harness.lm, train_bpe(words, 300, tmp_path / "tok.json"))
    pairs = [("the cat", " sat"), ("the cat ", "sat"), ("on the  ", " mat"), ("   ", "a dog"), ("", "the end"),
             ("", "<|endoftext|>the"), ("a", ""), ("dogs", "ran")]
    monkeypatch.setattr(bpe, "_loglikelihood_tokens", lambda reqs, *a, **k: [(c, k) for _, c, k in reqs])
    want = TemplateLM.loglikelihood(bpe, [Instance("loglikelihood", {}, p, i) for i, p in enumerate(pairs)])
    assert [tuple(map(list, w)) for w in want] == [tuple(map(list, g)) for g in bpe.encode_pairs(pairs)]
    assert want[5][0] == [bpe.eot_token_id]  # a continuation that starts with the token keeps it as context


def test_gold_fields_read_the_gold_choice_or_none():
    ll = lambda *v: [(x, False) for x in v]  # noqa: E731
    by_index = {"arguments": [("Q", " a"), ("Q", " bb")], "target": 1, "filtered_resps": ll(-1.0, -3.0)}
    by_text = {**by_index, "target": "bb"}
    # winogrande: the choices are contexts, the continuation one text for all: no gold by text
    shared = {"arguments": [("A x", " end"), ("B x", " end")], "target": "end", "filtered_resps": ll(-1.0, -2.0)}
    listed = {**by_index, "target": [0, 1]}
    mutual = {"arguments": [*by_index["arguments"], ("", " a"), ("", " bb")], "target": 1,
              "filtered_resps": ll(-1.0, -3.0, -0.5, -0.7)}  # acc_mutual_info's unconditional copies
    want = {"bpb": pytest.approx(3.0 / (np.log(2) * 3)), "chance": 0.5}
    assert harness_suite.gold_fields([by_index]) == want and harness_suite.gold_fields([by_text]) == want
    assert harness_suite.gold_fields([mutual]) == want
    assert harness_suite.gold_fields([shared]) == {} and harness_suite.gold_fields([listed]) == {}


def test_request_rows_truncate_from_the_left():
    assert request_row([1, 2, 3], [4, 5], 8) == ((1, 2, 3, 4, 5), 3)
    assert request_row(list(range(10)), [7, 8], 4) == ((5, 6, 7, 8, 9, 7, 8)[-5:], 3)
    assert request_row([1], list(range(10, 20)), 4) == ((15, 16, 17, 18, 19), 1)  # only the last 4 scored


def test_an_over_long_continuation_is_scored_on_its_tail_with_a_warning(harness):
    n = harness.max_length
    long = [(None, [1], [2 + i % 5 for i in range(n + 3)]), (None, [1], [2, 3])]
    with pytest.warns(UserWarning, match=rf"1 of 2 continuation\(s\) are longer than the model's {n} tokens"):
        (lp_long, _), _ = harness._loglikelihood_tokens(long)
    (lp_tail, _), = harness._loglikelihood_tokens([(None, long[0][2][:3], long[0][2][3:])])
    assert lp_long == pytest.approx(lp_tail, abs=1e-4)  # the last max_length tokens, after the 3 cut into context


def test_rolling_loglikelihood_is_the_sum_over_lm_evals_windows(harness):
    docs = [" ".join(str((7 * i) % 61) for i in range(n)) for n in (5, 70)]
    got = harness.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (d,), i) for i, d in enumerate(docs)])
    for doc, g in zip(docs, got):
        ref = 0.0
        for ctx, cont in map(make_disjoint_window, get_rolling_token_windows(
                _ids(doc), harness.eot_token_id, harness.max_length, 1)):
            lp, _ = _reference(harness.lm, np.array(ctx + cont))
            ref += lp[len(ctx) - 1:].sum()
        assert abs(g - ref) <= 1e-4 * len(_ids(doc))


def test_greedy_generation_stops_at_stop_sequences_and_max_tokens(harness, examples):
    prompts = [examples[0]["prompt"], examples[1]["prompt"]]
    refs = []
    for p in prompts:  # greedy by hand: one plain forward per token
        toks = _ids(p)
        for _ in range(6):
            _, arg = _reference(harness.lm, np.array(toks + [0]))
            toks.append(int(arg[-1]))
        refs.append(" ".join(map(str, toks[-6:])))
    compiles = harness.scorer.compiles
    reqs = [Instance("generate_until", {}, (p, {"until": ["\n\n"], "max_gen_toks": 6}), i)
            for i, p in enumerate(prompts)]
    assert harness.generate_until(reqs) == refs
    assert harness.scorer.compiles - compiles <= 1  # one bucket
    stop = " " + refs[0].split()[2]  # the third generated token ends the first continuation
    cut = refs[0][:stop_at(refs[0], [stop])]
    req = Instance("generate_until", {}, (prompts[0], {"until": [stop], "max_gen_toks": 6}), 0)
    assert harness.generate_until([req]) == [cut] and len(cut.split()) <= 2


@pytest.fixture
def local_tasks_only(monkeypatch):
    """lm-eval's task index without its own 14,000 tasks (7 s to build): the local task only."""
    real = harness_suite.task_manager
    monkeypatch.setattr(harness_suite, "task_manager", lambda path=(), defaults=True: real(path, False))


def test_local_task_end_to_end_through_the_cli(trained_run, task_dir, tmp_path, local_tasks_only, capsys):
    from scaling_jax.testbed.points_io import read_points

    out = tmp_path / "out"
    assert main(["eval", str(trained_run), "--harness", "lm-eval", "--tasks", TASK, "--include-path", str(task_dir),
                 "--tokenizer", "ids", "--harness-metric", "acc", "--out", str(out), "--no-progress"]) == 0
    s = json.loads((out / "eval.json").read_text())
    t = s["tasks"][TASK]
    ours = json.loads((trained_run / "eval.json").read_text())["tasks"][TASK]
    # Every choice has 3 tokens, so lm-eval's acc (highest sum) is our rule (lowest mean cross-entropy).
    assert t["metric"] == "acc" and abs(t["accuracy"] - ours["accuracy"]) <= 1 / 50 and t["n_examples"] == 50
    assert 0 <= t["acc_norm"] <= 1 and t["acc_stderr"] > 0
    assert s["err_synthetic"] == pytest.approx(1 - t["accuracy"]) and s["speed"]["compiles"] <= 1
    results = json.loads((out / harness_suite.RESULTS_FILE).read_text())
    assert results["results"][TASK]["acc,none"] == t["accuracy"] and results["n-samples"][TASK]["effective"] == 50
    record = json.loads((out / "record.json").read_text())
    assert record["accuracies"] == {TASK: t["accuracy"]} and record["hyperparameters"]["eval"]["harness"] == "lm-eval"
    # The same gold continuations as our evaluator's: the same bits per byte and chance.
    assert t["bpb"] == pytest.approx(ours["bpb"], rel=1e-4) and t["chance"] == pytest.approx(ours["chance"])
    assert record["task_losses"] == {TASK: t["bpb"]} and record["acc_norm"] == {TASK: t["acc_norm"]}
    assert record["hyperparameters"]["eval"]["chance"] == {TASK: t["chance"]}
    assert read_points(out, need_error=True)["error"][0] == pytest.approx(1 - t["accuracy"])  # what fit reads
    assert f"{TASK}" in capsys.readouterr().out


def _error_line(err: str) -> str:
    """The one line a bad input ends with (no traceback)."""
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_unknown_task_and_a_run_without_tokenizer(trained_run, task_dir, tmp_path, local_tasks_only, capsys):
    args = ["eval", str(trained_run), "--harness", "lm-eval", "--include-path", str(task_dir), "--no-progress"]
    assert main([*args, "--tasks", f"{TASK},nope_task", "--tokenizer", "ids", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert _error_line(err).endswith("unknown lm-eval task(s) nope_task (`lm_eval ls tasks` lists them; a local task "
                                     "YAML needs --include-path DIR)")
    assert main([*args, "--tasks", TASK, "--out", str(tmp_path / "b")]) == 2  # synthetic language: no tokenizer
    err = _error_line(capsys.readouterr().err)
    assert err.startswith(f"scaling-jax eval: error: run {trained_run}: has no tokenizer")
    assert not (tmp_path / "a" / "eval.json").exists() and not (tmp_path / "b" / "eval.json").exists()


@pytest.mark.slow
def test_the_lm_eval_cli_finds_the_model(trained_run, task_dir, tmp_path):
    """``lm_eval --model scaling_jax`` in a fresh process: the installed .pth's hook (or, on newer
    lm-eval, the entry point) registers it; reinstall (pip install -e .) if this fails by name."""
    exe = Path(sys.executable).parent / "lm_eval"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([str(exe), "--model", "scaling_jax", "--model_args", f"run={trained_run},tokenizer=ids",
                           "--tasks", TASK, "--include_path", str(task_dir), "--limit", "20",
                           "--output_path", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (res,) = (tmp_path / "out").rglob("results_*.json")
    r = json.loads(res.read_text())
    assert r["config"]["model"] == "scaling_jax" and r["config"]["step"] == 40
    assert r["n-samples"][TASK]["effective"] == 20
    assert 0 <= r["results"][TASK]["acc,none"] <= 1
