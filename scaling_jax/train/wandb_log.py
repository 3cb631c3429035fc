"""Weights & Biases tracking of a training run (``logging.wandb`` in the train config).

With ``mode: online`` or ``offline`` the writing process starts one W&B run: its config is the
train config; every row the run writes to ``metrics.jsonl`` also goes to the W&B history under the
names TensorBoard uses (``kind/key``: ``train/loss``, ``val/<set>/loss``, ``eval/<task>``,
``eval/err_46``) with the row's ``step`` as the charts' x-axis; at the end the run record is its
summary. The W&B run id is kept in the run folder (``wandb.json``), so ``--resume`` (or a sweep
resuming a run) continues the same W&B run. Its files go under the run folder's ``wandb/`` (a
local ``--out``; for ``gs://``, W&B's default, ``$WANDB_DIR`` or ``./wandb``); offline runs are
uploaded later with ``wandb sync``.

W&B's own step counter only grows: the rows a resumed run redoes (those a stopped attempt logged
past its last checkpoint) are logged again at their steps, so W&B may chart such a step twice;
``metrics.jsonl`` keeps exactly one row per step and kind.

``mode: disabled`` (the default) imports nothing and writes nothing; wandb is imported here only,
only when enabled (``pip install 'scaling_jax[wandb]'``).
"""

from __future__ import annotations

import json
import math
import secrets
import string
import sys
from typing import Any

from scaling_jax import paths
from scaling_jax.errors import UserError

ID_FILE = "wandb.json"
STEP = "step"


def _wandb():
    try:
        import wandb
    except ImportError:
        raise UserError("logging.wandb.mode: W&B tracking needs wandb: pip install 'scaling_jax[wandb]' "
                        "(or set logging.wandb.mode: disabled)") from None
    return wandb


def check(section) -> None:
    """Before the run writes anything: wandb is installed when ``section`` turns tracking on."""
    if section.mode != "disabled":
        _wandb()


def run_id(out: str) -> str:
    """The W&B run id of the run folder ``out``: the one ``wandb.json`` keeps, else a new one (8
    characters of a-z0-9, as W&B makes them), written there before W&B starts."""
    f = paths.join(out, ID_FILE)
    if paths.exists(f):
        return json.loads(paths.read_text(f))["id"]
    rid = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    paths.write_json(f, {"id": rid})
    return rid


def history_row(step: int, kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """A metrics.jsonl row as a W&B history row: ``kind/key`` for every finite number, and the step."""
    row = {f"{kind}/{k}": v for k, v in values.items()
           if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    return {STEP: step, **row}


class Mirror:
    """A ``MetricsLog`` whose rows also go to a W&B run; everything else is the log's."""

    def __init__(self, log, run):
        self.log, self.run = log, run

    def __getattr__(self, name):
        return getattr(self.log, name)

    def write(self, step: int, kind: str, values: dict) -> None:
        self.log.write(step, kind, values)
        self.run.log(history_row(step, kind, values))

    def close(self) -> None:
        """Close the log; a run ended by an exception ends its W&B run as failed (a finished or
        stopped one ends in ``finish``)."""
        self.log.close()
        if sys.exc_info()[0] is not None and self.run is not None:
            self.run.finish(exit_code=1)
            self.run = None


def start(section, out: str, log, *, config: dict, name: str, enabled: bool):
    """``log`` itself when W&B is disabled (or this process does not write), else ``log`` mirrored
    to a started (or continued) W&B run."""
    if not enabled or section.mode == "disabled":
        return log
    wandb = _wandb()
    local = None if paths.is_gcs(out) else str(out)
    rid = run_id(str(out))
    try:
        run = wandb.init(id=rid, resume="allow", name=name, config=config, mode=section.mode,
                         project=section.project or None, entity=section.entity or None,
                         group=section.group or None, job_type=section.job_type or None,
                         tags=list(section.tags) or None, dir=local,
                         settings=wandb.Settings(console="off"))  # metrics only: our stdout stays ours
    except wandb.errors.Error as e:  # e.g. online without an API key
        log.close()
        raise UserError(f"logging.wandb (mode {section.mode}): W&B did not start: {e}") from None
    run.define_metric(STEP)
    run.define_metric("*", step_metric=STEP)
    return Mirror(log, run)


def finish(log, record=None, *, stopped: bool = False) -> None:
    """End the W&B run of a mirrored ``log`` (else nothing): the run record as its summary, or,
    for a run stopped to be resumed, marked preempting and ended with SIGTERM's exit code (143), so
    W&B shows it preempted, not finished."""
    run = getattr(log, "run", None) if isinstance(log, Mirror) else None
    if run is None:
        return
    if record is not None:
        run.summary.update(record.to_dict())
    if stopped:
        run.mark_preempting()
    run.finish(exit_code=143 if stopped else 0)
    log.run = None
