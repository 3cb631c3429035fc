"""The local runner: the sweep's unfinished runs as ``sweep run-one`` processes, ``jobs`` at a
time. One process per GPU when the host has GPUs (each sees only its own), else one per two
CPU cores (a JAX CPU process already uses several threads). A failed run is reported at the
end and the others go on; SIGINT/SIGTERM is passed to the running children, which checkpoint
and stop, so the next ``sweep run`` resumes them.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from scaling_jax import paths
from scaling_jax.sweep.spec import Run
from scaling_jax.sweep.state import LOG_FILE, checkpoint_steps, mark, read_state


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


def run_command(run: Run) -> list[str]:
    return [sys.executable, "-m", "scaling_jax.cli", "sweep", "run-one", str(run.out)]


def log_file(run: Run) -> Path:
    """Where the runner writes a run's output: its folder, or for a ``gs://`` run a local file
    (uploaded into the run folder when the run ends)."""
    if not paths.is_gcs(run.out):
        return Path(run.out) / LOG_FILE
    sweep = paths.name(paths.parent(run.out))
    return Path(tempfile.gettempdir()) / "scaling_jax_sweep_logs" / sweep / f"{run.name}.log"


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
    active: dict[int, tuple[subprocess.Popen, Run, float, bool]] = {}
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
        for p, *_ in active.values():
            p.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while (todo and not stopping) or active:
            free = [s for s in range(jobs) if s not in active]
            while free and todo and not stopping:
                slot, r = free.pop(0), todo.pop(0)
                env = dict(os.environ)
                if gpus:
                    env["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
                resume = bool(checkpoint_steps(r.out))
                log_path = log_file(r)
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log = open(log_path, "a")
                say(f"{r.name}: {'resuming' if resume else 'starting'} (log {log_path})")
                p = subprocess.Popen(run_command(r), stdout=log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
                log.close()
                active[slot] = (p, r, time.perf_counter(), resume)
            for slot, (p, r, t0, resume) in list(active.items()):
                rc = p.poll()
                if rc is None:
                    continue
                del active[slot]
                action = "failed" if rc not in (0, 143) else "stopped" if rc == 143 else \
                    "resumed" if resume else "trained"
                outcomes[r.name] = Outcome(r.name, action, rc, time.perf_counter() - t0, str(log_file(r)))
                if paths.is_gcs(r.out):
                    paths.write_text(paths.join(r.out, LOG_FILE), log_file(r).read_text(errors="replace"))
                if action == "failed" and read_state(r.out).state != "failed":  # died before saying so
                    mark(r.out, "failed", message=f"exit {rc} (see {log_file(r)})")
                say(f"{r.name}: {action} (exit {rc}, {outcomes[r.name].seconds:.1f} s)")
            time.sleep(0.1)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return [outcomes.get(r.name, Outcome(r.name, "not started", 0, 0.0, "")) for r in runs]


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.action == "failed"]


def log_tail(path: str | Path, lines: int = 5) -> str:
    p = Path(path)
    return "\n".join(p.read_text(errors="replace").splitlines()[-lines:]) if p.is_file() else ""
