"""The TPU launcher against a fake ``gcloud`` on PATH that simulates a queued resource."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from scaling_jax.cli import main
from scaling_jax.launch import gcloud, tpu
from scaling_jax.launch.tpu_spec import load_spec
from tests.launch.fakes import FakeGcloud, install

SPEC = {
    "tpu": {"name": "sj-test", "project": "proj", "zone": "us-central2-b", "accelerator_type": "v4-32",
            "runtime_version": "tpu-ubuntu2204-base", "provisioning": "spot"},
    "bucket": "gs://bkt/sj",
    "setup": {"package": "gs://bkt/wheels/scaling_jax-0.1.0-py3-none-any.whl", "files": ["gs://bkt/tasks/a.jsonl"]},
    "job": {"name": "d576-m20", "config": "CONFIG", "overrides": ["budget.multiplier=20"]},
    "poll_seconds": 0,
}


def write_spec(tmp_path: Path, **changes) -> Path:
    cfg = tmp_path / "train.yaml"
    cfg.write_text("name: x\n")
    spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SPEC.items()}
    spec["job"]["config"] = str(cfg)
    for dotted, value in changes.items():
        section, _, key = dotted.rpartition("__")
        (spec[section] if section else spec)[key] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def fake(tmp_path, monkeypatch):
    def make(**state):
        f = FakeGcloud(tmp_path / "bin", **state)
        monkeypatch.setenv("PATH", f"{f.dir}{os.pathsep}{os.environ['PATH']}")
        return f
    return make


def test_preempted_run_is_recreated_resumed_and_deleted(tmp_path, fake, capsys):
    f = fake(preempt_on_runs=[1])
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path)), "--delete-when-done"]) == 0
    work = [s for s in f.steps() if s not in ("describe", "storage ls")]
    assert work == ["create", "ssh", "scp", "setup", "train",              # preempted mid-run
                    "delete", "create", "ssh", "scp", "setup", "train --resume", "delete"]
    st = f.state
    assert st["qr"] == "ABSENT" and st["train_runs"] == 2 and st["setup_installs"] == 2 and st["record"]
    trains = [a for a in f.calls if any("scaling-jax train" in x for x in a)]
    assert all("--worker=all" in a for a in trains)
    resumed = trains[1][-1]
    assert "--out gs://bkt/sj/runs/d576-m20 --resume" in resumed and "budget.multiplier=20" in resumed
    assert "gs://bkt/sj/logs/d576-m20/attempt-2/$(hostname).log" in resumed
    assert "resuming from step 100" in capsys.readouterr().out
    create = next(a for a in f.calls if a[3] == "create")
    assert {"--spot", "--accelerator-type=v4-32", "--runtime-version=tpu-ubuntu2204-base",
            "--project=proj", "--zone=us-central2-b"} <= set(create)


def test_gives_up_after_max_recreates_and_reports_failed_train(tmp_path, fake, capsys):
    fake(preempt_on_runs=[1, 2])
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path)), "job.max_recreates=1"]) == 2
    assert "more than job.max_recreates=1" in capsys.readouterr().err
    f = fake(fail_on_runs=[1])
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "train exited with status 1 on ACTIVE slice sj-test" in err and "logs/d576-m20/attempt-1/" in err
    assert f.state["qr"] == "ACTIVE"  # a failed run keeps its slice for inspection


def test_a_preemption_the_slice_state_shows_late_is_recreated_and_resumed(tmp_path, fake, capsys):
    """A preempted worker's train checkpoints and exits 0 on SIGTERM while the queued resource
    still reads ACTIVE (three more looks here): the launcher watches it leave ACTIVE, then
    re-creates the slice and resumes."""
    f = fake(stop_on_runs=[1], active_lag=3)
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path))]) == 0
    work = [s for s in f.steps() if s not in ("describe", "storage ls")]
    assert work == ["create", "ssh", "scp", "setup", "train",
                    "delete", "create", "ssh", "scp", "setup", "train --resume"]
    assert f.state["train_runs"] == 2 and f.state["record"]
    assert "resuming from step 100" in capsys.readouterr().out


def test_a_stop_on_an_active_slice_is_reported_and_a_rerun_resumes_as_the_next_attempt(tmp_path, fake, capsys):
    f = fake(stop_on_runs=[1])  # `launch tpu stop`: train checkpoints and exits 0; the slice stays ACTIVE
    spec = str(write_spec(tmp_path))
    assert main(["launch", "tpu", "run", spec]) == 2
    err = capsys.readouterr().err
    assert "train stopped (exit 0, checkpointed) without writing gs://bkt/sj/runs/d576-m20/record.json" in err
    assert "stayed ACTIVE for 0 s (5 looks)" in err and "logs/d576-m20/attempt-1/" in err
    steps = f.steps()
    # after train: the record looked for, the slice watched for the grace window, the stop marker read
    assert steps[steps.index("train") + 1:] == ["storage ls"] + ["describe"] * tpu.GRACE_POLLS + ["ssh"]
    assert f.state["qr"] == "ACTIVE" and f.state["train_runs"] == 1  # not re-created, not retried
    assert main(["launch", "tpu", "run", spec]) == 0  # the rerun resumes, its log beside the first one's
    resumed = [a for a in f.calls if any("scaling-jax train" in x for x in a)][-1][-1]
    assert "--resume" in resumed and "gs://bkt/sj/logs/d576-m20/attempt-2/$(hostname).log" in resumed


def test_attempt_logs_continue_the_numbering_of_earlier_runs(tmp_path, fake, capsys):
    fake(train_runs=2, fail_on_runs=[3])  # two earlier attempts' logs are in the bucket
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path))]) == 2
    assert "logs: gs://bkt/sj/logs/d576-m20/attempt-3/" in capsys.readouterr().err  # not attempt-1, overwritten


@pytest.mark.parametrize("poll, looks", [(0, 5), (60, 6), (10, 31), (120, 5)])
def test_the_grace_window_covers_five_minutes_or_five_looks(poll, looks):
    assert tpu.grace_polls(poll) == looks


def test_status_logs_stop_delete(tmp_path, fake, capsys):
    f = fake(qr="ACTIVE", train_runs=2)
    spec = str(write_spec(tmp_path))
    for action in ("status", "logs", "stop", "delete", "status"):
        assert main(["launch", "tpu", action, spec]) == 0
    out = capsys.readouterr().out.split("\n")
    assert out[0] == "ACTIVE" and out[1] == "log of gs://bkt/sj/logs/d576-m20/attempt-2/*.log" and out[-2] == "ABSENT"
    assert any(f"--command={gcloud.stop_command()}" in a for a in f.calls)


def test_dry_run_prints_every_command_and_runs_none(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcloud anywhere
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path)), "--dry-run", "--delete-when-done"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("gcloud compute tpus queued-resources create sj-test --node-id=sj-test")
    assert any("scaling-jax train" in ln for ln in lines) and "queued-resources delete" in lines[-1]
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path))]) == 2  # not a dry run: gcloud needed
    local = write_spec(tmp_path, tpu__accelerator_type="v4-8", bucket="/data/sj")  # checks go through ssh
    assert main(["launch", "tpu", "run", str(local), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum("scaling-jax train" in ln for ln in lines) == 1 and "--worker=0 '--command=test -e" in lines[-2]
    assert lines[-1] == "d576-m20: done; record /data/sj/runs/d576-m20/record.json"


@pytest.mark.parametrize("changes, message", [
    ({"tpu__accelerator_type": "v4-12"}, "tpu.accelerator_type: unknown TPU accelerator type 'v4-12'"),
    ({"tpu__accelerator_type": "v5litepod-8"},
     "tpu.runtime_version: 'tpu-ubuntu2204-base' does not run on v5litepod-8"),
    ({"bucket": "/mnt/runs"}, "bucket: '/mnt/runs': v4-32 has 4 hosts"),
    ({"job__config": "nope.yaml"}, "job.config: train config 'nope.yaml' not found"),
])
def test_bad_input_fails_before_any_gcloud_call(tmp_path, fake, capsys, changes, message):
    f = fake()
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path, **changes))]) == 2
    assert message in capsys.readouterr().err
    assert f.calls == []
    assert main(["launch", "tpu", "create", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: config file not found" in capsys.readouterr().err and f.calls == []


def test_single_host_may_write_to_a_local_folder(tmp_path):
    spec = load_spec(write_spec(tmp_path, tpu__accelerator_type="v4-8", bucket="/data/sj"))
    assert spec.tpu.hosts == 1 and spec.out == "/data/sj/runs/d576-m20"


def _bash(command: str, home: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=30)


def test_worker_commands_run_in_bash(tmp_path):
    """The setup installs once per setup section; train's log reaches the bucket folder and its
    exit status comes back."""
    bin_dir, home = tmp_path / "bin", tmp_path / "home"
    FakeGcloud(bin_dir)
    install(bin_dir, "python3", "import sys\nopen(__file__ + '.calls', 'a').write(' '.join(sys.argv[1:]) + '\\n')\n")
    spec = load_spec(write_spec(tmp_path, bucket=str(tmp_path / "bucket"), tpu__accelerator_type="v4-8"))
    setup = gcloud.setup_command(spec, "abc")
    for _ in range(2):
        assert _bash(setup, home, bin_dir).returncode == 0
    pip = (bin_dir / "python3.calls").read_text().splitlines()
    assert pip == ["-m pip install --user -U jax[tpu] gcsfs",
                   "-m pip install --user -U ~/scaling_jax_job/scaling_jax-0.1.0-py3-none-any.whl".replace(
                       "~", str(home))]
    install(home / ".local" / "bin", "scaling-jax", "import sys\nprint('argv', sys.argv[1:])\nsys.exit(3)\n")
    r = _bash(gcloud.train_command(spec, resume=True, attempt=1), home, bin_dir)
    assert r.returncode == 3
    logs = list((tmp_path / "bucket" / "logs" / "d576-m20" / "attempt-1").glob("*.log"))
    assert len(logs) == 1 and "'--resume'" in logs[0].read_text() and "budget.multiplier=20" in logs[0].read_text()


@pytest.mark.parametrize("name, hosts", [("v5e-8", 1), ("v4-32", 4), ("v5p-64", 8)])
def test_example_specs_load(monkeypatch, name, hosts):
    repo = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repo)  # their train configs are named from the repository root
    spec = load_spec(repo / "configs" / "launch" / f"{name}.yaml")
    assert spec.tpu.hosts == hosts and spec.out.startswith("gs://") and "gcsfs" in spec.setup.pip


@pytest.mark.parametrize("how", ["stop", "preemption"])
def test_sigterm_reaches_train_and_it_checkpoints(tmp_path, how):
    """``launch tpu stop`` signals only train; a preemption signals every process of the
    worker's job. Either way train gets SIGTERM and its output is not cut off."""
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    install(home / ".local" / "bin", "scaling-jax", "import signal, sys, time\n"
            "def stop(*a):  # a checkpoint takes a while\n"
            "    time.sleep(0.3); print('checkpointed', flush=True); sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, stop)\nprint('started', flush=True)\ntime.sleep(30)\nsys.exit(5)\n")
    (home / "scaling_jax_job").mkdir()
    FakeGcloud(bin_dir)
    spec = load_spec(write_spec(tmp_path, bucket=str(tmp_path / "bucket"), tpu__accelerator_type="v4-8"))
    env = {**os.environ, "HOME": str(home), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    job = subprocess.Popen(["bash", "-c", gcloud.train_command(spec, resume=False, attempt=1)], env=env,
                           stdout=subprocess.DEVNULL, start_new_session=True)
    log = home / "scaling_jax_job" / "train.log"
    try:
        deadline = time.monotonic() + 60
        # The whole line, then the signal: one that lands inside print('started') runs the
        # handler between the text and its newline.
        while not (log.exists() and log.read_text() == "started\n") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log.read_text() == "started\n", "train never started"
        if how == "stop":
            assert subprocess.run(["bash", "-c", gcloud.stop_command()], timeout=10).returncode == 0
            assert job.wait(timeout=10) == 0  # the job's shell outlives train and reports its status
        else:
            os.killpg(job.pid, signal.SIGTERM)
            job.wait(timeout=10)
            time.sleep(0.6)
        assert log.read_text() == "started\ncheckpointed\n"
    finally:
        os.killpg(job.pid, signal.SIGKILL) if job.poll() is None else None


def test_a_sigterm_nobody_asked_for_on_an_active_slice_resumes_there(tmp_path, fake, capsys):
    """Review of issue 36 item 4: train checkpointed on a SIGTERM that no `launch tpu stop` sent
    (no stop marker: host maintenance) and the slice stayed ACTIVE: the launcher resumes on the
    same slice (not re-created, not left running idle) instead of reporting a user's stop."""
    f = fake(stop_on_runs=[1], unasked_term=True)
    assert main(["launch", "tpu", "run", str(write_spec(tmp_path))]) == 0
    work = [s for s in f.steps() if s not in ("describe", "storage ls", "ssh")]
    # one slice, not deleted: the config copied again, setup skipped by its stamp, train resumed on it
    assert work == ["create", "scp", "setup", "train", "scp", "setup", "train --resume"]
    assert f.state["train_runs"] == 2 and f.state["record"] and f.state["setup_installs"] == 1
    assert "resuming on it (1 of at most" in capsys.readouterr().out


def test_launch_tpu_stop_leaves_the_marker_and_train_clears_it():
    from scaling_jax.launch import gcloud

    assert gcloud.stop_command().startswith(f"touch {gcloud.STOP_MARKER}; pkill -TERM")
