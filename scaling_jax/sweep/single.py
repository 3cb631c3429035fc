"""One run of a sweep, with the bookkeeping every runner shares: resume when the folder holds
checkpoints, mark the folder running while training, failed (with the error) or done after.

``scaling-jax sweep run-one RUN_DIR`` calls :func:`run_one` (a SLURM array task runs one per
index); ``scaling-jax sweep worker`` calls :func:`serve`, which the local runner keeps one of per
slot and feeds runs one after another.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from scaling_jax import paths
from scaling_jax.errors import UserError
from scaling_jax.sweep import claim, state

_stop = None  # a ``sweep worker``'s SIGTERM flag (train.stop.StopFlag), handed to each run's train()
BUSY = 75  # run_one's exit code when another live process holds the run (EX_TEMPFAIL)


def run_one(run_dir: str | Path, **lease) -> int:
    """Train the run in ``run_dir`` (from its ``train.yaml``) under an exclusive claim (see
    ``sweep.claim``; ``lease``: ``claim.acquire``'s keywords, a TPU worker's lease and slice);
    returns the exit code to report, BUSY if another live process holds it."""
    run_dir = str(run_dir)
    if not run_dir.strip() or not paths.exists(paths.join(run_dir, state.CONFIG_FILE)):
        raise UserError(f"sweep run-one: {run_dir!r} is not a run folder of a sweep (no {state.CONFIG_FILE}); "
                        "an empty name means the array task found no line in its run list")
    # A claim taken over while this process trains (its beats did not get through): the run folder
    # is the new owner's, so exit at once, writing nothing more (no checkpoint, log or state).
    lease.setdefault("on_lost", _lost_claim)
    try:
        held = claim.acquire(run_dir, **lease)
    except claim.Busy as e:
        print(f"{run_dir}: {e}; left alone", flush=True)
        return BUSY
    try:
        return _train_claimed(run_dir)  # the record is checked under the claim: a run done meanwhile is skipped
    finally:
        held.release()


def _lost_claim() -> None:
    claim.exit_lost(f"sweep run (pid {os.getpid()})")


def _train_claimed(run_dir: str) -> int:
    from scaling_jax.train import branches
    from scaling_jax.train.config import load_train_config
    from scaling_jax.train.loop import train

    if paths.exists(paths.join(run_dir, "record.json")) or branches.complete(run_dir):
        print(f"{run_dir}: done already (record.json, or a trunk's trunk.json at its end); nothing to train")
        return 0
    steps = state.checkpoint_steps(run_dir)
    t0 = time.time()
    state.mark(run_dir, "running", started=t0, resume_from=steps[-1] if steps else None)
    try:
        cfg = load_train_config(paths.join(run_dir, state.CONFIG_FILE))
        outcome = train(cfg, run_dir, resume=bool(steps), stop=_stop)  # a SIGTERM before train() still stops it
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


def serve() -> int:
    """Train the runs named on stdin one after another in this process, each line
    ``RUN_DIR<TAB>LOG_FILE``, each run's output appended to its log; answer every line with the
    run's exit code on the original stdout. The local runner keeps one such worker per slot, so
    process start, imports and loaded programs are paid once per worker, not once per run.

    Only exit codes reach the original stdout (anything else written to fd 1 between runs goes to
    stderr). SIGTERM while no run trains answers the next line with 143 (stopped) untrained."""
    global _stop
    from scaling_jax.train.stop import StopFlag

    _stop = StopFlag()  # one flag for the worker's life: a SIGTERM during a run's setup reaches its train()
    from scaling_jax.eval.score import release_scorers

    ctl = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    for line in sys.stdin:
        run_dir, log = line.rstrip("\n").split("\t")
        if _stop.set:
            rc = 143
        else:
            rc = _logged(log, run_one, run_dir)
            release_scorers()  # a finished run's parameters must not stay on the device
        ctl.write(f"{rc}\n")
    return 0


def _logged(log: str, fn, *args) -> int:
    """``fn(*args)`` with file descriptors 1 and 2 (Python's and XLA's output) appended to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with open(log, "a") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            try:
                return fn(*args)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
