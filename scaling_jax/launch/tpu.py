"""The TPU launcher's state machine over one queued resource:

    create → wait ACTIVE → setup (idempotent) → train on all workers → record.json written → done
                   ↑                                  │ slice preempted / failed
                   └──── delete + re-create ──────────┘ (train resumes from the bucket's checkpoint)

Whether a run resumes is decided here, from the checkpoints in ``--out`` (``train`` refuses
to overwrite a run, and needs ``--resume`` to continue one); whether it finished, from its
``record.json``. The slice's state comes from ``gcloud ... queued-resources describe``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shlex
import time

from scaling_jax.config import to_dict
from scaling_jax.launch import gcloud
from scaling_jax.launch.runner import Answer, CommandFailed, Result, Runner
from scaling_jax.launch.tpu_spec import TpuSpec
from scaling_jax.train.checkpoint import committed_listing, steps_in_listing


class Preempted(Exception):
    """The slice left ACTIVE (preempted, suspended or failed) while the launcher used it."""


class Interrupted(Preempted):
    """train checkpointed on a SIGTERM no ``launch tpu stop`` sent and the slice stayed ACTIVE:
    resume on the same slice (counted like a re-creation, against ``job.max_recreates``)."""


# How long a slice whose job ended (train returned without a record, or ssh failed) is watched
# for leaving ACTIVE before the launcher calls it a stop or a failure rather than a preemption: a
# preempted worker's train checkpoints and exits 0 on SIGTERM, and ssh drops, while the queued
# resource still reads ACTIVE. At least GRACE_POLLS looks, ``poll_seconds`` apart.
GRACE_SECONDS = 300.0
GRACE_POLLS = 5


def grace_polls(poll_seconds: float) -> int:
    """Looks at the state within the grace window: the first right away, then one per poll."""
    return max(GRACE_POLLS, math.ceil(GRACE_SECONDS / poll_seconds) + 1) if poll_seconds > 0 else GRACE_POLLS


def dry_answer() -> Answer:
    """What a dry run assumes: the slice does not exist until created, then is ACTIVE; no
    checkpoint exists; the run finishes (its record.json appears once train has run)."""
    done = set()

    def answer(argv: list[str]) -> Result:
        if "create" in argv or any("scaling-jax train" in a for a in argv):
            done.add("train" if "ssh" in argv else "create")
        if "describe" in argv:
            return Result(0, "ACTIVE\n") if "create" in done else Result(1, err="NOT_FOUND")
        if any("record.json" in a for a in argv):  # gcloud storage ls, or ssh test -e for a local bucket
            return Result(0, "record.json\n") if "train" in done else Result(1)
        return Result(1) if argv[1:3] == ["storage", "ls"] else Result(0)

    return answer


class TpuLauncher:
    def __init__(self, spec: TpuSpec, run: Runner, *, log=print, sleep=time.sleep):
        self.spec, self.run, self.log, self.sleep = spec, run, log, sleep
        self.slice = spec.tpu
        run.require("gcloud")

    # --- the slice ---------------------------------------------------------------------------
    def state(self) -> str:
        r = self.run(gcloud.describe(self.slice), check=False, capture=True)
        if r.rc != 0:
            if "NOT_FOUND" in r.err or "not found" in r.err.lower():
                return gcloud.ABSENT
            raise CommandFailed(f"describe {self.slice.name}: gcloud exited with status {r.rc}: {r.err.strip()}")
        return r.out.strip() or "UNKNOWN"

    def create(self) -> None:
        """Make the slice ACTIVE: create it if absent, replace it if lost, wait while it provisions."""
        st = self.state()
        if st in gcloud.LOST:
            self.log(f"{self.slice.name}: {st}; deleting it before re-creating")
            self.delete()
            st = gcloud.ABSENT
        if st == gcloud.ABSENT:
            self.run(gcloud.create(self.slice))
        self.wait_active()

    def settled_state(self) -> str:
        """The slice's state once it has had the grace window (GRACE_SECONDS) to leave ACTIVE:
        one look right after a worker's job ends can come before the preemption shows."""
        for i in range(grace_polls(self.spec.poll_seconds)):
            if i == 1:
                self.log(f"{self.slice.name}: ACTIVE after the job ended; watching for a preemption for up to "
                         f"{self._grace()}")
            if i:
                self.sleep(self.spec.poll_seconds)
            st = self.state()
            if st != gcloud.ACTIVE:
                return st
        return gcloud.ACTIVE

    def _grace(self) -> str:
        n = grace_polls(self.spec.poll_seconds)
        return f"{(n - 1) * self.spec.poll_seconds:g} s ({n} looks)"

    def wait_active(self) -> None:
        while True:
            st = self.state()
            if st == gcloud.ACTIVE:
                return
            if st in gcloud.LOST or st == gcloud.ABSENT:
                raise Preempted(st)
            self.log(f"{self.slice.name}: {st}; waiting {self.spec.poll_seconds:g} s")
            self.sleep(self.spec.poll_seconds)

    def delete(self) -> None:
        if self.state() != gcloud.ABSENT:
            self.run(gcloud.delete(self.slice))

    # --- the job -----------------------------------------------------------------------------
    def stamp(self) -> str:
        """A hash of the setup section: a worker set up with the same one skips setup."""
        return hashlib.sha256(json.dumps(to_dict(self.spec.setup), sort_keys=True).encode()).hexdigest()[:12]

    def setup(self) -> None:
        self._on_slice(gcloud.ssh(self.slice, f"mkdir -p {gcloud.JOB_DIR}"))
        self._on_slice(gcloud.scp(self.slice, self.spec.job.config, f"{gcloud.JOB_DIR}/config.yaml"))
        self._on_slice(gcloud.ssh(self.slice, gcloud.setup_command(self.spec, self.stamp())))

    def _exists(self, url: str, *, listing: bool) -> list[str]:
        """Names in folder ``url`` (``listing``) or [url] if the object exists; [] if absent."""
        if url.startswith("gs://"):
            r = self.run(gcloud.storage_ls(url + ("/" if listing else "")), check=False, capture=True)
        else:
            cmd = f"ls {shlex.quote(url)}" if listing else f"test -e {shlex.quote(url)} && echo {shlex.quote(url)}"
            r = self.run(gcloud.ssh(self.slice, cmd, worker="0"), check=False, capture=True)
        return r.out.split() if r.rc == 0 else []

    def saved_steps(self) -> list[int]:
        """Committed steps only (train.checkpoint's rule): a step a death mid-save left is none."""
        ckpts = f"{self.spec.out}/checkpoints"
        remote = ckpts.startswith("gs://")
        return steps_in_listing(self._exists(committed_listing(ckpts), listing=not remote), remote=remote)

    def finished(self) -> bool:
        return bool(self._exists(f"{self.spec.out}/record.json", listing=False))

    def train(self, attempt: int) -> int:
        steps = self.saved_steps()
        if steps:
            self.log(f"{self.spec.job.name}: resuming from step {steps[-1]} in {self.spec.out}")
        r = self.run(gcloud.ssh(self.slice, gcloud.train_command(self.spec, resume=bool(steps), attempt=attempt)),
                     check=False)
        return r.rc

    def _on_slice(self, argv: list[str]) -> None:
        """Run a command on the workers; if it fails because the slice went away, raise Preempted."""
        r = self.run(argv, check=False)
        if r.rc != 0:
            st = self.settled_state()
            if st != gcloud.ACTIVE:
                raise Preempted(st)
            raise CommandFailed(f"{shlex.join(argv[:6])} ... failed on ACTIVE slice {self.slice.name} "
                                f"with status {r.rc}")

    def watch(self, *, delete_when_done: bool = False) -> int:
        """Create, set up and train until the record is written, re-creating the slice after
        each preemption (at most ``job.max_recreates`` times). Returns the number of re-creations."""
        recreates, attempt = 0, 0
        while True:
            try:
                self.create()
                self.setup()
                if self.finished():
                    break
                attempt = max([attempt, *self.attempts()]) + 1  # a rerun's attempts follow the earlier ones
                rc = self.train(attempt)
                if self.finished():
                    break
                st = self.settled_state()
                if st != gcloud.ACTIVE:
                    raise Preempted(st)
                if rc == 0 and not self.stop_requested():
                    # SIGTERM that no `launch tpu stop` sent (host maintenance, an operator) on a slice
                    # that stayed ACTIVE: train checkpointed, so resume it here, as often as a re-creation
                    raise Interrupted("train stopped by a SIGTERM no `launch tpu stop` sent; the slice stayed ACTIVE")
                raise CommandFailed(self._ended_on_active(rc, attempt))
            except Preempted as e:
                recreates += 1
                if recreates > self.spec.job.max_recreates:
                    raise CommandFailed(f"{self.slice.name}: lost ({e}) {recreates} times, more than "
                                        f"job.max_recreates={self.spec.job.max_recreates}; giving up") from None
                again = "resuming on it" if isinstance(e, Interrupted) else "re-creating it"
                self.log(f"{self.slice.name}: {e}; {again} ({recreates} of at most {self.spec.job.max_recreates})")
                if not isinstance(e, Interrupted):
                    self.delete()
        self.log(f"{self.spec.job.name}: done; record {self.spec.out}/record.json")
        if delete_when_done:
            self.delete()
        return recreates

    def _ended_on_active(self, rc: int, attempt: int) -> str:
        """Why the launcher gives up on a slice that stayed ACTIVE: train stopped (exit 0 without
        a record: SIGTERM, e.g. ``launch tpu stop``, and it checkpointed) or failed."""
        job, logs = self.spec.job.name, f"logs: {self.spec.logs}/attempt-{attempt}/"
        waited = f"{self.slice.name} stayed ACTIVE for {self._grace()}"
        if rc == 0:
            return (f"{job}: train stopped (exit 0, checkpointed) without writing {self.spec.out}/record.json, "
                    f"and {waited}, so it was stopped, not preempted; `launch tpu run` again resumes it; {logs}")
        return (f"{job}: train exited with status {rc} on ACTIVE slice {self.slice.name} "
                f"without writing {self.spec.out}/record.json ({waited}); {logs}")

    def attempts(self) -> list[int]:
        """The numbers of the attempts whose logs are in ``{logs}`` (attempt-N), sorted."""
        names = self._exists(self.spec.logs, listing=True)
        return sorted(int(m.group(1)) for n in names if (m := re.search(r"attempt-(\d+)/?$", n)))

    def stop_requested(self) -> bool:
        """Whether ``launch tpu stop`` stopped the last train (its marker on worker 0)."""
        r = self.run(gcloud.ssh(self.slice, f"test -e {gcloud.STOP_MARKER} && echo marker", worker="0"),
                     check=False, capture=True)  # unquoted: the worker's shell expands ~
        return r.rc == 0 and "marker" in r.out

    def stop(self) -> None:
        self.run(gcloud.ssh(self.slice, gcloud.stop_command()))

    def logs(self) -> str:
        """The newest attempt's logs from every worker."""
        if not self.spec.logs.startswith("gs://"):
            return self.run(gcloud.ssh(self.slice, f"cat {gcloud.JOB_DIR}/train.log"), capture=True).out
        attempts = self.attempts()
        if not attempts:
            return ""
        return self.run(gcloud.storage_cat(f"{self.spec.logs}/attempt-{attempts[-1]}/*.log"), capture=True).out
