"""The run claim (issue 36, item 7): two runners racing over one sweep train each run once; a
claim whose owner was killed (kill -9) is taken over; a live owner's is left alone; on local
folders and gs:// (a GCS emulator honouring ``ifGenerationMatch``) alike."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from scaling_jax import paths
from scaling_jax.cli import main
from scaling_jax.sweep import claim, single
from scaling_jax.sweep.folders import write_run_configs
from scaling_jax.sweep.spec import expand, load_spec
from tests.gcs import BUCKET, gcs_emulator  # noqa: F401 (fixture)

from .conftest import REPO, micro_spec, write_spec

# ``train`` replaced by a stand-in that logs one metrics row per step (SECONDS in all), appends its
# pid to trained.txt and writes the record: run_one, the claim and the runners are the real ones.
FAKE_TRAIN = r"""
import json, os, time
from pathlib import Path
from scaling_jax.train import loop

def train(cfg, out, resume=False, **kwargs):
    out = Path(out)
    with open(out / "trained.txt", "a") as f:
        f.write(f"{os.getpid()}\n")
    for step in range(1, 11):
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "kind": "train", "loss": 1.0}) + "\n")
        time.sleep(SECONDS / 10)
    (out / "record.json").write_text(json.dumps({"name": cfg.name, "losses": {"synthetic": 3.0}}))
    return loop.Outcome(step=10, stopped_early=False, record=None)
