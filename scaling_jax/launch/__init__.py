"""Launching training on machines this process does not run on: Cloud TPU VMs through
``gcloud`` queued resources, and SLURM clusters through ``sbatch``. Every command is built
as an argv list, so ``--dry-run`` prints exactly what would run and tests can fake it."""
