"""The SLURM runner: the sweep's unfinished runs as one job array, one array task per run.

Each submission writes its own run list, ``runs-<hash>.txt`` (line i+1 for task i; named by its
content, so no later submission can change the tasks of an array already queued), and its own
script ``sweep-<hash>.sbatch``. Each task runs ``sweep run-one`` on its folder, which claims the
run (``sweep.claim``: a run that another live task or runner holds is left alone, exit 75),
skips a finished run and resumes one with checkpoints, so a requeued task (``--requeue``: a
preempted node) or a resubmitted array picks up where it stopped. A task with no line in its
list fails rather than run an empty folder. ``--signal=B:TERM@120`` sends SIGTERM to the batch
shell, which execs ``run-one``, 120 s before the time limit, and the run checkpoints
(without ``B:`` SLURM signals only job steps, and run-one is not one).

A WSD trunk's branches are one more array per trunk, submitted with the trunk's, that depends on
the trunk's task (``--dependency=afterok:JOB_TASK``, ``--kill-on-invalid-dep=yes``): its branches
start together, in parallel, once the trunk has committed every decay start. The largest branch
needs the trunk's end anyway, so this is the sweep's critical path; no task holds a GPU waiting.
A trunk stopped by its time limit exits 143 (not ok): SLURM cancels its branches' array, and the
next ``sweep run`` submits the trunk (resumed) and its branches again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shlex
import subprocess
import sys
from pathlib import Path

from scaling_jax import atomic, paths
from scaling_jax.errors import UserError
from scaling_jax.sweep.spec import Run

SIGNAL = "B:TERM@120"


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
    partition: str = ""
    time: str = "24:00:00"
    gpus_per_task: int = 1
    cpus_per_task: int = 8
    max_parallel: int = 0  # 0: no cap on tasks running at once
    account: str = ""
    python: str = sys.executable


def array_script(root: Path, run_list: Path, n: int, opts: SlurmOptions, dependency: str = "") -> str:
    """The job-array batch script for the ``n`` runs listed in ``run_list`` (after ``dependency``, a
    job or array task id, has succeeded)."""
    cap = f"%{opts.max_parallel}" if opts.max_parallel else ""
    lines = ["#!/bin/bash",
             f"#SBATCH --job-name=sweep-{root.name}",
             f"#SBATCH --array=0-{n - 1}{cap}",
             "#SBATCH --ntasks=1",
             f"#SBATCH --cpus-per-task={opts.cpus_per_task}",
             f"#SBATCH --time={opts.time}",
             f"#SBATCH --output={root}/logs/%A_%a.log",
             "#SBATCH --requeue",
             f"#SBATCH --signal={SIGNAL}"]
    if opts.gpus_per_task:
        lines.append(f"#SBATCH --gpus-per-task={opts.gpus_per_task}")
    if opts.partition:
        lines.append(f"#SBATCH --partition={opts.partition}")
    if opts.account:
        lines.append(f"#SBATCH --account={opts.account}")
    if dependency:
        lines += [f"#SBATCH --dependency=afterok:{dependency}", "#SBATCH --kill-on-invalid-dep=yes"]
    lines += ["set -euo pipefail",
              f"LIST={shlex.quote(str(run_list))}",
              'RUN=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$LIST")',
              'if [ -z "$RUN" ]; then echo "task $SLURM_ARRAY_TASK_ID: no line for it in $LIST" >&2; exit 2; fi',
              'echo "task $SLURM_ARRAY_TASK_ID: $RUN on $(hostname)"',
              f'exec {shlex.quote(opts.python)} -m scaling_jax.cli sweep run-one "$RUN"', ""]
    return "\n".join(lines)


def script_root(out: str) -> Path:
    """The local folder for the script, run list and logs (SLURM needs a shared filesystem for
    them): the sweep's root, or for a ``gs://`` root ``.sweeps/<root's name>`` here."""
    return Path(".sweeps") / paths.name(out) if paths.is_gcs(out) else Path(out)


def _named_by_content(folder: Path, stem: str, suffix: str, text: str) -> Path:
    """Write ``text`` to ``folder/stem-<hash of text>suffix``: a name never holds other content."""
    return atomic.write_text(folder / f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}{suffix}", text)


def submit(root: Path, runs: list[Run], opts: SlurmOptions, dry_run: bool = False,
           dependency: str = "") -> tuple[Path, str]:
    """Write this submission's run list and array script for ``runs``; unless ``dry_run``,
    ``sbatch`` it. Returns the script path and the job id (empty on a dry run)."""
    if not runs:
        raise UserError(f"{root}: every run is done; nothing to submit")
    (root / "logs").mkdir(parents=True, exist_ok=True)
    run_list = _named_by_content(root.resolve(), "runs", ".txt", "".join(
        f"{r.out if paths.is_gcs(r.out) else Path(r.out).resolve()}\n" for r in runs))
    script = _named_by_content(root, "sweep", ".sbatch",
                               array_script(root.resolve(), run_list, len(runs), opts, dependency))
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
    atomic.write_json(root / "slurm_job.json", {"job_id": job, "script": str(script), "run_list": str(run_list),
                                                "runs": len(runs)})
    return script, job


def submit_trees(root: Path, todo: list[Run], opts: SlurmOptions, dry_run: bool = False) -> list[tuple[Path, str, int]]:
    """Submit ``todo``: one array of its runs and trunks, then one array per trunk of its branches,
    after the trunk's task (no dependency when the trunk is done already). Returns (script, job
    id, tasks) per submission; a dry run's job ids are empty and its dependencies name ``JOB``."""
    first = [r for r in todo if r.kind != "branch"]
    out = [(*submit(root, first, opts, dry_run), len(first))] if first or not todo else []
    job = (out[0][1] or "JOB") if out else ""
    task = {r.out: i for i, r in enumerate(first)}
    for trunk in dict.fromkeys(r.trunk for r in todo if r.kind == "branch"):
        bs = [r for r in todo if r.kind == "branch" and r.trunk == trunk]
        dep = f"{job}_{task[trunk]}" if trunk in task else ""
        out.append((*submit(root, bs, opts, dry_run, dependency=dep), len(bs)))
    return out
