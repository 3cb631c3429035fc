"""SLURM: the submitted script, run by bash with a fake ``srun``/``scontrol``, resumes and
requeues itself until the record is written; every node uses all its GPUs."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from scaling_jax.cli import main
from scaling_jax.launch.slurm import SlurmJob, script
from scaling_jax.train.distributed import slurm_node_gpus
from tests.launch.fakes import install

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "train" / "cpu_smoke.yaml")

RECORDER = """import json, sys
from pathlib import Path
here = Path(__file__).resolve().parent
with open(here / "calls.jsonl", "a") as f:
    f.write(json.dumps([Path(__file__).name, *sys.argv[1:]]) + "\\n")
"""
FAKE_SBATCH = RECORDER + "(here / 'script.sh').write_text(sys.stdin.read())\nprint(42)\n"
# A train step that stops at the time limit on its first call and finishes on its second.
FAKE_SRUN = RECORDER + """out = Path(sys.argv[sys.argv.index("--out") + 1])
runs = len((here / "calls.jsonl").read_text().splitlines())
if "fail" in sys.argv:
    sys.exit(1)
if not (out / "checkpoints").exists():
    (out / "checkpoints" / "100").mkdir(parents=True)
else:
    (out / "record.json").write_text("{}")
"""


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    install(d, "sbatch", FAKE_SBATCH)
    install(d, "srun", FAKE_SRUN)
    install(d, "scontrol", RECORDER)
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    return d


def _calls(d: Path) -> list[list[str]]:
    return [json.loads(ln) for ln in (d / "calls.jsonl").read_text().splitlines()]


def _job(d: Path, restart: int) -> int:
    env = {**os.environ, "SLURM_JOB_ID": "42", "SLURM_RESTART_COUNT": str(restart)}
    return subprocess.run(["bash", str(d / "script.sh")], env=env, capture_output=True, timeout=30).returncode


def test_submit_stop_requeue_resume_finish(tmp_path, bin_dir, capsys):
    out = tmp_path / "run"
    assert main(["launch", "slurm", CONFIG, "budget.global_batch=16", "--out", str(out), "--nodes", "4",
                 "--time", "4:00:00", "--partition", "gpu"]) == 0
    assert "submitted job 42: 4 node(s)" in capsys.readouterr().out
    text = (bin_dir / "script.sh").read_text()
    for directive in ("--nodes=4", "--ntasks-per-node=1", "--gpus-per-node=8", "--requeue", "--signal=TERM@120",
                      "--time=4:00:00", "--partition=gpu"):
        assert f"#SBATCH {directive}\n" in text
    assert _job(bin_dir, 0) == 0      # stopped at the time limit with a checkpoint: requeues itself
    assert _job(bin_dir, 1) == 0      # the requeued job resumes and writes the record
    calls = _calls(bin_dir)
    assert [c[0] for c in calls] == ["sbatch", "srun", "scontrol", "srun"]
    assert calls[2][1:] == ["requeue", "42"]
    base = ["srun", "--kill-on-bad-exit=1", "scaling-jax", "train", CONFIG, "budget.global_batch=16", "--out", str(out)]
    assert calls[1] == base and calls[3] == [*base, "--resume"]


def test_failed_train_and_requeue_limit_stop_the_job(tmp_path, bin_dir):
    out = tmp_path / "run"
    assert main(["launch", "slurm", CONFIG, "--out", str(out), "--max-requeues", "0"]) == 0
    assert _job(bin_dir, 0) == 1      # stopped, but no requeue left: the job fails
    (bin_dir / "script.sh").write_text((bin_dir / "script.sh").read_text().replace("set --", "set -- fail"))
    assert _job(bin_dir, 0) == 1
    assert [c[0] for c in _calls(bin_dir)] == ["sbatch", "srun", "srun"]  # never requeued


def test_bad_input_submits_nothing(tmp_path, bin_dir, capsys):
    assert main(["launch", "slurm", CONFIG, "--out", "x", "--nodes", "0"]) == 2
    assert "--nodes: must be >= 1, got 0" in capsys.readouterr().err
    assert main(["launch", "slurm", CONFIG, "--out", "x", "--time", "soon"]) == 2
    assert "--time: 'soon' is not a SLURM time" in capsys.readouterr().err
    assert main(["launch", "slurm", str(tmp_path / "no.yaml"), "--out", "x"]) == 2
    assert "no.yaml: config file not found" in capsys.readouterr().err
    assert not (bin_dir / "calls.jsonl").exists()


def test_checked_in_script_is_the_generated_one():
    assert (REPO / "launch" / "slurm.sbatch").read_text() == script(SlurmJob())


@pytest.mark.parametrize("env, ids", [
    ({"SLURM_STEP_TASKS_PER_NODE": "1(x4)", "SLURM_GPUS_ON_NODE": "8"}, list(range(8))),
    ({"SLURM_TASKS_PER_NODE": "1(x2),1", "CUDA_VISIBLE_DEVICES": "4,5"}, [0, 1]),
    ({"SLURM_STEP_TASKS_PER_NODE": "8(x2)", "SLURM_GPUS_ON_NODE": "8"}, None),  # a task per GPU: JAX's default
    ({"SLURM_STEP_TASKS_PER_NODE": "1(x2)"}, None),                            # no GPUs
])
def test_one_task_per_node_sees_every_gpu(env, ids):
    assert slurm_node_gpus(env) == ids
