"""The SLURM runner: the sweep's unfinished runs as one job array, one array task per run.

``runs.txt`` lists the run folders (line i+1 for task i); each task runs ``sweep run-one`` on
its folder, which skips a finished run and resumes one with checkpoints, so a requeued task
(``--requeue``: a preempted node) or a resubmitted array picks up where it stopped. SIGTERM
reaches the run ``--signal`` seconds before the time limit, and the run checkpoints.
"""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
from pathlib import Path

from scaling_jax import atomic, paths
from scaling_jax.errors import UserError
from scaling_jax.sweep.spec import Run

SCRIPT = "sweep.sbatch"
RUN_LIST = "runs.txt"


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    partition: str = ""
    time: str = "24:00:00"
    gpus_per_task: int = 1
    cpus_per_task: int = 8
    max_parallel: int = 0  # 0: no cap on tasks running at once
    account: str = ""
    python: str = sys.executable


def array_script(root: Path, n: int, opts: SlurmOptions) -> str:
    """The job-array batch script for ``n`` runs listed in ``root/runs.txt``."""
    cap = f"%{opts.max_parallel}" if opts.max_parallel else ""
    lines = ["#!/bin/bash",
             f"#SBATCH --job-name=sweep-{root.name}",
             f"#SBATCH --array=0-{n - 1}{cap}",
             "#SBATCH --ntasks=1",
             f"#SBATCH --cpus-per-task={opts.cpus_per_task}",
             f"#SBATCH --time={opts.time}",
             f"#SBATCH --output={root}/logs/%A_%a.log",
             "#SBATCH --requeue",
             "#SBATCH --signal=TERM@120"]
    if opts.gpus_per_task:
        lines.append(f"#SBATCH --gpus-per-task={opts.gpus_per_task}")
    if opts.partition:
        lines.append(f"#SBATCH --partition={opts.partition}")
    if opts.account:
        lines.append(f"#SBATCH --account={opts.account}")
    lines += ["set -euo pipefail",
              f'RUN=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str(root / RUN_LIST))})',
              'echo "task $SLURM_ARRAY_TASK_ID: $RUN on $(hostname)"',
              f'exec {shlex.quote(opts.python)} -m scaling_jax.cli sweep run-one "$RUN"', ""]
    return "\n".join(lines)


def script_root(out: str) -> Path:
    """The local folder for the script, run list and logs (SLURM needs a shared filesystem for
    them): the sweep's root, or for a ``gs://`` root ``.sweeps/<root's name>`` here."""
    return Path(".sweeps") / paths.name(out) if paths.is_gcs(out) else Path(out)


def submit(root: Path, runs: list[Run], opts: SlurmOptions, dry_run: bool = False) -> tuple[Path, str]:
    """Write ``runs.txt`` and the array script for ``runs``; unless ``dry_run``, ``sbatch`` it.
    Returns the script path and the job id (empty on a dry run)."""
    if not runs:
        raise UserError(f"{root}: every run is done; nothing to submit")
    (root / "logs").mkdir(parents=True, exist_ok=True)
    atomic.write_text(root / RUN_LIST, "".join(f"{r.out if paths.is_gcs(r.out) else Path(r.out).resolve()}\n"
                                               for r in runs))
    script = atomic.write_text(root / SCRIPT, array_script(root.resolve(), len(runs), opts))
    if dry_run:
        return script, ""
    try:
        done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    except FileNotFoundError as e:
        raise UserError("sbatch: not found on PATH; run on a SLURM login node (or --dry-run to write the script)") \
            from e
    if done.returncode != 0:
        raise UserError(f"sbatch {script}: exit {done.returncode}: {done.stderr.strip()}")
    job = done.stdout.strip().split(";")[0]
    atomic.write_json(root / "slurm_job.json", {"job_id": job, "script": str(script), "runs": len(runs)})
    return script, job
