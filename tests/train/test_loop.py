import json
import os
import signal

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from scaling_jax.data.synthetic import SyntheticWindows, unigram_entropy
from scaling_jax.testbed.schema import RunRecord
from scaling_jax.train import loop
from scaling_jax.train.config import load_train_config

SMOKE = loop.Path(__file__).resolve().parents[2] / "configs" / "train" / "cpu_smoke.yaml"


def _train_rows(out):
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["grad_norm"]) for r in rows if r["kind"] == "train"]


def _params(out, step):
    restored = ocp.StandardCheckpointer().restore(out / "checkpoints" / str(step) / "state")
    return restored["params"]


def _snapshot(out):
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_smoke_config_learns_well_below_unigram_entropy(tmp_path):
    cfg = load_train_config(SMOKE, ["logging.progress=false"])
    outcome = loop.train(cfg, tmp_path)
    rec = RunRecord.from_json((tmp_path / "record.json").read_text())
    val = SyntheticWindows(cfg.data.corpus.synthetic, 64, "val", cfg.data.val_sequences)
    unigram = unigram_entropy(val.read_batch(np.arange(len(val)))[:, 1:])
    loss = rec.losses["synthetic"]
    assert loss < unigram - 1.0, (loss, unigram)
    lo, hi = rec.loss_intervals["synthetic"]
    assert lo < loss < hi
    assert rec.hyperparameters["bayes_loss"]["synthetic"] < loss
    assert rec.D == outcome.step * 32 * 64 and rec.N == rec.hyperparameters["params"]
    assert (tmp_path / "tensorboard").is_dir() and list((tmp_path / "checkpoints").iterdir())


def _stop_at(monkeypatch, k):
    """Deliver SIGTERM to this process while step k's batch is being placed."""
    calls = {"n": 0}
    real = loop.global_batch

    def counting(*a, **kw):
        calls["n"] += 1
        if calls["n"] == k:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **kw)

    monkeypatch.setattr(loop, "global_batch", counting)


def test_sigterm_then_resume_is_bitwise_identical_to_straight_run(tmp_path, tiny_yaml, monkeypatch):
    cfg = load_train_config(tiny_yaml)
    straight, split = tmp_path / "straight", tmp_path / "split"
    loop.train(cfg, straight)

    _stop_at(monkeypatch, 7)
    outcome = loop.train(cfg, split)
    assert outcome.stopped_early and outcome.step == 7
    assert (split / "checkpoints" / "7").is_dir() and not (split / "record.json").exists()
    monkeypatch.undo()
    loop.train(cfg, split, resume=True)

    assert _train_rows(split) == _train_rows(straight)  # losses, bitwise
    a, b = _params(straight, 20), _params(split, 20)
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b) > 0
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert (json.loads((split / "record.json").read_text())["losses"]
            == json.loads((straight / "record.json").read_text())["losses"])

    # A finished run is never overwritten, and another model shape cannot resume it.
    before = _snapshot(split)
    with pytest.raises(ValueError, match="holds a previous run"):
        loop.train(cfg, split)
    with pytest.raises(ValueError, match=r"finished \(20 of 20 steps"):
        loop.train(cfg, split, resume=True)
    other = load_train_config(tiny_yaml, ["model.set.d_model=32", "budget.tokens=3840"])
    with pytest.raises(ValueError, match=r"checkpoints/20: checkpoint is of another model shape"):
        loop.train(other, split, resume=True)
    assert _snapshot(split) == before


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_yaml):
    cfg = load_train_config(tiny_yaml, ["optimizer.lr=1.0e+30", "checkpoint.every=1"])
    with pytest.raises(loop.NonFiniteLoss, match=r"at step (\d+): stopping\. Last good checkpoint: .*checkpoints"):
        loop.train(cfg, tmp_path)
    assert not (tmp_path / "record.json").exists()
    rows = [json.loads(ln) for ln in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in rows)
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and max(saved) <= len(rows)


def test_model_too_small_for_corpus_vocab_names_field(tmp_path, tiny_yaml):
    cfg = load_train_config(tiny_yaml, ["model.set.vocab_size=32"])
    with pytest.raises(ValueError, match="model.set.vocab_size: 32 rows cannot embed the 64"):
        loop.train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()
