"""One run of a sweep, with the bookkeeping every runner shares: resume when the folder holds
checkpoints, mark the folder running while training, failed (with the error) or done after.

``scaling-jax sweep run-one RUN_DIR`` calls :func:`run_one`; the local runner starts one such
process per run and a SLURM array task runs one per index.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from scaling_jax import paths
from scaling_jax.sweep import state


def run_one(run_dir: str | Path) -> int:
    """Train the run in ``run_dir`` (from its ``train.yaml``); returns the exit code to report."""
    from scaling_jax.config import from_dict, yaml_load
    from scaling_jax.train.config import TrainConfig
    from scaling_jax.train.loop import train

    run_dir = str(run_dir)
    if paths.exists(paths.join(run_dir, "record.json")):
        print(f"{run_dir}: done already (record.json); nothing to train")
        return 0
    steps = state.checkpoint_steps(run_dir)
    t0 = time.time()
    state.mark(run_dir, "running", started=t0, resume_from=steps[-1] if steps else None)
    try:
        cfg_file = paths.join(run_dir, state.CONFIG_FILE)
        cfg = from_dict(TrainConfig, yaml_load(paths.read_text(cfg_file)), where=cfg_file)
        outcome = train(cfg, run_dir, resume=bool(steps))
    except BaseException as e:  # a failure of any kind is this run's verdict, not the sweep's
        traceback.print_exc()
        state.mark(run_dir, "failed", message=f"{type(e).__name__}: {e}"[:2000], seconds=time.time() - t0)
        return 130 if isinstance(e, KeyboardInterrupt) else 1
    if outcome.stopped_early:
        state.mark(run_dir, "stopped", step=outcome.step, seconds=time.time() - t0)
        print(f"{run_dir}: stopped at step {outcome.step}; the next sweep run resumes it")
        return 143
    state.mark(run_dir, "done", step=outcome.step, seconds=time.time() - t0,
               resumed_from=steps[-1] if steps else None)
    print(f"{run_dir}: done in {time.time() - t0:.1f} s ({outcome.step} steps"
          f"{f', resumed from {steps[-1]}' if steps else ''})")
    sys.stdout.flush()
    return 0
