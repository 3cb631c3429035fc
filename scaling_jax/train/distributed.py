"""Multi-host start-up: ``jax.distributed.initialize`` from flags or the environment.

TPU VMs and SLURM jobs set up the environment that ``jax.distributed.initialize()``
detects on its own; elsewhere pass the coordinator address, process count and id. Only
process 0 writes records, metrics and logs.

One catch: under SLURM, JAX's auto-detection gives each process one GPU (``SLURM_LOCALID``),
which suits one task per GPU but leaves 7 of 8 GPUs idle with one task per node (the layout
``launch/slurm.sbatch`` uses); with one task per node every allocated GPU is passed instead.
"""

from __future__ import annotations

import os
import re

import jax

from scaling_jax.errors import UserError


def _cluster_detected() -> bool:
    if os.environ.get("SLURM_NTASKS", "1") not in ("", "1"):
        return True
    hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return "," in hosts or bool(os.environ.get("JAX_COORDINATOR_ADDRESS")) or bool(
        os.environ.get("MEGASCALE_COORDINATOR_ADDRESS"))


def slurm_node_gpus(env=os.environ) -> list[int] | None:
    """Local device ids for a SLURM step with one task on every node: all the node's GPUs
    (``SLURM_GPUS_ON_NODE``, else ``CUDA_VISIBLE_DEVICES``); None otherwise (JAX's default)."""
    per_node = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE", "")
    counts = re.findall(r"(\d+)(?:\(x\d+\))?", per_node)
    if not counts or any(c != "1" for c in counts):
        return None
    if env.get("SLURM_GPUS_ON_NODE", "").isdigit():
        n = int(env["SLURM_GPUS_ON_NODE"])
    else:
        n = len([d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()])
    return list(range(n)) if n > 0 else None


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Join the job: explicit flags win; else auto-detect a cluster; else stay single-process."""
    given = [coordinator is not None, num_processes is not None, process_id is not None]
    if any(given):
        if not all(given):
            raise UserError("--coordinator, --num-processes and --process-id go together")
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    elif _cluster_detected():
        jax.distributed.initialize(local_device_ids=slurm_node_gpus() if "SLURM_JOB_ID" in os.environ else None)


def is_writer() -> bool:
    return jax.process_index() == 0
