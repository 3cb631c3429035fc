"""Who trains a run: an exclusive claim in its folder, so two runners (two ``sweep run``s, two
SLURM arrays over the same runs, a requeued task beside a live one) never train it twice.

A claim is ``claim-<k>.json``, created only if absent (``paths.create_exclusive``: a hard link
locally, ``ifGenerationMatch=0`` on gs://); the highest ``k`` owns the run. A claim whose owner
is gone is taken over by creating ``claim-<k+1>``, so of several processes taking over at once
exactly one wins, and a winner that then sees a higher claim (its listing was old) backs off.
The owner is gone when its process is dead (same host: its pid decides, however late its beats),
when it was an earlier attempt of this very SLURM job (a requeued task: same job id, whatever
the host; without this the requeued task would find its own dead claim live and leave the run),
or when its heartbeat, rewritten every ``HEARTBEAT_SECONDS``, is older than its lease (another
host: the record's ``stale``, default ``STALE_SECONDS``; its clock is trusted). A TPU sweep worker takes a shorter lease
(``sweep run --lease-timeout``) and beats four times per lease. Before each beat the owner checks
that its claim is still the highest: one that was taken over while its beats did not get through
(a lost lease) stops beating and calls ``on_lost``, and never writes its claim back.
The owner deletes its claim when the run ends; a killed owner's claim is left to be taken over.
A claim names its host as ``$SCALING_JAX_HOST`` or, unset, the machine's name.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid

from scaling_jax import paths

LEASE_LOST = 76  # exit status of a process whose claim was taken over: it wrote nothing after
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0
_NAME = re.compile(r"claim-(\d+)\.json")


def exit_lost(who: str = "this process") -> None:
    """A lost claim's default end: exit at once (``os._exit``, no cleanup handlers, no checkpoint, no
    state or log written), since the run folder now belongs to the process that took it over."""
    print(f"{who}: lease lost (another process took the run over); exiting at once ({LEASE_LOST}) so "
          "nothing more is written", flush=True)
    os._exit(LEASE_LOST)


class Busy(Exception):
    """Another live process holds the run; the message names it."""


def claim_path(run_dir: str, k: int) -> str:
    return paths.join(run_dir, f"claim-{k}.json")


def numbers(run_dir: str, names: list[str] | None = None) -> list[int]:
    """The claim numbers in ``run_dir`` (from ``names``, its listing, when the caller has it), sorted."""
    names = paths.listdir(run_dir) if names is None else names
    return sorted(int(m.group(1)) for n in names if (m := _NAME.fullmatch(n)))


def read(run_dir: str, k: int) -> dict | None:
    """Claim ``k``'s owner record, or None once it is gone (released or cleaned up)."""
    try:
        return json.loads(paths.read_text(claim_path(run_dir, k)))
    except FileNotFoundError:
        return None


def host() -> str:
    return os.environ.get("SCALING_JAX_HOST") or socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def slurm_job() -> str | None:
    """This process's SLURM job (array job and task for an array task), kept across requeues."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '')}"
    return env.get("SLURM_JOB_ID")


def alive(owner: dict, now: float | None = None) -> bool:
    """Whether a claim's owner still holds it: on this host, a live pid; an earlier attempt of this
    SLURM job, never; elsewhere, a heartbeat within its lease."""
    now = time.time() if now is None else now
    if owner.get("host") == host() and owner.get("pid") != os.getpid():
        return _pid_alive(int(owner.get("pid", -1)))
    if owner.get("slurm") and owner.get("slurm") == slurm_job():
        return False
    return now - float(owner.get("beat", 0)) <= float(owner.get("stale", STALE_SECONDS))


def describe(owner: dict) -> str:
    return f"claimed by pid {owner.get('pid')} on {owner.get('host')} (claim {owner.get('k')})"


def live_owner(run_dir: str, names: list[str] | None = None) -> dict | None:
    """The live owner of ``run_dir`` (the highest claim's record), or None if nobody holds it."""
    ks = numbers(run_dir, names)
    owner = read(run_dir, ks[-1]) if ks else None
    return owner if owner is not None and alive(owner) else None


def beat_seconds(stale: float) -> float:
    """How often an owner renews a lease of ``stale`` seconds: four beats per lease, at most HEARTBEAT_SECONDS apart."""
    return min(HEARTBEAT_SECONDS, stale / 4)


class Claim:
    """A held claim: its heartbeat runs in a daemon thread until :meth:`release` or until the
    lease is found lost (``lost`` is then set and ``on_lost`` called, from that thread)."""

    def __init__(self, run_dir: str, record: dict, on_lost=None):
        self.run_dir, self.record, self.on_lost = run_dir, record, on_lost
        self.path = claim_path(run_dir, record["k"])
        self.lost = False
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name=f"claim {self.path}")
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(beat_seconds(float(self.record.get("stale", STALE_SECONDS)))):
            try:
                if numbers(self.run_dir)[-1:] != [self.record["k"]]:  # taken over (or tidied) meanwhile
                    self.lost = True
                    print(f"{self.path}: lease lost (a later claim holds {self.run_dir}); no more beats", flush=True)
                    if self.on_lost is not None:
                        self.on_lost()
                    return
                paths.write_json(self.path, {**self.record, "beat": time.time()})
            except Exception as e:  # a lost beat makes the claim look stale later, never breaks the run
                print(f"{self.path}: heartbeat not written: {e}", flush=True)

    def release(self) -> None:
        self._stop.set()
        self._beat.join()
        paths.delete(self.path)


def acquire(run_dir: str, tries: int = 5, *, stale: float = STALE_SECONDS, fields: dict | None = None,
            on_lost=None) -> Claim:
    """Claim ``run_dir`` for this process, taking over a dead owner's claim; Busy if a live one holds it.
    ``stale``: this claim's lease in seconds; ``fields``: more to record (a TPU worker's slice)."""
    for _ in range(tries):
        ks = numbers(run_dir)
        if ks:
            owner = read(run_dir, ks[-1])
            if owner is None:  # released while we looked: look again
                continue
            if alive(owner):
                raise Busy(describe(owner))
        k = ks[-1] + 1 if ks else 1
        record = {**(fields or {}), "k": k, "host": host(), "pid": os.getpid(), "token": uuid.uuid4().hex,
                  "started": time.time(), "beat": time.time(), "stale": stale, "slurm": slurm_job()}
        if not paths.create_exclusive(claim_path(run_dir, k), (json.dumps(record) + "\n").encode()):
            continue  # another process took k first: look again
        if numbers(run_dir)[-1] != k:  # our listing was old and a higher claim exists: it owns the run
            paths.delete(claim_path(run_dir, k))
            continue
        for j in ks:  # the dead owners' claims: tidy, not needed for correctness
            paths.delete(claim_path(run_dir, j))
        return Claim(run_dir, record, on_lost)
    owner = live_owner(run_dir)
    raise Busy(describe(owner) if owner else f"claims in {run_dir} kept changing over {tries} tries")