"""


def _fake_train(seconds: float) -> str:
    """Code that puts the stand-in in place of ``train`` in the process running it."""
    return FAKE_TRAIN.replace("SECONDS", repr(seconds)) + "\nloop.train = train\n"


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def _sweep_run(go: Path, seconds: float | None) -> str:
    """A ``sweep run`` process that starts when ``go`` exists; its workers train with the
    stand-in (``seconds`` each), or for real when ``seconds`` is None."""
    code = ("import sys, time\nfrom pathlib import Path\n"
            f"while not Path({str(go)!r}).exists(): time.sleep(0.01)\n"
            "from scaling_jax.sweep import local\nfrom scaling_jax.cli import main\n")
    if seconds is not None:
        worker = f"import sys\n{_fake_train(seconds)}from scaling_jax.sweep import single\nsys.exit(single.serve())\n"
        code += f"local.worker_command = lambda: [sys.executable, '-c', {worker!r}]\n"
    return code + "sys.exit(main(['sweep', 'run', *sys.argv[1:]]))\n"


def _tiny_sweep(tmp_path: Path, models=("tiny_d16",), multipliers=(1, 2, 3)) -> tuple[Path, list]:
    spec = micro_spec(tmp_path, grid=[{"models": list(models), "multipliers": list(multipliers)}])
    spec.pop("recipe")
    path = write_spec(tmp_path, spec)
    runs = expand(load_spec(path))
    write_run_configs(load_spec(path), runs)
    return path, runs


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _duplicate_rows(run_dir: str) -> list:
    rows = [json.loads(ln) for ln in Path(run_dir, "metrics.jsonl").read_text().splitlines()]
    return [k for k, n in Counter((r["step"], r["kind"]) for r in rows).items() if n > 1]


def _race(spec: Path, tmp_path: Path, seconds: float | None, timeout: float) -> list[subprocess.CompletedProcess]:
    """Two ``sweep run --jobs 1`` processes over ``spec``, released together."""
    go = tmp_path / "go"
    procs = [subprocess.Popen(_python(_sweep_run(go, seconds), str(spec), "--jobs", "1"), env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    time.sleep(0.5)
    go.touch()  # both start the sweep within a few milliseconds
    try:
        outs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            p.kill() if p.poll() is None else None
    return [subprocess.CompletedProcess(p.args, p.returncode, o) for p, o in zip(procs, outs)]


@pytest.mark.slow
def test_two_sweep_runs_started_together_train_each_run_once(tmp_path, capsys):
    spec, runs = _tiny_sweep(tmp_path)
    results = _race(spec, tmp_path, 0.5, timeout=60)
    assert all(r.returncode == 0 for r in results), [r.stdout for r in results]
    for r in runs:
        assert len(Path(r.out, "trained.txt").read_text().split()) == 1, r.name  # trained once, by one runner
        assert _duplicate_rows(r.out) == []
        assert claim.numbers(r.out) == []  # released
    assert sum("running elsewhere" in r.stdout for r in results) >= 1  # they did meet
    assert main(["sweep", "status", str(spec)]) == 0
    assert "3 done, 0 running, 0 failed, 0 pending" in capsys.readouterr().out


@pytest.mark.slow
def test_two_real_sweep_runs_racing_on_a_tiny_sweep(tmp_path, capsys):
    """The same race with real training (about 30 s on two cores)."""
    spec, runs = _tiny_sweep(tmp_path, multipliers=(1, 2))
    results = _race(spec, tmp_path, None, timeout=300)
    assert all(r.returncode == 0 for r in results), [r.stdout[-2000:] for r in results]
    for r in runs:
        log = Path(r.out, "sweep.log").read_text()
        assert log.count(": done in ") == 1, log[-2000:]  # trained to the end once
        assert _duplicate_rows(r.out) == []
    assert main(["sweep", "status", str(spec)]) == 0
    assert "2 done, 0 running, 0 failed, 0 pending" in capsys.readouterr().out


@pytest.fixture
def stand_in_train(monkeypatch):
    """``train`` in this process: the stand-in, 0.1 s."""
    namespace = {}
    exec(FAKE_TRAIN.replace("SECONDS", "0.1"), namespace)
    monkeypatch.setattr("scaling_jax.train.loop.train", namespace["train"])


@pytest.mark.usefixtures("stand_in_train")
def test_a_killed_owners_claim_is_taken_over_and_a_live_ones_is_left_alone(tmp_path, capsys):
    spec, runs = _tiny_sweep(tmp_path, multipliers=(1,))
    run = runs[0].out
    owner = subprocess.Popen(_python(_fake_train(60.0) + "\nimport sys\nfrom scaling_jax.cli import main\n"
                                     "sys.exit(main(['sweep', 'run-one', sys.argv[1]]))\n", run), env=_env())
    try:
        for _ in range(300):
            if Path(run, "trained.txt").exists():
                break
            time.sleep(0.05)
        assert claim.live_owner(run)["pid"] == owner.pid
        assert main(["sweep", "run-one", run]) == single.BUSY  # a live owner: left alone, nothing trained
        assert "claimed by pid" in capsys.readouterr().out
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
    finally:
        owner.kill() if owner.poll() is None else None
    assert claim.numbers(run) == [1] and claim.live_owner(run) is None  # the dead owner's claim is left behind
    assert main(["sweep", "run-one", run]) == 0
    assert len(Path(run, "trained.txt").read_text().split()) == 2 and Path(run, "record.json").exists()
    assert claim.numbers(run) == []  # taken over as claim-2, the stale claim-1 tidied, claim-2 released
    assert main(["sweep", "status", str(spec)]) == 0
    assert "1 done, 0 running, 0 failed, 0 pending" in capsys.readouterr().out


@pytest.mark.usefixtures("stand_in_train")
def test_a_run_whose_remote_owner_stopped_beating_is_pending_and_trained_again(tmp_path, capsys):
    """A SLURM task on another node marked the run running, then its node died: once its
    heartbeat is stale the run is pending (not running forever) and the next runner takes it."""
    spec, runs = _tiny_sweep(tmp_path, multipliers=(1,))
    run = runs[0].out
    paths.write_json(paths.join(run, "sweep_state.json"), {"state": "running", "pid": 4242, "host": "node-77"})
    for age, shown in ((10.0, "1 running"), (claim.STALE_SECONDS + 1, "1 pending")):
        paths.write_json(claim.claim_path(run, 1), {"k": 1, "host": "node-77", "pid": 4242, "beat": time.time() - age})
        assert main(["sweep", "status", str(spec)]) == 0
        assert shown in capsys.readouterr().out.splitlines()[-1]
    assert main(["sweep", "run-one", run]) == 0 and claim.numbers(run) == []
    assert main(["sweep", "status", str(spec)]) == 0
    assert "1 done, 0 running, 0 failed, 0 pending" in capsys.readouterr().out


@pytest.mark.parametrize("host, age, busy", [
    ("elsewhere", 10.0, True),     # another host's fresh heartbeat: its owner is trusted
    ("elsewhere", 1e4, False),     # its heartbeat stopped long ago: taken over
    ("here", 10.0, False),         # this host, a pid that is not running: taken over at once
])
def test_owner_liveness(tmp_path, host, age, busy):
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = {"k": 3, "host": socket.gethostname() if host == "here" else "node-77", "pid": dead.pid,
             "beat": time.time() - age}
    paths.write_json(claim.claim_path(str(tmp_path), 3), owner)
    if busy:
        with pytest.raises(claim.Busy, match="claimed by pid .* on node-77 \\(claim 3\\)"):
            claim.acquire(str(tmp_path))
        return
    held = claim.acquire(str(tmp_path))
    assert held.record["k"] == 4 and claim.numbers(str(tmp_path)) == [4]
    held.release()
    assert claim.numbers(str(tmp_path)) == []


def _racing_creates(path: str, n: int = 8) -> list[bool]:
    won, start = [None] * n, threading.Barrier(n)

    def create(i):
        start.wait()
        won[i] = paths.create_exclusive(path, f"{i}\n".encode())

    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return won


@pytest.mark.parametrize("where", ["local", "gcs"])
def test_create_exclusive_has_one_winner_and_claims_work_on_gcs(tmp_path, request, where):
    if where == "gcs":
        request.getfixturevalue("gcs_emulator")
    root = str(tmp_path) if where == "local" else f"gs://{BUCKET}/{uuid.uuid4().hex}"
    won = _racing_creates(paths.join(root, "lock"))
    assert won.count(True) == 1
    assert paths.read_text(paths.join(root, "lock")) == f"{won.index(True)}\n"  # the winner's bytes, whole
    assert paths.listdir(root) == ["lock"]  # no temp files left
    held = claim.acquire(root)
    with pytest.raises(claim.Busy, match=f"pid {os.getpid()}"):
        claim.acquire(root)
    held.release()
    claim.acquire(root).release()
    assert claim.numbers(root) == []


def test_run_one_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["sweep", "run-one", ""]) == 2  # what an array task past the end of its run list passed
    assert "'' is not a run folder of a sweep (no train.yaml)" in capsys.readouterr().err
    assert main(["sweep", "run-one", str(tmp_path)]) == 2
    assert list(tmp_path.iterdir()) == []  # no claim or state written into it


def test_a_live_pid_on_this_host_holds_however_late_its_beats_and_a_requeued_slurm_task_takes_over(
        tmp_path, monkeypatch):
    """Review of issue 36 item 7: a same-host owner whose beats stalled (slow filesystem) but whose
    process lives keeps the run; a SLURM task requeued after a hard kill finds its earlier attempt's
    claim (same job id, fresh beat, another host) and takes over instead of exiting 75 for good."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        here = {"k": 1, "host": socket.gethostname(), "pid": sleeper.pid, "beat": time.time() - 3600}
        assert claim.alive(here)
    finally:
        sleeper.kill()
        sleeper.wait()
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "7")
    run = str(tmp_path)
    earlier = {"k": 2, "host": "node-9", "pid": 1234, "beat": time.time(), "slurm": "4242_7"}
    other = {**earlier, "slurm": "4242_8"}
    assert not claim.alive(earlier) and claim.alive(other)
    paths.write_json(claim.claim_path(run, 2), other)
    with pytest.raises(claim.Busy, match="node-9"):
        claim.acquire(run)
    paths.write_json(claim.claim_path(run, 2), earlier)
    held = claim.acquire(run)
    assert held.record["k"] == 3 and held.record["slurm"] == "4242_7"
    held.release()


def test_run_one_exits_at_once_writing_nothing_when_its_claim_is_taken_over(tmp_path):
    """A claim lost while training (another runner took the run over): the process exits at once with
    LEASE_LOST, before writing anything more into the folder the new owner now holds (no state mark,
    no checkpoint, no log), as a TPU worker does."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.yaml").write_text("name: x\n")
    script = f"""
import time
from scaling_jax import paths
from scaling_jax.sweep import claim, single
def taken_over(run_dir):
    k = claim.numbers(run_dir)[-1]
    paths.write_json(claim.claim_path(run_dir, k + 1),
                     {{"k": k + 1, "host": "elsewhere", "pid": 1, "beat": time.time()}})
    time.sleep(20)  # training on: the lost lease must end us first
    open(run_dir + "/wrote_after_loss", "w").write("x")
    return 0
single._train_claimed = taken_over
single.run_one({str(run)!r}, stale=0.4)
"""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == claim.LEASE_LOST, proc.stderr[-2000:]
    assert time.time() - t0 < 15 and "lease lost" in proc.stdout
    assert not (run / "wrote_after_loss").exists() and not (run / "sweep_state.json").exists()
    assert claim.numbers(str(run))[-1] == 2  # the new owner's claim stands
