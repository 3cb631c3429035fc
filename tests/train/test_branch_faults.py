"""A WSD trunk and its branches (``scaling-jax train`` with ``budget.branches``) killed for real
(kill -9 in a subprocess, ``faults.py``) in the trunk, while it commits a branch point, in a
branch's own checkpoint and after a branch's final validation, then started again with the same
command and ``--resume``: each branch ends bit for bit the separate WSD run of its budget, with
no metrics row twice, and a finished branch is not trained again."""

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

from scaling_jax.train import branches
from scaling_jax.train.checkpoint import committed_steps
from scaling_jax.train.config import load_train_config

from .conftest import REPO
from .test_wsd import TREE, same_run, separate_runs

FAULTS = Path(__file__).with_name("faults.py")


def fault_run(point: str, tiny_yaml: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(FAULTS), "KILL", point, "--", "train", str(tiny_yaml), *TREE, "--out", str(out), *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)


def killed(p: subprocess.CompletedProcess) -> None:
    assert p.returncode == -9, p.stderr[-3000:]


@pytest.mark.slow
def test_trunk_and_branches_killed_anywhere_resume_to_the_separate_runs(tmp_path, tiny_yaml):
    trunk, b768, b1280 = tmp_path / "trunk", tmp_path / "trunk/branches/D768", tmp_path / "trunk/branches/D1280"

    # kill -9 while the trunk commits its first branch point (step 4): no checkpoint counts
    killed(fault_run("commit:4", tiny_yaml, trunk))
    assert committed_steps(trunk / "checkpoints") == []
    # the same command, --resume: the trunk from step 0, killed at step 5 (the branch point 4 committed)
    killed(fault_run("batch:5", tiny_yaml, trunk, "--resume"))
    assert committed_steps(trunk / "checkpoints") == [4] and not b768.exists()
    # again: the trunk from 4 to its end (6); the 768-token branch from the trunk's step 4 to its
    # record; the 1280-token one from step 6, killed while it commits its last step (10)
    killed(fault_run("commit:10", tiny_yaml, trunk, "--resume"))
    assert committed_steps(trunk / "checkpoints") == [4, 6] and (b768 / "record.json").exists()
    assert committed_steps(b1280 / "checkpoints") == [] and not (b1280 / "record.json").exists()
    done_768 = (b768 / "record.json").stat().st_mtime_ns
    # again: the trunk is at its end, the finished branch is skipped; the other starts over from
    # the trunk and is killed just after its final validation row
    p = fault_run("row:val/", tiny_yaml, trunk, "--resume")
    killed(p)
    assert committed_steps(b1280 / "checkpoints") == [10] and not (b1280 / "record.json").exists()
    # the last start redoes the final validation of the branch at its last step
    done = branches.train_tree(load_train_config(tiny_yaml, TREE), trunk, resume=True)
    assert [(n, o and o.step) for n, o in done] == [("D768", None), ("D1280", 10)]
    assert (b768 / "record.json").stat().st_mtime_ns == done_768  # not retrained

    sep = separate_runs(tmp_path, tiny_yaml, [768, 1280])
    for folder, t in ((b768, 768), (b1280, 1280)):
        rows = [json.loads(ln) for ln in (folder / "metrics.jsonl").read_text().splitlines()]
        twice = [k for k, n in collections.Counter((r["step"], r["kind"]) for r in rows).items() if n > 1]
        assert not twice, f"{folder.name}: repeated rows {twice}"
        same_run(folder, sep[t])
