"""Sweeps of WSD trunks and branches (issue 31): a ``branches: true`` block's expansion, the cost
table of ``sweep plan``, the local runner starting each branch once its trunk has committed the
checkpoint at its decay start (a stand-in trains), the TPU worker's claim loop waiting for it,
SLURM branch arrays after their trunk's task, ``sweep collect`` and branch-list changes."""

import json
import os
import sys
from pathlib import Path

import pytest

from scaling_jax.cli import main
from scaling_jax.config import ConfigError
from scaling_jax.errors import UserError
from scaling_jax.sweep import local, single, worker
from scaling_jax.sweep.folders import write_run_configs
from scaling_jax.sweep.spec import expand, load_spec
from scaling_jax.sweep.state import read_state
from scaling_jax.sweep.trees import cost_table, waits
from scaling_jax.train.optimizer import decay_start
from tests.launch.fakes import install

from .conftest import micro_spec, write_spec

TREE_GRID = [{"models": ["tiny_d16", "tiny_d32"], "multipliers": [2, 4, 8], "branches": True}]


def tree_spec(tmp: Path, grid=None, **changes) -> Path:
    return write_spec(tmp, micro_spec(tmp, grid=grid or TREE_GRID, **changes))


def test_a_branches_block_is_a_trunk_per_size_and_a_branch_per_multiplier(tmp_path):
    runs = expand(load_spec(tree_spec(tmp_path)))
    assert [(r.name, r.kind, r.role) for r in runs] == [
        ("tiny_d16-trunk", "trunk", "trunk"), ("tiny_d16-2", "branch", "fit"), ("tiny_d16-4", "branch", "fit"),
        ("tiny_d16-8", "branch", "fit"), ("tiny_d32-trunk", "trunk", "trunk"), ("tiny_d32-2", "branch", "fit"),
        ("tiny_d32-4", "branch", "fit"), ("tiny_d32-8", "branch", "target")]  # M: max is the branch, not the trunk
    trunk, *bs = runs[:4]
    opt = trunk.config.optimizer
    assert opt.schedule == "wsd" and trunk.config.budget.branches == (2.0, 4.0, 8.0)
    for b in bs:
        assert b.out == str(Path(trunk.out) / "branches" / f"M{b.M:g}") and b.trunk == trunk.out
        assert b.config.budget.branch_of == "../.." and b.config.budget.branches == () and b.config.name == b.name
        assert b.start_step == decay_start(opt, b.steps) and b.trained_C == 6 * b.N * (b.steps - b.start_step) * 1024
    assert trunk.steps == bs[-1].start_step and trunk.D == trunk.steps * 1024
    with pytest.raises(ConfigError, match=r"grid\[0\]: branches: true trains WSD trunks, but optimizer.schedule is "
                                          "'cosine'"):
        expand(load_spec(tree_spec(tmp_path, [{**TREE_GRID[0], "set": {"optimizer.schedule": "cosine"}}])))


