"""``scaling-jax sweep worker --root ROOT``: the claim loop each slice of ``sweep run --runner tpu`` runs.

Over the runs ``ROOT/sweep.json`` lists, largest first (C = 6ND: the longest runs are the critical
path), the worker claims the first pending one with a lease (``sweep.claim``: a create-if-absent
object in the run's folder, ``ifGenerationMatch=0`` on gs://, renewed while the run trains; a
lease not renewed for ``--lease-timeout`` is taken over), trains or resumes it from its
checkpoints (``single.run_one``), releases it and looks again from the top. While no run is
pending but some run elsewhere it waits, since a preempted slice's lease expires and its run
becomes pending; it exits 0 when no run is pending or running. A WSD branch is claimed once its
trunk has committed the checkpoint at its decay start; until then it waits while its trunk is
pending or running. A run that fails is marked failed
and left (the next ``sweep run`` retries it). SIGTERM (a spot slice's preemption notice, a stop)
checkpoints the run, releases it and exits 143. A lease found lost (taken over while this
worker's renewals did not get through) ends the process at once with LEASE_LOST, so it writes
nothing more into a run another worker now owns.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from scaling_jax import atomic, paths
from scaling_jax.sweep import claim, single, trees
from scaling_jax.sweep.state import LOG_FILE, read_state

LEASE_LOST = claim.LEASE_LOST


def claim_order(root: str) -> list[str]:
    """The run folders ``root/sweep.json`` lists, largest C first (ties by name)."""
    rows = json.loads(paths.read_text(paths.join(root, "sweep.json")))["runs"]
    return [r["folder"] for r in sorted(rows, key=lambda r: (-float(r["C"]), r["name"]))]


def wait_seconds(lease_timeout: float) -> float:
    """How long a worker with nothing to claim waits before looking again."""
    return min(30.0, lease_timeout / 2)


def work(folders: list[str], *, lease: dict, stop, poll: float, say=print,
         waits: dict[str, tuple[str, int]] | None = None) -> int:
    """Claim and train ``folders``' pending runs in order until none is pending or running (0),
    or until ``stop.set`` (143). ``lease``: ``claim.acquire``'s keywords; ``waits``: each branch
    folder's trunk folder and decay start (``trees.waits``)."""
    from scaling_jax.eval.score import release_scorers

    while not stop.set:
        waiting = False
        for run_dir in folders:
            st = read_state(run_dir).state
            waiting = waiting or st == "running"
            if st != "pending":
                continue
            if run_dir in (waits or {}) and not trees.point_committed(*waits[run_dir]):  # its trunk is not there yet
                waiting = waiting or read_state(waits[run_dir][0]).state in ("pending", "running")
                continue
            rc = single.run_one(run_dir, **lease)
            if rc == single.BUSY:  # claimed by another worker since we looked
                waiting = True
                continue
            release_scorers()  # a finished run's parameters must not stay on the device
            fields = lease.get("fields", {})
            _note(run_dir, f"{time.strftime('%Y-%m-%d %H:%M:%S')} exit {rc} on {fields.get('slice', '?')} "
                           f"({claim.host()}); output in {fields.get('log') or '?'}")
            break  # look again from the top: the largest pending run first
        else:
            if not waiting:
                say("sweep worker: no run is pending or running; done")
                return 0
            _wait(stop, poll)
    return 143


def _wait(stop, seconds: float) -> None:
    end = time.monotonic() + seconds
    while not stop.set and time.monotonic() < end:
        time.sleep(min(0.2, seconds))


def _note(run_dir: str, line: str) -> None:
    """Append ``line`` to the run's ``sweep.log`` (where ``sweep status`` points for a failed run)."""
    log = paths.join(run_dir, LOG_FILE)
    old = paths.read_text(log) if paths.exists(log) else ""
    paths.write_text(log, old + line + "\n")


def _lost() -> None:
    claim.exit_lost("sweep worker")


def _is_worker(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"sweep" in cmd and b"worker" in cmd


def replace_older(pid_file: str, timeout: float = 600.0) -> None:
    """Stop the worker an earlier ``sweep run`` left on this host, if one still runs (SIGTERM:
    its run checkpoints and is released; two JAX processes cannot share a TPU), then record this
    process in ``pid_file``."""
    path = Path(os.path.expanduser(pid_file))
    try:
        old = int(path.read_text())
    except (OSError, ValueError):
        old = 0
    if old and old != os.getpid() and _is_worker(old):
        print(f"sweep worker: stopping the earlier worker (pid {old})", flush=True)
        os.kill(old, signal.SIGTERM)
        end = time.monotonic() + timeout
        while _is_worker(old) and time.monotonic() < end:
            time.sleep(0.5)
    atomic.write_text(path, f"{os.getpid()}\n")


def main(root: str, *, slice_name: str, lease_timeout: float, log: str = "", pid_file: str = "") -> int:
    """The ``sweep worker --root`` process: SIGTERM stops it between or inside runs (143)."""
    from scaling_jax.train.stop import StopFlag

    stop = StopFlag()
    single._stop = stop  # handed to each run's train(): a SIGTERM during a run's setup still stops it
    if pid_file:
        replace_older(pid_file)
    lease = {"stale": lease_timeout, "fields": {"slice": slice_name, "log": log}, "on_lost": _lost}
    print(f"sweep worker on {slice_name}: claiming the runs of {root} (lease {lease_timeout:g} s)", flush=True)
    return work(claim_order(root), lease=lease, stop=stop, poll=wait_seconds(lease_timeout), waits=trees.waits(root))
