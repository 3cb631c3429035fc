"""OpenLM ``.pt`` files (through PyTorch, imported only here and only when called) and our run
folders: an import is written as a run folder (config.json + checkpoints/0 holding the parameters
and step 0) that ``scaling-jax eval``, ``train --init-from`` and ``train.lm.load_run`` read."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from scaling_jax import atomic
from scaling_jax.config import to_dict
from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.model.config import ModelConfig
from scaling_jax.openlm.names import strip_wrappers
from scaling_jax.train.checkpoint import Checkpoints, param_shapes
from scaling_jax.train.config import TrainConfig


def require_torch():
    """The ``torch`` module, or a UserError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise UserError("reading and writing OpenLM .pt checkpoints needs PyTorch: "
                        "pip install 'scaling_jax[openlm]'") from None
    return torch


def read_state_dict(path: str | Path, unsafe_pickle: bool = False) -> dict[str, np.ndarray]:
    """The float32 tensors of an OpenLM checkpoint: a dict holding ``state_dict`` (a training
    checkpoint) or a bare state dict, names without FSDP/DDP/compile wrapper prefixes. Files are
    read as tensors only unless ``unsafe_pickle`` (which runs the file's pickled code)."""
    torch = require_torch()
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not unsafe_pickle, mmap=True)
    except pickle.UnpicklingError as e:
        raise UserError(f"{path}: holds objects other than tensors ({str(e).splitlines()[0]}); if you "
                        "trust the file, pass --unsafe-pickle") from None
    except (RuntimeError, EOFError, OSError) as e:
        raise UserError(f"{path}: not a PyTorch checkpoint: {str(e).splitlines()[0]}") from None
    sd = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(sd, Mapping) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path}: holds no state dict (a dict of tensors, or a dict with one under 'state_dict')")
    out: dict[str, np.ndarray] = {}
    for name, t in sd.items():
        key = strip_wrappers(name)
        if key in out:
            raise UserError(f"{path}: tensors {name} and another both map to {key}")
        out[key] = t.detach().to(torch.float32).numpy()
    return out


def write_state_dict(path: str | Path, sd: Mapping[str, np.ndarray], *, name: str, step: int) -> Path:
    """Write ``sd`` as an OpenLM training checkpoint (``{'epoch', 'step', 'name', 'state_dict'}``,
    which open_lm's load_model reads), atomically."""
    torch = require_torch()
    obj = {"epoch": 0, "step": int(step), "name": name,
           "state_dict": {k: torch.from_numpy(np.require(v, requirements=["C", "W"])) for k, v in sd.items()}}
    return atomic.write_atomic(path, lambda f: torch.save(obj, f), mode="wb")


def write_run(out: str | Path, cfg: TrainConfig, model_cfg: ModelConfig, params, source: dict[str, Any]) -> Path:
    """A run folder ``out`` holding ``params`` (the model's nnx.State) as checkpoint step 0 and
    ``cfg`` as config.json; ``source`` (where the weights came from) goes in the checkpoint's note."""
    out = Path(out)
    shapes = param_shapes(params)
    meta = {"model": dataclasses.asdict(model_cfg), "param_shapes": shapes, "config": to_dict(cfg),
            "step": 0, "state_keys": ["params", "step"], "source": source}
    ckpts = Checkpoints(out / "checkpoints", keep=1, async_save=False)
    try:
        ckpts.save(0, {"params": params, "step": np.int32(0)}, None, meta)
    finally:
        ckpts.close()
    atomic.write_json(out / "config.json", to_dict(cfg))
    return out