def test_sweep_plan_prints_each_trunks_cost_against_separate_runs(tmp_path, capsys):
    # one size at M = 5 ... 80: a trunk to M = 80's decay start and five decays cost 95/80 of the
    # M = 80 run (1.19x <= 1.3x; separate runs: 155/80 = 1.94x)
    spec = tree_spec(tmp_path, [{"models": ["tiny_d16"], "multipliers": [5, 10, 20, 40, 80], "branches": True}],
                     recipe=None)
    runs = expand(load_spec(spec))
    [row] = cost_table(runs)
    steps = [r.steps for r in runs[1:]]
    assert row["separate_C"] == pytest.approx(6 * runs[0].N * 1024 * sum(steps))
    assert row["vs_largest"] == pytest.approx(row["total_C"] / (6 * runs[0].N * 1024 * steps[-1]))
    assert 1.15 < row["vs_largest"] < 1.25 and row["saving"] == pytest.approx(1 - 95 / 155, abs=0.01)
    assert main(["sweep", "plan", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "branches against separate runs" in out and f"{row['vs_largest']:.2f}x" in out
    assert f"{row['saving']:.1%}" in out and "tiny_d16-trunk" in out


# A ``sweep worker`` standing in for training: a trunk commits its branch points (step folders)
# one by one, 0.4 s apart; a branch notes when it started and whether its trunk's point was
# there, and writes a record. A trunk whose folder holds FAIL commits its first point and fails.
FAKE_WORKER = r"""
import json, pathlib, sys, time, yaml
from scaling_jax.sweep import single

def run_one(run_dir):
    d = pathlib.Path(run_dir)
    cfg = yaml.safe_load((d / "train.yaml").read_text())
    log = d.parents[2] / "events.jsonl" if cfg["budget"]["branch_of"] else d.parent / "events.jsonl"
    def note(**e):
        with open(log, "a") as f:
            f.write(json.dumps({"run": cfg["name"], "t": time.time(), **e}) + "\n")
    if cfg["budget"]["branches"]:
        for b in json.loads((d / "trunk.json").read_text())["branches"]:
            time.sleep(0.4)
            (d / "checkpoints" / str(b["decay_start"])).mkdir(parents=True, exist_ok=True)
            note(event="point", step=b["decay_start"])
            if (d / "FAIL").exists():
                return 1
        return 0
    trunk = d.parents[1]
    point = [b["decay_start"] for b in json.loads((trunk / "trunk.json").read_text())["branches"]
             if b["folder"] == "branches/" + d.name][0]
    note(event="start", ready=(trunk / "checkpoints" / str(point)).is_dir())
    time.sleep(0.2)
    (d / "record.json").write_text(json.dumps({"name": cfg["name"], "dataset": "synthetic", "N": 1000,
                                               "model": cfg["model"]["name"], "params_no_embed": 900, "D": 1e4,
                                               "losses": {"synthetic": 3.0}}))
    return 0

single.run_one = run_one
sys.exit(single.serve())
"""


def test_the_local_runner_starts_each_branch_once_its_trunk_has_committed_its_start(tmp_path, monkeypatch, capsys):
    spec = tree_spec(tmp_path)
    monkeypatch.setattr(local, "worker_command", lambda: [sys.executable, "-c", FAKE_WORKER])
    runs = expand(load_spec(spec))
    Path(runs[4].out).mkdir(parents=True)
    (Path(runs[4].out) / "FAIL").write_text("")  # tiny_d32's trunk fails after its first point
    assert main(["sweep", "run", str(spec), "--jobs", "2"]) == 1
    events = [json.loads(ln) for ln in (tmp_path / "runs" / "events.jsonl").read_text().splitlines()]
    starts = {e["run"]: e for e in events if e["event"] == "start"}
    assert all(e["ready"] for e in starts.values())  # 7cbb090: no trunks, no branches
    assert sorted(starts) == ["tiny_d16-2", "tiny_d16-4", "tiny_d16-8", "tiny_d32-2"]
    last_point = max(e["t"] for e in events if e["run"] == "tiny_d16-trunk")
    assert starts["tiny_d16-2"]["t"] < last_point  # it trained beside its trunk, not after it
    out = capsys.readouterr().out
    assert "tiny_d32-4: its trunk" in out and "not started" in out
    assert [read_state(r.out).state for r in runs] == ["done"] * 4 + ["failed", "done", "pending", "pending"]

    # collect: the branches are the runs; the trunks have no record and are not missing
    assert main(["sweep", "collect", str(spec)]) == 0
    out = capsys.readouterr()
    assert "collected 4 records" in out.out and "tiny_d32-4, tiny_d32-8" in out.err and "trunk" not in out.err


def test_the_tpu_claim_loop_trains_a_trunk_before_its_branches(tmp_path, monkeypatch):
    spec = tree_spec(tmp_path, [{"models": ["tiny_d16"], "multipliers": [2, 4], "branches": True}], recipe=None)
    runs = expand(load_spec(spec))
    root = write_run_configs(load_spec(spec), runs)
    order = []

    def run_one(run_dir, **lease):
        order.append(Path(run_dir).name)
        r = next(r for r in runs if r.out == run_dir)
        if r.kind == "trunk":
            for b in runs[1:]:
                (Path(run_dir) / "checkpoints" / str(b.start_step)).mkdir(parents=True, exist_ok=True)
        else:
            assert (Path(r.trunk) / "checkpoints" / str(r.start_step)).is_dir()
            (Path(run_dir) / "record.json").write_text(json.dumps({"losses": {"synthetic": 3.0}}))
        return 0

    monkeypatch.setattr(single, "run_one", run_one)
    stop = type("Stop", (), {"set": False})()
    folders = worker.claim_order(root)  # the largest C first: the M = 4 branch before its trunk
    assert Path(folders[0]).name == "M4"
    assert worker.work(folders, lease={}, stop=stop, poll=0.01, waits=waits(root)) == 0
    assert order == ["tiny_d16-trunk", "M4", "M2"]


def test_slurm_submits_each_trunks_branches_after_its_task(tmp_path, monkeypatch, capsys):
    spec = tree_spec(tmp_path)
    bin_dir = tmp_path / "bin"
    install(bin_dir, "sbatch", "import sys, pathlib\n"
                               f"pathlib.Path({str(tmp_path)!r}, 'sbatch.txt').open('a').write(sys.argv[-1] + '\\n')\n"
                               "print(4242)\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    runs = expand(load_spec(spec))
    write_run_configs(load_spec(spec), runs)
    for b in runs[1:4]:  # tiny_d16's trunk is at its end: its branches need not wait
        (Path(b.trunk) / "checkpoints" / str(b.start_step)).mkdir(parents=True)
    assert main(["sweep", "run", str(spec), "--runner", "slurm"]) == 0
    scripts = [Path(p).read_text() for p in (tmp_path / "sbatch.txt").read_text().split()]
    lists = [Path(s.split("LIST=")[1].split("\n")[0]).read_text().split() for s in scripts]
    assert [[Path(p).name for p in x] for x in lists] == [["tiny_d32-trunk"], ["M2", "M4", "M8"], ["M2", "M4", "M8"]]
    assert [Path(x[0]).parents[1].name for x in lists[1:]] == ["tiny_d16-trunk", "tiny_d32-trunk"]
    assert "--dependency" not in scripts[1]  # its trunk is done
    assert "#SBATCH --dependency=afterok:4242_0\n#SBATCH --kill-on-invalid-dep=yes" in scripts[2]
    assert "3 branches, after their trunk's task" in capsys.readouterr().out


def test_a_spec_adding_a_multiplier_behind_a_started_trunk_is_refused_by_name(tmp_path):
    grid = [{"models": ["tiny_d16"], "multipliers": [4, 8], "branches": True}]
    spec = load_spec(tree_spec(tmp_path, grid, recipe=None))
    runs = expand(spec)
    write_run_configs(spec, runs)
    trunk = Path(runs[0].out)
    for b in runs[1:]:  # at its end (M = 8's decay start)
        (trunk / "checkpoints" / str(b.start_step)).mkdir(parents=True)
    assert read_state(trunk).state == "done"
    behind = load_spec(tree_spec(tmp_path, [{**grid[0], "multipliers": [2, 4, 8]}], recipe=None))
    with pytest.raises(UserError, match=r"budget.branches: 2 \(decay from step \d+\) lie behind the trunk"):
        write_run_configs(behind, expand(behind))
    ahead = load_spec(tree_spec(tmp_path, [{**grid[0], "multipliers": [4, 8, 16]}], recipe=None))
    runs = expand(ahead)
    write_run_configs(ahead, runs)  # the trunk goes on to M = 16's decay start
    assert json.loads((trunk / "trunk.json").read_text())["end_step"] == runs[0].steps > runs[2].start_step
    assert read_state(trunk).state == "pending"
