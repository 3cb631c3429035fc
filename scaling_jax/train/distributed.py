"""Multi-host start-up: ``jax.distributed.initialize`` from flags or the environment.

TPU VMs and SLURM jobs set up the environment that ``jax.distributed.initialize()``
detects on its own; elsewhere pass the coordinator address, process count and id. Only
process 0 writes records, metrics and logs.
"""

from __future__ import annotations

import os

import jax

from scaling_jax.errors import UserError


def _cluster_detected() -> bool:
    if os.environ.get("SLURM_NTASKS", "1") not in ("", "1"):
        return True
    hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
    return "," in hosts or bool(os.environ.get("JAX_COORDINATOR_ADDRESS")) or bool(
        os.environ.get("MEGASCALE_COORDINATOR_ADDRESS"))


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
        jax.distributed.initialize()


def is_writer() -> bool:
    return jax.process_index() == 0
