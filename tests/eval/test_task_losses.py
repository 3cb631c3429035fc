"""Task losses and acc_norm (issue 30): the gold continuation's bits per byte checked against a hand
computation on a small task file, and acc_norm against lm-eval-harness's own ``process_results``."""

import json
import types

import numpy as np
import pytest

from scaling_jax.eval.score import LanguageModel
from scaling_jax.eval.suite import run_suite
from scaling_jax.eval.tasks import TaskSpec

V = 128  # character ids: ord(c) % V


class CharTokenizer:
    """One token per character; GPT-style, so answers get a leading space (as lm-eval's delimiter)."""

    prefix_space = True
    cache_key = ("chars-test", V)

    def encode_batch(self, texts):
        return [[ord(c) % V for c in t] for t in texts]

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


def bigram_lm(seed: int = 0) -> tuple[LanguageModel, np.ndarray]:
    """A model whose logits at a position are a fixed row of a table indexed by the current token."""
    import jax.numpy as jnp

    table = np.random.default_rng(seed).normal(0.0, 2.0, (V, V)).astype(np.float32)
    lm = LanguageModel(apply=lambda p, tok: p[tok], params=jnp.asarray(table), max_seq_len=64, vocab_size=V)
    return lm, table


def log_softmax(x):
    x = np.asarray(x, np.float64)
    return x - np.log(np.sum(np.exp(x - x.max()))) - x.max()


ROWS = [
    {"query": "Is the sky blue?", "choices": ["yes", "no", "it is often blue, yes"], "gold": 0},
    {"query": "Two plus two", "choices": ["four", "4", "five"], "gold": 0},
    {"query": "Capital of France", "choices": ["Paris", "Lyon", "the city of Paris"], "gold": 2},
    {"query": "Colour of grass", "choices": ["green", "a deep blue", "red"], "gold": 0},
    {"query": "Opposite of hot", "choices": ["cold", "warm", "freezing cold"], "gold": 0},
    {"query": "Ice is", "choices": ["frozen water", "hot", "dry"], "gold": 0},
]


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    path = tmp_path_factory.mktemp("tasks") / "mc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    spec = TaskSpec("mc", "multiple_choice", dataset_uri=str(path))
    lm, table = bigram_lm()
    res = run_suite(lm, CharTokenizer(), [spec])
    return res, table


def _hand_logprob(table, context: str, continuation: str) -> float:
    ids = [ord(c) % V for c in context + continuation]
    start = len(context)
    return sum(log_softmax(table[ids[i - 1]])[ids[i]] for i in range(start, len(ids)))


def test_bpb_and_loss_per_token_match_a_hand_computation(scored):
    res, table = scored
    t = res.summary["tasks"]["mc"]
    bpb, per_token = [], []
    for r in ROWS:
        context = (r["query"] + " ").rstrip()  # LLM-Foundry's context: query + delimiter, right-stripped
        gold = " " + r["choices"][r["gold"]]  # scored with its prefix space
        lp = _hand_logprob(table, context, gold)
        bpb.append(-lp / np.log(2.0) / len(gold.encode("utf-8")))
        per_token.append(-lp / len(gold))
    assert t["bpb"] == pytest.approx(np.mean(bpb), rel=1e-5)
    assert t["loss_per_token"] == pytest.approx(np.mean(per_token), rel=1e-5)
    assert res.task_losses == {"mc": t["bpb"]}
    for e, r in zip(res.examples, ROWS):
        assert e["n_bytes"] == [len((" " + c).encode("utf-8")) for c in r["choices"]]


def _lm_eval_acc_norm(doc, lls) -> dict:
    """lm-eval-harness's own multiple-choice metrics for one document, from its ``process_results``."""
    from lm_eval.api.task import ConfigurableTask

    task = types.SimpleNamespace(
        config=types.SimpleNamespace(process_results=None), OUTPUT_TYPE="multiple_choice",
        _metric_fn_list={"acc": None, "acc_norm": None}, multiple_input=False, multiple_target=False,
        doc_to_choice=lambda d: d["choices"], doc_to_target=lambda d: d["gold"])
    return ConfigurableTask.process_results(task, doc, [(ll, False) for ll in lls])


def test_acc_norm_is_lm_eval_harness_definition(scored):
    res, _ = scored
    ours = res.summary["tasks"]["mc"]
    theirs = [_lm_eval_acc_norm(r, e["logprobs"]) for r, e in zip(ROWS, res.examples)]
    assert ours["acc_norm"] == pytest.approx(np.mean([m["acc_norm"] for m in theirs]))
    # lm-eval's raw-likelihood acc is not ours (LLM-Foundry's per-token mean), but acc_norm must
    # differ from our accuracy on this file for the check above to mean anything
    assert ours["acc_norm"] != ours["accuracy"]
    assert res.acc_norm == {"mc": ours["acc_norm"]}
