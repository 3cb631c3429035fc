"""Checkpoints with orbax: parameters, optimizer state, step, the data iterator's state and a
JSON note of the model's shapes and the run config (the seed: the run's only randomness
besides the data order). Saves are async and atomic; the last ``keep`` are kept.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any, Iterable

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp

from scaling_jax import paths
from scaling_jax.errors import UserError


def param_shapes(abstract_params) -> dict[str, list[int]]:
    return {jax.tree_util.keystr(p): list(np.shape(x))
            for p, x in jax.tree_util.tree_leaves_with_path(abstract_params)}


def check_store(directory: str | Path) -> None:
    """Orbax reaches ``gs://`` through etils epath, which needs gcsfs (or TensorFlow): without
    either, say so before training rather than at the first save."""
    if paths.is_gcs(directory) and not any(importlib.util.find_spec(m) for m in ("gcsfs", "tensorflow")):
        raise UserError(f"{directory}: orbax checkpoints on gs:// need gcsfs; pip install gcsfs "
                        "(or scaling_jax[gcs])")


# Orbax finishes a step's folder last: on gs:// by writing this object into ``N/`` (the folder
# fills up object by object before it), locally by renaming ``N.orbax-checkpoint-tmp`` to ``N``
# (the file is written there too, just before the rename). Only such steps are checkpoints;
# a folder left by a death mid-save is not. The one rule for every reader: this module's
# Python callers, ``launch tpu`` (``committed_listing``) and the SLURM script (the same test in bash).
COMMIT_FILE = "commit_success.txt"


def committed_listing(ckpt_dir: str) -> str:
    """What to list (``ls`` / ``gcloud storage ls``) to see the committed steps of ``ckpt_dir``:
    the step folders locally, their commit objects on gs://. Read it with :func:`steps_in_listing`."""
    return f"{ckpt_dir.rstrip('/')}/*/{COMMIT_FILE}" if paths.is_gcs(ckpt_dir) else ckpt_dir


def steps_in_listing(names: Iterable[str], *, remote: bool) -> list[int]:
    """The committed steps, ascending, among listed names: ``N`` (a local step folder) or, for a
    gs:// folder, ``.../N/commit_success.txt``; a temp folder or bare ``N/`` does not count."""
    pattern = rf"(?:^|/)(\d+)/{re.escape(COMMIT_FILE)}" if remote else r"(?:^|/)(\d+)/?"
    return sorted({int(m.group(1)) for n in names if (m := re.fullmatch(rf".*?{pattern}", n.strip()))})


def committed_steps(ckpt_dir: str | Path) -> list[int]:
    """The steps in ``ckpt_dir`` (local or gs://) that orbax finished writing, ascending; [] if none."""
    ckpt_dir = str(ckpt_dir)
    if paths.is_gcs(ckpt_dir):
        return steps_in_listing(paths.find(ckpt_dir, COMMIT_FILE), remote=True)
    return steps_in_listing([n for n in paths.listdir(ckpt_dir) if paths.is_dir(paths.join(ckpt_dir, n))],
                            remote=False)


class Checkpoints:
    """One run's ``checkpoints/`` folder, a local folder or ``gs://`` prefix. ``cleanup`` (the
    run's trainer only, never a reader beside a live run) deletes step folders a death mid-save
    left unfinished, so a step saved again starts from an empty folder. ``keep_steps`` are kept
    besides the last ``keep`` (a WSD trunk's branch points, which its branches start from)."""

    def __init__(self, directory: str | Path, *, keep: int, async_save: bool = True, cleanup: bool = False,
                 keep_steps: Iterable[int] = ()):
        self.directory = str(directory) if paths.is_gcs(directory) else Path(directory).resolve()
        if paths.is_gcs(directory):
            paths.use_emulator()  # STORAGE_EMULATOR_HOST, if set, reaches orbax's TensorStore too
        keep_steps = sorted(keep_steps)
        policy = ocp.checkpoint_managers.AnyPreservationPolicy([
            ocp.checkpoint_managers.LatestN(keep), ocp.checkpoint_managers.CustomSteps(keep_steps)])
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=None if keep_steps else keep,
                                                 preservation_policy=policy if keep_steps else None, create=True,
                                                 enable_async_checkpointing=async_save,
                                                 cleanup_tmp_directories=cleanup),
            item_names=("state", "data", "meta"),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def read_meta(self, step: int) -> dict:
        return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def save(self, step: int, state, data_iter, meta: dict[str, Any]) -> None:
        """Save ``state`` and ``meta`` (and ``data_iter``'s position unless None). A state that is
        not a full training state (parameters only, as an import writes) lists its keys in
        ``meta['state_keys']`` so ``restore`` asks for those alone."""
        items = {"state": ocp.args.StandardSave(state), "meta": ocp.args.JsonSave(meta)}
        if data_iter is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iter)
        self.manager.save(step, args=ocp.args.Composite(**items), force=True)

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def restore(self, step: int, abstract_state, state_shardings, data_iter, shapes: dict) -> tuple[Any, dict]:
        """Restore into ``data_iter`` (None: leave the data state) and return (state, meta), the state
        holding the keys the checkpoint saved (``meta['state_keys']``, else all); a
        checkpoint of another model shape is an error naming its folder and the first differing
        parameter."""
        where = paths.join(self.directory, str(step))
        meta = self.read_meta(step)
        saved = meta.get("param_shapes", {})
        if saved != shapes:
            diff = sorted(set(saved) ^ set(shapes)) or [k for k in shapes if saved[k] != shapes[k]]
            k = diff[0]
            raise UserError(
                f"{where}: checkpoint is of another model shape (saved model "
                f"{meta.get('model', {}).get('name')!r}); parameter {k}: saved "
                f"{saved.get(k, 'absent')}, this run {shapes.get(k, 'absent')}. "
                "Use the model config it was trained with, or a new --out.")
        keys = meta.get("state_keys") or list(abstract_state)
        target = {k: jax.tree.map(lambda s, a: jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), a), state_shardings[k], abstract_state[k])
            for k in keys}
        items = {"state": ocp.args.StandardRestore(target)}
        if data_iter is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iter)
        out = self.manager.restore(step, args=ocp.args.Composite(**items))
        return out["state"], meta

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()

