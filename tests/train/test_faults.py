"""Runs killed for real (kill -9, SIGTERM at chosen points, in a subprocess: ``faults.py``) and
started again: only committed checkpoints count (a death mid-save leaves a step folder that is
not one), every start trims metrics.jsonl to its checkpoint, and the end result matches a
straight run with no (step, kind) row twice. Local folders and ``gs://`` (a GCS emulator)."""

import collections
import json
import subprocess
import sys
import uuid
from pathlib import Path

import jax
import numpy as np
import pytest

from scaling_jax import paths
from scaling_jax.sweep.state import read_state
from scaling_jax.train import loop
from scaling_jax.train.checkpoint import COMMIT_FILE, committed_steps
from scaling_jax.train.config import load_train_config
from scaling_jax.train.lm import load_run
from tests.gcs import BUCKET, gcs_emulator  # noqa: F401 (fixture)

from .conftest import REPO
from .faults import delete_object, term_at

FAULTS = Path(__file__).with_name("faults.py")
SIX_STEPS = ["budget.tokens=768", "checkpoint.every=3", "checkpoint.async_save=false"]


def fault_run(sig: str, point: str, tiny_yaml: Path, out: str, *args: str) -> subprocess.CompletedProcess:
    """``scaling-jax train`` of the tiny config into ``out``, sent ``sig`` at ``point`` (faults.py)."""
    argv = [sys.executable, str(FAULTS), sig, point, "--", "train", str(tiny_yaml), *SIX_STEPS, "--out", out, *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240)


def rows(out) -> list[dict]:
    return [json.loads(ln) for ln in paths.read_text(paths.join(str(out), "metrics.jsonl")).splitlines()]


def check_same_as(out, straight: Path) -> None:
    """No (step, kind) row twice; train and validation rows, the record's losses and the final
    parameters bitwise those of the straight run."""
    got = rows(out)
    twice = [k for k, n in collections.Counter((r["step"], r["kind"]) for r in got).items() if n > 1]
    assert not twice, f"repeated rows {twice}"

    def key(rs):
        return [(r["step"], r["kind"], r.get("loss"), r.get("grad_norm")) for r in rs]

    assert key(got) == key(rows(straight))
    record = json.loads(paths.read_text(paths.join(str(out), "record.json")))
    assert record["losses"] == json.loads((straight / "record.json").read_text())["losses"]
    a, b = load_run(straight), load_run(out)
    assert a.step == b.step == 6
    for x, y in zip(jax.tree.leaves(a.lm.params), jax.tree.leaves(b.lm.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_local_kill_mid_first_save_and_in_final_validation(tmp_path, tiny_yaml):
    cfg = load_train_config(tiny_yaml, SIX_STEPS)
    straight, run = tmp_path / "straight", tmp_path / "run"
    loop.train(cfg, straight)

    # kill -9 while step 3's checkpoint, the first, is being finalized: only its temp folder is left
    p = fault_run("KILL", "commit:3", tiny_yaml, str(run))
    assert p.returncode == -9, p.stderr[-2000:]
    assert [q.name for q in (run / "checkpoints").iterdir()] == ["3.orbax-checkpoint-tmp"]
    assert committed_steps(run / "checkpoints") == [] and [r["step"] for r in rows(run)] == [1, 2, 3]

    # --resume with no finished checkpoint starts from step 0 (7cbb090: "no checkpoint to resume
    # from"); killed again just after the final validation row, the final checkpoint committed
    p = fault_run("KILL", "row:val/", tiny_yaml, str(run), "--resume")
    assert p.returncode == -9, p.stderr[-2000:]
    assert "no finished checkpoint" in p.stderr
    assert committed_steps(run / "checkpoints") == [3, 6] and not (run / "record.json").exists()

    # resumed at its last step, the run redoes the final validation: one row of it, not two
    loop.train(cfg, run, resume=True)
    check_same_as(run, straight)
    # it trained no step in this start: the record's speed is the earlier start's train rows'
    speed = json.loads((run / "record.json").read_text())["hyperparameters"]["speed"]
    assert speed["tokens_per_s"] > 0 and speed["intervals"] >= 1
    assert read_state(run).state == "done"


@pytest.mark.slow
@pytest.mark.usefixtures("gcs_emulator")
def test_gcs_kill_mid_save_deleted_commit_and_kill_after_checkpoint(tmp_path, tiny_yaml, monkeypatch):
    pytest.importorskip("gcsfs")
    cfg = load_train_config(tiny_yaml, SIX_STEPS)
    straight, remote = tmp_path / "straight", f"gs://{BUCKET}/{uuid.uuid4().hex}/run"
    ckpts = paths.join(remote, "checkpoints")
    loop.train(cfg, straight)

    # kill -9 before step 3's commit marker: its folder holds data but is no checkpoint
    p = fault_run("KILL", "commit:3", tiny_yaml, remote)
    assert p.returncode == -9, p.stderr[-2000:]
    assert "3" in paths.listdir(ckpts) and committed_steps(ckpts) == []
    st = read_state(remote)
    assert (st.state, st.resume_step) == ("pending", None)  # 7cbb090: resumes from step 3

    # a fresh start does not refuse (7cbb090: "holds a previous run"); it clears the unfinished
    # folder; SIGTERM at step 2 checkpoints there
    monkeypatch.setattr(loop, "global_batch", term_at(2, loop.global_batch))
    assert loop.train(cfg, remote).step == 2
    monkeypatch.undo()
    assert committed_steps(ckpts) == [2] and "3" not in paths.listdir(ckpts)

    # that checkpoint's commit marker deleted (a save cut short of it): `train --resume` starts
    # from 0 (7cbb090: a traceback); kill -9 at step 5, after step 3's checkpoint (and the log
    # uploaded with it: 7cbb090 uploaded it every 60 s, so rows 1-3 were lost)
    delete_object(paths.join(ckpts, "2", COMMIT_FILE))
    p = fault_run("KILL", "batch:5", tiny_yaml, remote, "--resume")
    assert p.returncode == -9, p.stderr[-2000:]
    assert committed_steps(ckpts) == [3]
    assert [r["step"] for r in rows(remote)] == [1, 2, 3]

    loop.train(cfg, remote, resume=True)
    check_same_as(remote, straight)
