"""Every ``gcloud`` command the TPU launcher runs, built as an argv list (no shell parsing on
this side; the ``--command`` strings run by bash on the workers are built here too).

Queued resources are the way Cloud TPU hands out spot, on-demand and reserved capacity; the
node of a queued resource has the same name. States (``state.state``): ACCEPTED,
WAITING_FOR_RESOURCES, PROVISIONING, ACTIVE, then SUSPENDING/SUSPENDED when a spot slice is
preempted, FAILED when it could not be provisioned.
"""

from __future__ import annotations

import shlex

from scaling_jax.launch.tpu_spec import Slice, TpuSpec

ACTIVE = "ACTIVE"
LOST = frozenset({"SUSPENDING", "SUSPENDED", "FAILED", "PREEMPTED"})
ABSENT = "ABSENT"  # not a gcloud state: describe said NOT_FOUND

JOB_DIR = "~/scaling_jax_job"  # on each worker: the train config, setup files and logs
STOP_MARKER = f"{JOB_DIR}/stop_requested"  # `launch tpu stop` leaves it: a stop, not a maintenance SIGTERM


def _where(s: Slice) -> list[str]:
    return [f"--project={s.project}", f"--zone={s.zone}"]


def create(s: Slice) -> list[str]:
    capacity = {"spot": ["--spot"], "reserved": ["--reserved"], "on-demand": []}[s.provisioning]
    return ["gcloud", "compute", "tpus", "queued-resources", "create", s.name, f"--node-id={s.name}",
            *_where(s), f"--accelerator-type={s.accelerator_type}", f"--runtime-version={s.runtime_version}",
            *capacity]


def describe(s: Slice) -> list[str]:
    return ["gcloud", "compute", "tpus", "queued-resources", "describe", s.name, *_where(s),
            "--format=value(state.state)"]


def delete(s: Slice) -> list[str]:
    # --force deletes the node with the queued resource.
    return ["gcloud", "compute", "tpus", "queued-resources", "delete", s.name, *_where(s), "--force", "--quiet"]


def ssh(s: Slice, command: str, worker: str = "all") -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", s.name, *_where(s), f"--worker={worker}",
            f"--command={command}"]


def scp(s: Slice, local: str, remote: str) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "scp", local, f"{s.name}:{remote}", *_where(s), "--worker=all"]


def storage_ls(url: str) -> list[str]:
    return ["gcloud", "storage", "ls", url]


def storage_cat(url: str) -> list[str]:
    return ["gcloud", "storage", "cat", url]


def setup_command(spec: TpuSpec, stamp: str) -> str:
    """Bash for every worker: install the requirements, this package and the setup files once per ``stamp``
    (a hash of the setup section), so re-running setup on a set-up worker does nothing."""
    st = spec.setup
    q = shlex.quote
    marker = f"{JOB_DIR}/.setup-{stamp}"
    steps = [f"mkdir -p {JOB_DIR}/files", f"if [ -f {marker} ]; then echo setup: up to date; exit 0; fi",
             f"python3 -m pip install --user -U {' '.join(q(r) for r in st.pip)}"]
    if st.package.startswith("gs://"):
        wheel = f"{JOB_DIR}/{st.package.rsplit('/', 1)[1]}"
        steps += [f"gcloud storage cp {q(st.package)} {wheel}", f"python3 -m pip install --user -U {wheel}"]
    else:
        steps.append(f"python3 -m pip install --user -U {q(st.package)}")
    if st.files:
        steps.append(f"gcloud storage cp {' '.join(q(f) for f in st.files)} {JOB_DIR}/files/")
    steps.append(f"touch {marker}")
    return "set -e; " + "; ".join(steps)


def train_command(spec: TpuSpec, *, resume: bool, attempt: int) -> str:
    """Bash for every worker: ``scaling-jax train`` into the bucket (see :func:`logged_job`)."""
    q = shlex.quote
    overrides = " ".join(q(o) for o in spec.job.overrides)
    train = (f"rm -f {STOP_MARKER}; ~/.local/bin/scaling-jax train {JOB_DIR}/config.yaml {overrides} "
             f"--out {q(spec.out)}" + (" --resume" if resume else ""))
    return logged_job(spec, train, attempt)


def sweep_worker_command(spec: TpuSpec, root: str, lease_timeout: float, attempt: int) -> str:
    """Bash for every worker of a sweep's slice: ``scaling-jax sweep worker``, which claims and
    trains the sweep's runs in ``root`` one after another (see :func:`logged_job`); the slice is
    ``spec.tpu``. A worker left from an earlier ``sweep run`` on this slice is stopped first."""
    q = shlex.quote
    log = f"{q(spec.logs)}/attempt-{attempt}/$(hostname).log"
    worker = (f"~/.local/bin/scaling-jax sweep worker --root {q(root)} --slice {q(spec.tpu.name)} "
              f"--lease-timeout {lease_timeout:g} --log {log} --pid-file {JOB_DIR}/worker.pid")
    return logged_job(spec, worker, attempt)


def logged_job(spec: TpuSpec, command: str, attempt: int) -> str:
    """Bash running ``command`` on a worker, its output in a log file (created first, then
    followed by ``tail``, so no pipe breaks under it when a preemption's SIGTERM reaches every
    process; ``tail`` would give up on a file the background job had not opened yet) copied to
    ``{logs}/attempt-N/HOST.log`` every minute and at the end; exits with the command's status."""
    q = shlex.quote
    log_dir = f"{spec.logs}/attempt-{attempt}"
    if log_dir.startswith("gs://"):
        prepare, copy = "", "gcloud storage cp -q"
    else:
        prepare, copy = f"mkdir -p {q(log_dir)} && ", "cp"
    sync = f"{copy} {JOB_DIR}/train.log {q(log_dir)}/$(hostname).log"
    return (f"cd {JOB_DIR} && {prepare}"
            f"{{ (while sleep 60; do {sync}; done) >/dev/null 2>&1 & SYNC=$!; "
            f": > {JOB_DIR}/train.log; {command} > {JOB_DIR}/train.log 2>&1 & PID=$!; "
            f"tail -n +1 -f --pid=$PID {JOB_DIR}/train.log & wait $PID; RC=$?; "
            f"kill $SYNC 2>/dev/null; {sync}; exit $RC; }}")


def stop_command() -> str:
    """SIGTERM to the training processes: they checkpoint and exit (``train`` handles it), after
    leaving ``STOP_MARKER`` so the launcher tells this stop from a SIGTERM nobody asked for. The
    pattern matches the Python process only (its command line starts with the interpreter),
    not the shells around it, whose death would cut train's output pipe before it checkpoints."""
    return f"touch {STOP_MARKER}; pkill -TERM -f '^[^ ]*python[^ ]* [^ ]*scaling-jax train' || true"
