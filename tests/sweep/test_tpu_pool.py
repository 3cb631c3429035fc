"""``sweep run --runner tpu`` (issue 35): a pool of fake queued resources (``tests.launch.fake_pool``:
workers are local processes, one host per slice) works through a sweep in a GCS emulator; runs
are claimed once, a preempted slice's run is resumed elsewhere, a killed worker's lease expires
and is taken over, and ``sweep status`` shows every run in exactly one state throughout."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from scaling_jax import paths
from scaling_jax.cli import main
from scaling_jax.sweep import claim, worker
from scaling_jax.sweep.folders import write_run_configs
from scaling_jax.sweep.spec import expand, load_spec
from scaling_jax.sweep.state import STATES
from scaling_jax.sweep.tpu_pool import slice_names
from tests.gcs import BUCKET, gcs_emulator  # noqa: F401 (fixture)
from tests.launch.fake_pool import FakePool

from . import stand_in
from .conftest import REPO, SMOKE, micro_spec, write_spec

PRELUDE = "import tests.sweep.stand_in as s\ns.install()"


def _sweep(tmp_path: Path, multipliers, *, root: str = "", **set_) -> tuple[Path, list]:
    """Twin runs: datasets ``a`` and ``b`` are the same synthetic corpus, so a-X and b-X train alike."""
    root = root or f"gs://{BUCKET}/{uuid.uuid4().hex}/twins"
    spec = micro_spec(tmp_path, name="twins", out=root, run_name="{dataset}-{model}-{M:g}",
                      datasets={"a": {}, "b": {}}, grid=[{"models": ["tiny_d16"], "multipliers": list(multipliers)}])
    spec.pop("recipe")
    spec["set"].update(set_)
    path = write_spec(tmp_path, spec)
    return path, expand(load_spec(path))


def _launch(tmp_path: Path, **tpu) -> Path:
    spec = {"tpu": {"name": "sj", "project": "proj", "zone": "us-west4-a", "accelerator_type": "v5litepod-8",
                    "runtime_version": "v2-alpha-tpuv5-lite", **tpu},
            "bucket": f"gs://{BUCKET}/pool", "job": {"name": "unused", "config": str(SMOKE)}, "poll_seconds": 0}
    path = tmp_path / f"launch-{tpu.get('accelerator_type', 'v5e-8')}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _until(cond, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _pool(fake: FakePool, spec: Path, launch: Path, *args: str) -> tuple[threading.Thread, dict]:
    """``sweep run --runner tpu`` in a thread (the test preempts slices meanwhile)."""
    result = {}
    t = threading.Thread(target=lambda: result.update(rc=main(
        ["sweep", "run", str(spec), "--runner", "tpu", "--launch", str(launch), *args])), daemon=True)
    t.start()
    return t, result


def _in_progress(runs) -> tuple | None:
    """A run with a checkpoint, no record and a live owner: (run, owner)."""
    for r in runs:
        owner = claim.live_owner(r.out)
        if owner and stand_in.rows(r.out) and not paths.exists(paths.join(r.out, "record.json")):
            return r, owner
    return None


def _status(spec: Path, capsys) -> dict[str, str]:
    """Each run's state per ``sweep status --json``; every run is in exactly one of STATES."""
    capsys.readouterr()
    assert main(["sweep", "status", str(spec), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["state"] in STATES for r in rows) and len({r["name"] for r in rows}) == len(rows)
    return {r["name"]: r for r in rows}


@pytest.fixture
def fake_pool(tmp_path, monkeypatch):
    pools = []

    def make(prelude: str = PRELUDE) -> FakePool:
        fake = FakePool(tmp_path / "bin", prelude)
        monkeypatch.setenv("PATH", f"{fake.dir}{os.pathsep}{os.environ['PATH']}")
        pools.append(fake)
        return fake

    yield make
    for fake in pools:
        fake.kill_all()


@pytest.mark.slow
@pytest.mark.usefixtures("gcs_emulator")
def test_three_slices_train_twelve_runs_once_through_a_preemption(tmp_path, fake_pool, capsys, monkeypatch):
    """Each worker's first run waits at its first checkpoint (``STAND_IN_HOLD``) until one slice is
    preempted and the worker on another dies with its slice still ACTIVE; both runs are resumed."""
    hold = tmp_path / "hold"
    hold.mkdir()
    monkeypatch.setenv("STAND_IN_HOLD", str(hold))
    spec, runs = _sweep(tmp_path, [1, 2, 3, 4, 5, 6])
    fake, names = fake_pool(), slice_names("sj", "twins", 3)
    t, result = _pool(fake, spec, _launch(tmp_path), "--slices", "3", "--lease-timeout", "2")
    try:
        held = _until(lambda: len(list(hold.iterdir())) == 3 and {p.name: p.read_text() for p in hold.iterdir()},
                      120, "every worker in its first run")
        at = {host.rsplit(".", 1)[0]: (host, out) for host, out in held.items()}  # slice -> (host, run folder)
        fake.preempt(names[0])  # a spot preemption: the VM and its worker are gone
        fake.kill_worker(names[1])  # the worker dies, its slice stays ACTIVE: started again there
        (hold / "release").touch()
        t.join(timeout=180)
    finally:
        fake.kill_all()
    assert result.get("rc") == 0, capsys.readouterr()
    (host0, victim), (_, killed) = at[names[0]], at[names[1]]
    for r in runs:
        assert [row["step"] for row in stand_in.rows(r.out)] == list(range(1, 11)), r.name  # no step twice
        tries = stand_in.attempts(r.out)
        assert len(tries) == (2 if r.out in (victim, killed) else 1), (r.name, tries)
    first, second = stand_in.attempts(victim)
    assert first["host"] == host0 != second["host"] and second["start"] == 2  # resumed on another VM
    assert stand_in.attempts(killed)[1]["start"] == 2
    st = fake.state
    assert sorted(st["creates"]) == sorted(names + [names[0]])  # the preempted slice re-created once
    assert all(st["slices"][n]["qr"] == "ABSENT" for n in names)  # and every slice deleted at the end
    assert {r["state"] for r in _status(spec, capsys).values()} == {"done"}


@pytest.mark.slow
@pytest.mark.usefixtures("gcs_emulator")
def test_a_preempted_run_resumes_on_another_slice_bitwise_equal_to_its_twin(tmp_path, fake_pool, capsys):
    """Real training: a-1 and b-1 train alike; the slice training one of them is preempted
    after its checkpoint at step 10, and the run finishes from it with its twin's exact losses."""
    pytest.importorskip("gcsfs")
    spec, runs = _sweep(tmp_path, [1], **{"checkpoint.every": 10, "logging.every": 5})
    fake = fake_pool(prelude="")
    t, result = _pool(fake, spec, _launch(tmp_path), "--slices", "2", "--lease-timeout", "2")
    from scaling_jax.train.checkpoint import committed_steps

    def checkpointed():
        for r in runs:
            owner = claim.live_owner(r.out)
            if owner and committed_steps(paths.join(r.out, "checkpoints")) and \
                    not paths.exists(paths.join(r.out, "record.json")):
                return r, owner
        return None

    try:
        victim, owner = _until(checkpointed, 240, "a checkpoint")
        fake.preempt(owner["slice"])
        t.join(timeout=300)
    finally:
        fake.kill_all()
    assert result.get("rc") == 0, capsys.readouterr()
    twin = next(r for r in runs if r is not victim)
    assert json.loads(paths.read_text(paths.join(victim.out, "sweep_state.json")))["resumed_from"] >= 10
    notes = paths.read_text(paths.join(victim.out, "sweep.log")).splitlines()
    assert len(notes) == 1 and "exit 0 on sj-twins-" in notes[0] and f"({owner['host']})" not in notes[0]

    def train_rows(run):
        rows = [json.loads(ln) for ln in paths.read_text(paths.join(run.out, "metrics.jsonl")).splitlines()]
        return [(r["step"], r["loss"], r["grad_norm"]) for r in rows if r["kind"] == "train"]

    assert train_rows(victim) == train_rows(twin) and len(train_rows(victim)) == 6  # steps 5..30, each once
    losses = [json.loads(paths.read_text(paths.join(r.out, "record.json")))["losses"] for r in (victim, twin)]
    assert losses[0][victim.dataset] == losses[1][twin.dataset]


@pytest.mark.usefixtures("gcs_emulator")
def test_two_workers_racing_for_one_run_one_wins_and_the_other_takes_the_next(tmp_path, monkeypatch):
    monkeypatch.setattr("scaling_jax.train.loop.train", stand_in.train)
    monkeypatch.setenv("STAND_IN_SECONDS", "0.5")
    spec, runs = _sweep(tmp_path, [1], root=f"gs://{BUCKET}/{uuid.uuid4().hex}/race")
    write_run_configs(load_spec(spec), runs)
    folders = worker.claim_order(runs[0].out.rsplit("/", 1)[0])
    start, rcs = threading.Barrier(2), {}

    class Never:
        set = False

    def one(name):
        start.wait()
        rcs[name] = worker.work(folders, lease={"stale": 10.0, "fields": {"slice": name}}, stop=Never(), poll=0.1)

    threads = [threading.Thread(target=one, args=(n,), name=n) for n in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert rcs == {"w1": 0, "w2": 0}
    trainers = [[a["thread"] for a in stand_in.attempts(f)] for f in folders]
    assert sorted(trainers) == [["w1"], ["w2"]]  # each run once, each by another worker


LEASE = 5  # the dying workers' lease: long enough for the checks made within it


def _dying_worker(root: str, point: str) -> subprocess.Popen:
    code = (f"import sys\nsys.path.insert(0, {str(REPO)!r})\n{PRELUDE}\nfrom scaling_jax.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "SCALING_JAX_HOST": f"dead-{point}", "STAND_IN_KILL": point, "STAND_IN_SECONDS": "0.5"}
    return subprocess.Popen([sys.executable, "-c", code, "sweep", "worker", "--root", root, "--slice",
                             f"slice-{point}", "--lease-timeout", str(LEASE)], env=env)


@pytest.mark.slow
@pytest.mark.usefixtures("gcs_emulator")
def test_a_worker_killed_at_any_point_leaves_every_run_in_one_state_and_its_lease_expires(
        tmp_path, capsys, monkeypatch):
    """kill -9 at four points of a run's life; ``sweep status`` before and after the lease
    expires; then a worker on another host takes the run over (no sooner than the lease allows)."""
    points = {"unmarked": "pending", "claimed": "running", "training": "running", "recorded": "done"}
    sweeps = {}
    for p in points:
        (tmp_path / p).mkdir()
        spec, runs = _sweep(tmp_path / p, [1])
        write_run_configs(load_spec(spec), runs)
        sweeps[p] = spec, runs, runs[0].out.rsplit("/", 1)[0]
    procs = {p: _dying_worker(root, p) for p, (_, _, root) in sweeps.items()}
    for _ in range(len(procs)):  # each sweep's status as soon as its worker died, within its lease
        p = _until(lambda: next((q for q, proc in procs.items() if proc.poll() is not None), None), 60, "a death")
        assert procs.pop(p).returncode == -signal.SIGKILL, p
        spec, _, root = sweeps[p]
        name = paths.name(worker.claim_order(root)[0])  # the run the worker died in: the largest
        shown = _status(spec, capsys)
        assert shown[name]["state"] == points[p] and sum(r["state"] == "pending" for r in shown.values()) == \
            (2 if points[p] == "pending" else 1), p
        if points[p] == "running":
            assert shown[name]["owner"]["slice"] == f"slice-{p}"
            capsys.readouterr()
            main(["sweep", "status", str(spec)])
            assert f"on slice-{p} since " in capsys.readouterr().out
    monkeypatch.setattr("scaling_jax.train.loop.train", stand_in.train)
    monkeypatch.setenv("STAND_IN_SECONDS", "0.2")
    for p, (spec, _, root) in sweeps.items():
        first = worker.claim_order(root)[0]
        name = paths.name(first)
        beat = claim.read(first, claim.numbers(first)[-1])["beat"]
        if points[p] == "running":
            _until(lambda: _status(spec, capsys)[name]["state"] == "pending", 20, f"{p}: the lease to expire")
            assert time.time() >= beat + LEASE
        assert worker.work(worker.claim_order(root), lease={"stale": 2.0}, stop=type("S", (), {"set": False}),
                           poll=0.1) == 0
        assert {r["state"] for r in _status(spec, capsys).values()} == {"done"}, p
        tries = stand_in.attempts(first)
        if p in ("training", "recorded"):  # the others died before the stand-in noted its attempt
            assert tries[0]["host"] == f"dead-{p}"
        assert len(tries) == {"unmarked": 1, "claimed": 1, "training": 2, "recorded": 1}[p], (p, tries)
        assert tries[-1]["t"] >= beat + LEASE or p == "recorded"  # taken over only once the lease expired
        if p == "training":
            assert tries[1]["start"] == 2  # resumed from the dead worker's checkpoint
        assert [r["step"] for r in stand_in.rows(first)] == list(range(1, 11))
        assert claim.numbers(first) == ([1] if p == "recorded" else [])  # a dead claim is tidied by its taker


def test_a_lease_taken_over_is_lost_and_never_renewed(tmp_path, monkeypatch):
    monkeypatch.setattr(claim, "HEARTBEAT_SECONDS", 0.05)
    lost = threading.Event()
    held = claim.acquire(str(tmp_path), stale=0.2, fields={"slice": "s0"}, on_lost=lost.set)
    assert held.record["slice"] == "s0" and held.record["stale"] == 0.2
    time.sleep(0.3)
    assert claim.live_owner(str(tmp_path)) is not None  # renewed within its lease
    other = {"k": held.record["k"] + 1, "host": "elsewhere", "pid": 1, "beat": time.time(), "stale": 60}
    paths.write_json(claim.claim_path(str(tmp_path), other["k"]), other)  # a taker's claim appears
    assert lost.wait(2) and held.lost
    before = claim.read(str(tmp_path), held.record["k"])
    time.sleep(0.2)
    assert claim.read(str(tmp_path), held.record["k"]) == before  # no beat after the loss
    assert claim.live_owner(str(tmp_path))["host"] == "elsewhere"
    held.release()


def test_the_lease_timeout_is_the_claims_own(tmp_path):
    owner = {"k": 1, "host": "node-7", "pid": 1, "beat": time.time() - 5}
    assert claim.alive({**owner, "stale": 10}) and not claim.alive({**owner, "stale": 2})
    assert claim.alive(owner)  # no lease recorded: STALE_SECONDS


def test_a_worker_stops_the_one_an_earlier_run_left_on_its_slice(tmp_path):
    old = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "sweep", "worker"])
    _until(lambda: worker._is_worker(old.pid), 20, "the process to start")  # not the fork before its exec
    pid_file = tmp_path / "worker.pid"
    pid_file.write_text(f"{old.pid}\n")
    try:
        worker.replace_older(str(pid_file), timeout=20)
        assert old.wait(timeout=5) == -signal.SIGTERM
    finally:
        old.kill()
    assert pid_file.read_text() == f"{os.getpid()}\n"
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pid_file.write_text(f"{stranger.pid}\n")
    try:
        worker.replace_older(str(pid_file))  # a reused pid that is no sweep worker is left alone
        assert stranger.poll() is None
    finally:
        stranger.kill()


def test_dry_run_prints_the_first_slices_commands_and_the_claim_loop(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcloud, no bucket: nothing is touched
    spec, runs = _sweep(tmp_path, [1, 4], root="gs://nowhere/sw/twins")
    assert main(["sweep", "run", str(spec), "--runner", "tpu", "--launch", str(_launch(tmp_path)), "--slices", "8",
                 "--lease-timeout", "600", "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "sj-twins-0 .. sj-twins-7" in lines[0]
    gcloud = [ln for ln in lines if ln.startswith("gcloud ")]
    assert gcloud[0].startswith("gcloud compute tpus queued-resources describe sj-twins-0")
    assert "gcloud compute tpus queued-resources create sj-twins-0 --node-id=sj-twins-0" in gcloud[1]
    worker_line = next(ln for ln in gcloud if "sweep worker" in ln)
    assert "--root gs://nowhere/sw/twins --slice sj-twins-0 --lease-timeout 600" in worker_line
    assert "gs://bkt/pool/logs/sj-twins-0/attempt-1/$(hostname).log" in worker_line
    assert gcloud[-1].startswith("gcloud compute tpus queued-resources delete sj-twins-0")
    assert not any("sj-twins-1" in ln for ln in gcloud)
    order = [ln.split()[2] for ln in lines if ln.startswith("#") and ". " in ln and "C=" in ln]
    assert order == ["a-tiny_d16-4", "b-tiny_d16-4", "a-tiny_d16-1", "b-tiny_d16-1"]  # largest first
    assert "ifGenerationMatch=0" in out and "taken over" in out


def test_runs_that_cannot_train_on_the_slice_are_refused_before_anything_is_created(tmp_path, capsys, fake_pool):
    fake = fake_pool()
    paper, launch = REPO / "configs" / "sweeps" / "paper.yaml", _launch(tmp_path)
    gs = [f"datasets.{d}={{data.corpus.path: gs://b/{d}}}" for d in ("c4_original", "rpj", "rw_original")]
    args = ["sweep", "run", str(paper), "out=gs://bkt/paper", *gs, "--runner", "tpu"]
    assert main([*args, "--launch", str(launch), "--dry-run"]) == 0  # the paper's grid fits v5e-8 (7B: fsdp=-1)
    assert "  1. rpj-open_lm_1b-640 " in capsys.readouterr().out.replace("#", "")  # the largest C first
    small = _launch(tmp_path, accelerator_type="v5litepod-4")
    assert main([*args, "--launch", str(small), "--slices", "2"]) == 2
    err = capsys.readouterr().err
    assert "3 run(s) cannot train" in err and "c4_original-open_lm_7b-20: open_lm_7b needs 25.7 GiB per chip for " \
        "weights, gradients and Adam moments (102.7 GiB split 4 ways by mesh fsdp × tensor" in err
    assert "more than the 16 GiB of a v5litepod-4 chip on slice sj-paper-0" in err and "open_lm_1b" not in err
    assert main(["sweep", "run", str(paper), "out=gs://bkt/paper", "--runner", "tpu", "--launch", str(launch)]) == 2
    err = capsys.readouterr().err
    assert "c4_original-d=96_l=8_h=4-5: data.corpus.path 'data/c4_original' is not on gs://" in err
    assert "104 run(s) cannot train" in err and "(and 94 more)" in err
    spec, _ = _sweep(tmp_path, [1], root=str(tmp_path / "local"))
    assert main(["sweep", "run", str(spec), "--runner", "tpu", "--launch", str(launch)]) == 2
    assert "a TPU sweep keeps its runs in a bucket" in capsys.readouterr().err
    v4 = _launch(tmp_path, accelerator_type="v4-32", runtime_version="tpu-ubuntu2204-base")
    assert main(["sweep", "run", str(spec), "out=gs://bkt/x", "--runner", "tpu", "--launch", str(v4)]) == 2
    assert "v4-32 has 4 hosts" in capsys.readouterr().err
    assert fake.calls == [] and not (tmp_path / "local").exists()


def test_slice_names_are_tpu_names_derived_from_the_sweep():
    assert slice_names("sj-v5e-8", "paper", 3) == ["sj-v5e-8-paper-0", "sj-v5e-8-paper-1", "sj-v5e-8-paper-2"]
    long = slice_names("sj", "Cpu_Ladder.Tail16-" + "x" * 80, 12)
    assert all(len(n) <= 63 and n.startswith("sj-cpu-ladder-tail16-x") for n in long) and long[-1].endswith("-11")


@pytest.mark.usefixtures("gcs_emulator")
def test_an_empty_object_is_written_and_read_back():
    """A checkpoint's commit object (and a run's first metrics upload before any row) is empty:
    the emulator used to answer such an upload 500, which TensorStore retried without end."""
    path, done = f"gs://{BUCKET}/{uuid.uuid4().hex}/commit_success.txt", threading.Event()
    threading.Thread(target=lambda: (paths.write_bytes(path, b""), done.set()), daemon=True).start()
    assert done.wait(20) and paths.read_bytes(path) == b""


def test_a_branch_whose_trunk_failed_is_not_work_for_the_pool(tmp_path):
    """Review of issue 35 + 31: a failed trunk's branches stay pending for good; the pool must not
    keep slices alive for them (the worker finds nothing to claim and exits 0 each time)."""
    import json

    from scaling_jax.sweep import tpu_pool

    trunk, branch = tmp_path / "t", tmp_path / "b"
    for d in (trunk, branch):
        d.mkdir()
        (d / "train.yaml").write_text("name: x\n")
    (trunk / "sweep_state.json").write_text(json.dumps({"state": "failed", "message": "boom"}))
    waits = {str(branch): (str(trunk), 10)}
    folders = [str(trunk), str(branch)]
    assert tpu_pool.states(folders) == {str(trunk): "failed", str(branch): "pending"}
    assert tpu_pool.blocked(folders, waits) == [str(branch)]
    assert not tpu_pool.has_work(folders, waits) and tpu_pool.has_work(folders)  # (without the waits it would)
    (trunk / "sweep_state.json").write_text(json.dumps({"state": "running"}))
    assert tpu_pool.has_work(folders, waits) and tpu_pool.blocked(folders, waits) == []
