"""A resume refuses a checkpoint trained under other training fields (naming them), unless
``--allow-config-change``; fields that do not change what is trained may differ."""

import json

import pytest

from scaling_jax.cli import main
from scaling_jax.config import to_dict
from scaling_jax.train import loop
from scaling_jax.train.config import TrainConfig, config_changes, load_train_config

from .faults import term_at


def _stopped_at_3(tmp_path, tiny_yaml, monkeypatch):
    cfg = load_train_config(tiny_yaml, ["budget.tokens=768", "checkpoint.every=3"])  # 6 steps
    monkeypatch.setattr(loop, "global_batch", term_at(3, loop.global_batch))
    out = tmp_path / "run"
    assert loop.train(cfg, out).step == 3
    monkeypatch.undo()
    return out


def _snapshot(out):
    return {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_resume_under_another_schedule_is_refused_unless_allowed(tmp_path, tiny_yaml, monkeypatch, capsys):
    out = _stopped_at_3(tmp_path, tiny_yaml, monkeypatch)
    before = _snapshot(out)
    other = load_train_config(tiny_yaml, ["budget.tokens=1536", "checkpoint.every=3", "optimizer.lr=0.01",
                                          "optimizer.warmup=1"])
    with pytest.raises(ValueError, match=r"checkpoints/3: trained with another config than this resume's: "
                                         r"budget\.tokens: 768\.0 → 1536\.0; optimizer\.lr: 0\.003 → 0\.01; "
                                         r"optimizer\.warmup: 2 → 1\. .*--allow-config-change"):
        loop.train(other, out, resume=True)
    assert _snapshot(out) == before  # refused before anything was written

    # the CLI says the same (exit 2); the flag is for --resume only
    args = ["train", str(tiny_yaml), "budget.tokens=1536", "optimizer.lr=0.01", "--out", str(out)]
    assert main([*args, "--resume"]) == 2
    assert "optimizer.lr: 0.003 → 0.01" in capsys.readouterr().err
    assert main([*args, "--allow-config-change"]) == 2
    assert "--allow-config-change applies to --resume only" in capsys.readouterr().err
    assert _snapshot(out) == before

    # allowed: a longer budget (the same compiled step; a new lr would compile another)
    longer = load_train_config(tiny_yaml, ["budget.tokens=1536", "checkpoint.every=3"])
    with pytest.raises(ValueError, match=r"budget\.tokens: 768\.0 → 1536\.0\. "):
        loop.train(longer, out, resume=True)
    outcome = loop.train(longer, out, resume=True, allow_config_change=True)
    assert outcome.step == 12 and outcome.record.hyperparameters["steps"] == 12
    assert json.loads((out / "config.json").read_text())["budget"]["tokens"] == 1536


def test_resume_may_change_what_does_not_change_training(tmp_path, tiny_yaml, monkeypatch):
    out = _stopped_at_3(tmp_path, tiny_yaml, monkeypatch)
    same = load_train_config(tiny_yaml, ["budget.tokens=768", "checkpoint.every=2", "checkpoint.keep=1",
                                         "logging.every=2", "mesh.data=1", "data.threads=1", "name=renamed"])
    assert loop.train(same, out, resume=True).step == 6
    assert json.loads((out / "record.json").read_text())["name"] == "renamed"


def test_config_changes_name_training_fields_only():
    a = to_dict(TrainConfig())
    b = json.loads(json.dumps(a))  # as read back from a checkpoint's JSON
    assert config_changes(a, b) == []
    b["model"]["set"] = {"d_model": 32}
    b["data"]["corpus"]["synthetic"]["seed"] = 5
    b["mesh"]["fsdp"], b["logging"]["every"], b["eval"]["tasks"] = 2, 1, "synthetic"
    assert config_changes(a, b) == ["data.corpus.synthetic.seed: 0 → 5", "model.set.d_model: None → 32"]
    b["model"]["set"] |= {"remat": "dots", "attention": "xla"}  # execution settings: a resume may change them
    assert config_changes(a, b) == ["data.corpus.synthetic.seed: 0 → 5", "model.set.d_model: None → 32"]
