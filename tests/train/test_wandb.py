"""Weights & Biases tracking (train/wandb_log.py), offline: a run's W&B history holds the rows its
metrics.jsonl holds, the summary is its record; a resumed run continues the same W&B run; with
``mode: disabled`` (the default) or without wandb installed nothing W&B is imported or written."""

import json
import sys

import pytest

from scaling_jax.errors import UserError
from scaling_jax.train import loop
from scaling_jax.train.config import load_train_config
from tests.wandb_files import offline_runs

OFFLINE = ["logging.wandb.mode=offline", "logging.wandb.project=scaling-jax-tests", "logging.wandb.group=g",
           "logging.wandb.tags=[tiny, ci]"]


def metrics_rows(out) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def as_history(rows: list[dict]) -> set[tuple]:
    """(step, name, value) of every number of metrics.jsonl rows, under the W&B names."""
    return {(r["step"], f"{r['kind']}/{k}", v) for r in rows for k, v in r.items()
            if k not in ("step", "kind") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def wandb_history(runs) -> set[tuple]:
    return {(h["step"], k, v) for run in runs for h in run.history for k, v in h.items()
            if k != "step" and not k.startswith("_")}


@pytest.mark.slow
def test_offline_run_then_resume_continue_one_wandb_run(tmp_path, tiny_yaml, monkeypatch):
    from tests.train.test_loop import _stop_at

    cfg = load_train_config(tiny_yaml, [*OFFLINE, "logging.val_every=5"])
    out = tmp_path / "run"
    _stop_at(monkeypatch, 7)  # SIGTERM at step 7: a checkpoint, then the run stops
    outcome = loop.train(cfg, out)
    assert outcome.stopped_early and outcome.step == 7
    (first,) = offline_runs(out)
    assert "preempting" in first.kinds and first.exit_code == 143  # stopped to resume: preempted, not finished
    monkeypatch.undo()
    loop.train(cfg, out, resume=True)

    runs = offline_runs(out)
    rid = json.loads((out / "wandb.json").read_text())["id"]
    assert len(runs) == 2 and {r.id for r in runs} == {rid}  # the resumed run is the same W&B run
    rows = metrics_rows(out)
    assert {r["kind"] for r in rows} == {"train", "val/synthetic"} and max(r["step"] for r in rows) == 20
    assert as_history(rows) <= wandb_history(runs)  # every loss, gradient norm, validation figure
    assert {(s, v) for s, k, v in as_history(rows) if k == "train/loss"} == \
        {(s, v) for s, k, v in wandb_history(runs[1:]) | wandb_history(runs[:1]) if k == "train/loss"}
    last = runs[1]
    assert last.exit_code == 0
    record = json.loads((out / "record.json").read_text())
    assert last.summary["name"] == record["name"] and last.summary["N"] == record["N"]
    assert last.summary["losses"] == record["losses"] and last.summary["D"] == record["D"]
    assert (last.project, last.group, last.tags, last.name) == ("scaling-jax-tests", "g", ["tiny", "ci"], "tiny")
    assert last.config["budget"]["tokens"] == 2560 and last.config["logging"]["wandb"]["mode"] == "offline"


def test_disabled_or_without_wandb_nothing_is_imported_or_written(tmp_path, tiny_yaml, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed: importing it raises ImportError
    out = tmp_path / "run"
    loop.train(load_train_config(tiny_yaml), out)  # mode: disabled, the default
    assert (out / "record.json").exists()
    assert not (out / "wandb").exists() and not (out / "wandb.json").exists()
    with pytest.raises(UserError, match=r"logging.wandb.mode: W&B tracking needs wandb: pip install "
                                        r"'scaling_jax\[wandb\]'"):
        loop.train(load_train_config(tiny_yaml, OFFLINE), tmp_path / "other")
    assert not (tmp_path / "other").exists()  # refused before anything was written


@pytest.mark.parametrize("override,message", [
    ("logging.wandb.mode=live", "logging.wandb.mode: must be one of online, offline, disabled, got 'live'"),
    ("logging.wandb.project=a/b", "logging.wandb.project: 'a/b' contains '/', which W&B refuses"),
    ("logging.wandb.tags=['']", r"logging.wandb.tags\[0\]: must be 1 to 64 characters"),
    ("logging.wandb.colour=red", r"logging.wandb: unknown key\(s\) \['colour'\]"),
])
def test_bad_wandb_fields_are_named(tiny_yaml, override, message):
    with pytest.raises(UserError, match=message):
        load_train_config(tiny_yaml, [override])


def test_history_rows_carry_every_number_of_a_metrics_row_under_its_kind():
    from scaling_jax.train.wandb_log import history_row

    row = history_row(40, "eval", {"synth_source_mc": 0.6, "err_synthetic": 0.4, "err_synthetic_n_tasks": 3,
                                   "err_synthetic_tasks": ["synth_source_mc"], "diverged": float("nan"), "ok": True})
    assert row == {"step": 40, "eval/synth_source_mc": 0.6, "eval/err_synthetic": 0.4, "eval/err_synthetic_n_tasks": 3}
