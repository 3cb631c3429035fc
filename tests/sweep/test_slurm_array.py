"""A sweep's SLURM job arrays (issue 36, items 5 and 9), run by bash the way slurmctld runs them:
the fake ``sbatch`` keeps a copy of each submitted script (SLURM stores the script at
submission), and each array task runs that copy with ``SLURM_ARRAY_TASK_ID`` set and the
interpreter swapped for a recorder. A second submission must not change the first array's
tasks, a task past the end of its list must fail rather than run ``run-one ""``, and the time
limit's warning signal must reach the run."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scaling_jax.cli import main
from scaling_jax.sweep.spec import expand, load_spec
from tests.launch.fakes import install

# Keeps each submitted script as submitted-N.sh and answers a job id.
FAKE_SBATCH = r"""import shutil, sys
from pathlib import Path
here = Path(__file__).resolve().parent
n = len(list(here.glob("submitted-*.sh"))) + 1
shutil.copy(sys.argv[-1], here / f"submitted-{n}.sh")
print(4240 + n)
"""
# ``python -m scaling_jax.cli sweep run-one RUN`` as a recorder: with WAIT_FOR_TERM it trains
# until SIGTERM, then "checkpoints" and exits 0, like train.
FAKE_PYTHON = r"""import json, os, signal, sys, time
from pathlib import Path
here = Path(__file__).resolve().parent
def stop(*_):
    (here / "checkpointed").write_text("yes")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
with open(here / "python_calls.jsonl", "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
if os.environ.get("WAIT_FOR_TERM"):
    time.sleep(20)
    sys.exit(1)
"""


@pytest.fixture
def slurm(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    install(bin_dir, "sbatch", FAKE_SBATCH)
    install(bin_dir, "python", FAKE_PYTHON)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def _task(bin_dir: Path, submission: int, task: int, **env) -> subprocess.Popen:
    """Array task ``task`` of submission ``submission``, as SLURM starts it."""
    stored = bin_dir / f"submitted-{submission}.sh"
    script = bin_dir / f"task-{submission}-{task}.sh"
    script.write_text(stored.read_text().replace(shlex.quote(sys.executable), str(bin_dir / "python")))
    return subprocess.Popen(["bash", str(script)], env={**os.environ, "SLURM_ARRAY_TASK_ID": str(task), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _python_calls(bin_dir: Path) -> list[list[str]]:
    path = bin_dir / "python_calls.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def test_a_second_submission_leaves_the_first_arrays_tasks_alone(micro, slurm, capsys):
    """The README's order: the fit set first, then the rest; then the first array's tasks run."""
    runs = expand(load_spec(micro))
    fit, target = [r for r in runs if r.role == "fit"], [r for r in runs if r.role == "target"]
    assert main(["sweep", "run", str(micro), "--runner", "slurm", "--role", "fit"]) == 0
    assert main(["sweep", "run", str(micro), "--runner", "slurm", "--role", "target"]) == 0
    assert "submitted job array 4242: 1 runs" in capsys.readouterr().out
    for i in range(len(fit)):  # pending (or requeued) tasks of the first array run after the second submission
        task = _task(slurm, 1, i)
        assert task.wait(timeout=30) == 0, task.stdout.read()
    calls = _python_calls(slurm)
    assert [c[:4] for c in calls] == [["-m", "scaling_jax.cli", "sweep", "run-one"]] * len(fit)
    assert [c[4] for c in calls] == [str(Path(r.out).resolve()) for r in fit]
    task = _task(slurm, 2, 0)
    assert task.wait(timeout=30) == 0 and _python_calls(slurm)[-1][4] == str(Path(target[0].out).resolve())
    beyond = _task(slurm, 1, len(fit))  # a task index with no line in its list: an error, no run-one ""
    assert beyond.wait(timeout=30) == 2
    assert f"task {len(fit)}: no line for it in" in beyond.stdout.read()
    assert len(_python_calls(slurm)) == len(fit) + 1


def _deliver_warning(script: str, task: subprocess.Popen) -> None:
    """What slurmctld does at ``--signal=[B:]SIG@T``: with ``B:`` it signals the batch shell;
    without, only the job steps (processes started by ``srun``), of which this script has none."""
    m = re.search(r"^#SBATCH --signal=(B:)?([A-Z]+)@(\d+)$", script, re.M)
    assert m, "the script asks for no warning signal"
    if m.group(1):
        os.kill(task.pid, getattr(signal, f"SIG{m.group(2)}"))


def test_the_time_limit_warning_reaches_the_run(micro, slurm):
    assert main(["sweep", "run", str(micro), "--runner", "slurm", "--role", "target"]) == 0
    task = _task(slurm, 1, 0, WAIT_FOR_TERM="1")
    try:
        for _ in range(200):
            if _python_calls(slurm):
                break
            time.sleep(0.05)
        assert _python_calls(slurm), task.stdout.read()
        _deliver_warning((slurm / "submitted-1.sh").read_text(), task)
        try:
            rc = task.wait(timeout=3)
        except subprocess.TimeoutExpired:  # the warning was lost; the time limit's SIGKILL follows
            os.killpg(task.pid, signal.SIGKILL)
            rc = task.wait(timeout=10)
    finally:
        if task.poll() is None:
            os.killpg(task.pid, signal.SIGKILL)
    assert (slurm / "checkpointed").exists() and rc == 0
