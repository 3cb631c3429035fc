"""SLURM multi-node training: the batch script and the ``sbatch`` command that submits it.

One task per node, each with all of its node's GPUs; ``train`` joins ``jax.distributed`` from
the SLURM environment. The job is ``--requeue``-able: a requeued job (preemption) or one
stopped by the time limit's SIGTERM (``--signal=TERM@120``: train checkpoints and exits 0)
runs the script again, which resumes when ``--out`` holds a checkpoint. The script requeues
itself after such a stop until ``record.json`` exists, at most ``max_requeues`` times.
``--out`` may be a shared folder or ``gs://`` (listed with ``gcloud storage ls``).
"""

from __future__ import annotations

import dataclasses
import re
import shlex

from scaling_jax.config import FieldError

SCRIPT = """\
#!/usr/bin/env bash
# {title}
{directives}
set -euo pipefail
{arguments}
MAX_REQUEUES={max_requeues}
list() {{ case "$1" in gs://*) gcloud storage ls "$1" 2>/dev/null ;; *) ls "$1" 2>/dev/null ;; esac; }}
# Resume from committed checkpoints only (scaling_jax.train.checkpoint): a local step folder N
# (orbax renames it into place when complete), on gs:// one holding N/commit_success.txt.
case "$OUT" in gs://*) CKPTS="$OUT/checkpoints/*/commit_success.txt" ;; *) CKPTS="$OUT/checkpoints/" ;; esac
RESUME=
if list "$CKPTS" | grep -Eq '(^|/)[0-9]+(/commit_success\\.txt)?$'; then RESUME=--resume; fi
echo "scaling-jax: job ${{SLURM_JOB_ID:-}} restart ${{SLURM_RESTART_COUNT:-0}}" \
  "on ${{SLURM_JOB_NUM_NODES:-1}} node(s) ${{RESUME:+(resuming)}}"
RC=0
srun --kill-on-bad-exit=1 scaling-jax train "$CONFIG" "$@" --out "$OUT" $RESUME || RC=$?
if [ "$RC" -eq 0 ] && ! list "$OUT/record.json" >/dev/null; then
  if [ "${{SLURM_RESTART_COUNT:-0}}" -lt "$MAX_REQUEUES" ]; then
    echo "scaling-jax: stopped before the end (time limit); requeueing"
    scontrol requeue "$SLURM_JOB_ID"
  else
    echo "scaling-jax: stopped before the end after $MAX_REQUEUES requeues; resubmit to continue" >&2
    RC=1
  fi
fi
exit "$RC"
"""

USAGE_ARGUMENTS = """\
if [ $# -lt 2 ]; then
  echo "usage: sbatch [--nodes=N] $0 CONFIG OUT [key=value ...]" >&2
  exit 2
fi
CONFIG=$1 OUT=$2
shift 2"""


@dataclasses.dataclass(frozen=True)
class SlurmJob:
    """Resources and limits of one multi-node training job (sbatch options)."""

    nodes: int = 1
    gpus_per_node: int = 8
    cpus_per_task: int = 16
    time: str = ""           # sbatch --time, e.g. 24:00:00; empty: the partition's default
    partition: str = ""
    account: str = ""
    name: str = "scaling-jax"
    max_requeues: int = 20

    def __post_init__(self):
        for field in ("nodes", "gpus_per_node", "cpus_per_task"):
            if getattr(self, field) < 1:
                raise FieldError(field, f"must be >= 1, got {getattr(self, field)}")
        if self.max_requeues < 0:
            raise FieldError("max_requeues", f"must be >= 0, got {self.max_requeues}")
        if self.time and not re.fullmatch(r"(\d+-)?\d+(:\d\d){0,2}", self.time):
            raise FieldError("time", f"{self.time!r} is not a SLURM time (e.g. 24:00:00 or 2-00:00:00)")

    def directives(self) -> list[str]:
        opts = [f"--job-name={self.name}", f"--nodes={self.nodes}", "--ntasks-per-node=1",
                f"--gpus-per-node={self.gpus_per_node}", f"--cpus-per-task={self.cpus_per_task}",
                "--requeue", "--signal=TERM@120", "--open-mode=append", "--output=%x-%j.out"]
        opts += [f"--time={self.time}"] * bool(self.time) + [f"--partition={self.partition}"] * bool(self.partition)
        return opts + [f"--account={self.account}"] * bool(self.account)


def script(job: SlurmJob, config: str | None = None, out: str | None = None, overrides=()) -> str:
    """The batch script; without ``config`` and ``out`` it takes them as arguments
    (``sbatch SCRIPT CONFIG OUT [key=value ...]``, as launch/slurm.sbatch does)."""
    if config is None or out is None:
        arguments, title = USAGE_ARGUMENTS, "sbatch [--nodes=N] launch/slurm.sbatch CONFIG OUT [key=value ...]"
    else:
        arguments = (f"CONFIG={shlex.quote(config)} OUT={shlex.quote(out)}\n"
                     f"set -- {' '.join(shlex.quote(o) for o in overrides)}")
        title = f"scaling-jax launch slurm {config} --out {out}"
    return SCRIPT.format(title=title, directives="\n".join(f"#SBATCH {d}" for d in job.directives()),
                         arguments=arguments, max_requeues=job.max_requeues)


def sbatch_argv() -> list[str]:
    """Submit the script on stdin (its #SBATCH lines carry every option); print the job id."""
    return ["sbatch", "--parsable"]
