"""The local runner: the sweep's unfinished runs on ``jobs`` worker processes (``sweep worker``),
each training its runs one after another. One worker per GPU when the host has GPUs (each sees
only its own; with ``--jobs`` above the GPU count, workers share a GPU's memory equally), else one
per two CPU cores (a JAX CPU process already uses several threads).
A worker pays process start and imports once, not once per run: on the CPU ladder's tiny runs
that was most of the sweep's overhead. A failed run is reported at the end and the others go on
(a worker that dies takes only its current run with it); SIGINT/SIGTERM is passed to the
workers, whose runs checkpoint and stop, so the next ``sweep run`` resumes them. A WSD branch
waits for its trunk's checkpoint at its decay start (``sweep.trees``): a trunk's branches start
one by one as the trunk passes their decay starts, in parallel with it and with each other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from scaling_jax import paths
from scaling_jax.sweep.claim import LEASE_LOST
from scaling_jax.sweep.single import BUSY
from scaling_jax.sweep.spec import Run
from scaling_jax.sweep.state import LOG_FILE, checkpoint_steps, mark, read_state
from scaling_jax.sweep.trees import ready

POLL_SECONDS = 0.5  # how often an idle slot looks whether a trunk has reached a waiting branch's start


@dataclasses.dataclass(frozen=True)
class Outcome:
    name: str
    action: str  # skipped (done already), trained, resumed, failed, stopped
    rc: int
    seconds: float
    log: str


def local_gpus() -> int:
    """GPUs on this host, counted without importing JAX (``nvidia-smi -L``)."""
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def default_jobs() -> int:
    return local_gpus() or max(1, (os.cpu_count() or 1) // 2)


MEMORY_VARS = ("XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_ALLOCATOR")


def worker_env(env: dict[str, str], slot: int, jobs: int, gpus: int) -> dict[str, str]:
    """Slot ``slot``'s environment: on a GPU host its GPU (round robin), and where several workers
    share one GPU each takes an equal share of its memory. JAX preallocates 75 % of a GPU per
    process, so a second worker on the same GPU would otherwise run out of memory at start-up.
    A memory setting of the user's own (``XLA_PYTHON_CLIENT_*``) is left as it is."""
    env = dict(env)
    if not gpus:
        return env
    env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
    sharing = -(-jobs // gpus)
    if sharing > 1 and not any(v in env for v in MEMORY_VARS):
        env["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 / sharing:.3f}"
    return env


def log_file(run: Run) -> Path:
    """Where the runner writes a run's output: its folder, or for a ``gs://`` run a local file
    (uploaded into the run folder when the run ends)."""
    if not paths.is_gcs(run.out):
        return Path(run.out) / LOG_FILE
    sweep = paths.name(paths.parent(run.out))
    return Path(tempfile.gettempdir()) / "scaling_jax_sweep_logs" / sweep / f"{run.name}.log"


def worker_command() -> list[str]:
    return [sys.executable, "-m", "scaling_jax.cli", "sweep", "worker"]


class Worker:
    """One ``sweep worker`` process: runs sent one at a time, their exit codes read back."""

    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen(worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     text=True, start_new_session=True)

    def train(self, run: Run, log: Path) -> int | None:
        """The run's exit code, or None when the worker died during it."""
        try:
            self.proc.stdin.write(f"{run.out}\t{log}\n")
            self.proc.stdin.flush()
            while True:  # the answer is the first line that is an integer
                line = self.proc.stdout.readline()
                if not line or line.strip().lstrip("-").isdigit():
                    break
        except (BrokenPipeError, OSError):
            line = ""
        return int(line) if line.strip() else None

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
        self.proc.wait()


def run_local(runs: list[Run], jobs: int, *, say: Callable[[str], None] = print) -> list[Outcome]:
    """Run every run not done yet; returns one outcome per run, in ``runs`` order."""
    gpus = local_gpus()
    todo, outcomes = [], {}
    for r in runs:
        st = read_state(r.out)
        if st.state == "done":
            outcomes[r.name] = Outcome(r.name, "skipped", 0, 0.0, st.log)
        elif st.state == "running":
            say(f"{r.name}: running elsewhere (pid in {r.out}/sweep_state.json); left alone")
            outcomes[r.name] = Outcome(r.name, "running", 0, 0.0, st.log)
        else:
            todo.append(r)
    lock, stopping, workers, busy = threading.Lock(), threading.Event(), {}, set()
    trunks = {r.out: r for r in runs if r.kind == "trunk"}

    def trunk_live(r: Run) -> bool:
        """Whether a waiting branch's trunk may still reach its start: queued, training here, or elsewhere."""
        t = trunks.get(r.trunk)
        if t is not None and (t.name in busy or any(x.name == t.name for x in todo)):
            return True
        return read_state(r.trunk).state == "running"

    def take() -> Run | None:
        """Under the lock: the first run that may start now (None: wait); branches whose trunk
        stopped short of their start are given up."""
        for r in list(todo):
            if ready(r):
                todo.remove(r)
                return r
            if not trunk_live(r):
                todo.remove(r)
                outcomes[r.name] = Outcome(r.name, "not started", 1, 0.0, "")
                say(f"{r.name}: its trunk {r.trunk} has no checkpoint at step {r.start_step} and is not training; "
                    "not started")
        return None

    def slot(n: int) -> None:
        env = worker_env(dict(os.environ), n, jobs, gpus)
        try:
            while True:
                with lock:  # ``stop`` holds the lock too: no run is handed out after it
                    if stopping.is_set() or not todo:
                        break
                    r = take()
                    if r is not None:
                        busy.add(r.name)
                        if n not in workers:
                            workers[n] = Worker(env)
                if r is None:
                    time.sleep(POLL_SECONDS)
                    continue
                try:
                    train_one(n, r)
                except Exception as e:  # the runner's own bookkeeping failed: this run's verdict, the rest go on
                    outcomes[r.name] = Outcome(r.name, "failed", 1, 0.0, str(log_file(r)))
                    say(f"{r.name}: failed in the runner: {type(e).__name__}: {e}")
                finally:
                    with lock:
                        busy.discard(r.name)
        finally:
            with lock:
                w = workers.pop(n, None)
            if w is not None:
                w.close()

    def train_one(n: int, r: Run) -> None:
        resume = bool(checkpoint_steps(r.out))
        log_path = log_file(r)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        say(f"{r.name}: {'resuming' if resume else 'starting'} (log {log_path})")
        t0 = time.perf_counter()
        rc = workers[n].train(r, log_path)
        if rc is None:  # the worker died (killed, out of memory): the run failed; a fresh worker goes on
            with lock:
                dead = workers.pop(n)
            dead.close()
            rc = dead.proc.returncode or 1
        if rc in (BUSY, LEASE_LOST):  # another runner's live process holds it (claimed after our first look,
            # or took it over while we trained): its run, not ours; nothing of ours is written there
            outcomes[r.name] = Outcome(r.name, "running", 0, time.perf_counter() - t0, str(log_path))
            say(f"{r.name}: running elsewhere ({'claimed' if rc == BUSY else 'taken over'} in {r.out}); left alone")
            return
        action = "failed" if rc not in (0, 143) else "stopped" if rc == 143 else \
            "resumed" if resume else "trained"
        outcomes[r.name] = Outcome(r.name, action, rc, time.perf_counter() - t0, str(log_path))
        if paths.is_gcs(r.out):
            paths.write_text(paths.join(r.out, LOG_FILE), log_path.read_text(errors="replace"))
        if action == "failed" and read_state(r.out).state != "failed":  # died before saying so
            mark(r.out, "failed", message=f"exit {rc} (see {log_path})")
        say(f"{r.name}: {action} (exit {rc}, {outcomes[r.name].seconds:.1f} s)")

    def stop(signum, frame):
        with lock:
            stopping.set()
            for w in workers.values():
                w.proc.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        threads = [threading.Thread(target=slot, args=(n,), daemon=True) for n in range(jobs)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):  # joined with a timeout so signals reach ``stop``
            for t in threads:
                t.join(0.1)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return [outcomes.get(r.name, Outcome(r.name, "not started", 0, 0.0, "")) for r in runs]


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.action == "failed"]


def log_tail(path: str | Path, lines: int = 5) -> str:
    p = Path(path)
    return "\n".join(p.read_text(errors="replace").splitlines()[-lines:]) if p.is_file() else ""
