"""Our transformer behind the evaluator's ``LanguageModel``: from a live training state or from a
checkpoint on disk (a run folder, its ``checkpoints/`` folder, or one step's folder)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from flax import nnx

from scaling_jax import paths
from scaling_jax.config import from_dict
from scaling_jax.data.tokenizer import load_tokenizer
from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.eval.score import LanguageModel
from scaling_jax.eval.tokenizers import ByteTokenizer
from scaling_jax.model.config import ModelConfig
from scaling_jax.model.sharding import batch_sharding, make_mesh
from scaling_jax.train.checkpoint import Checkpoints, param_shapes
from scaling_jax.train.config import TrainConfig, load_train_config, model_config
from scaling_jax.train.optimizer import optimizer
from scaling_jax.train.step import setup

_APPLY: dict = {}


def _apply(graphdef):
    """One apply function per model graph, so the evaluator's compiled programs are reused by
    every checkpoint of the same shape."""
    if graphdef not in _APPLY:
        def apply(p, tokens_BxL):
            return nnx.merge(graphdef, p)(tokens_BxL)
        _APPLY[graphdef] = apply
    return _APPLY[graphdef]


def transformer_lm(graphdef, params, model_cfg: ModelConfig, mesh=None, name: str = "") -> LanguageModel:
    return LanguageModel(apply=_apply(graphdef), params=params, max_seq_len=model_cfg.seq_len,
                         vocab_size=model_cfg.vocab_size,
                         mesh=mesh, batch_sharding=batch_sharding(mesh) if mesh is not None else None,
                         name=name or model_cfg.name)


def run_tokenizer(cfg: TrainConfig, vocab_size: int, override: str | None = None):
    """The text tokenizer: ``override`` (a tokenizer.json), else the run config's ``eval.tokenizer``
    (an imported OpenLM model names GPT-NeoX's there), else the run's corpus's; a run on the
    synthetic language has none and reads text as bytes (``ByteTokenizer``)."""
    if override or cfg.eval.tokenizer:
        return load_tokenizer(override or cfg.eval.tokenizer)
    if cfg.data.corpus.kind == "synthetic":
        return ByteTokenizer(vocab_size)
    from scaling_jax.data.store import read_metadata

    return load_tokenizer(read_metadata(cfg.data.corpus.path)["tokenizer"])


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    lm: LanguageModel
    config: TrainConfig
    step: int
    run_dir: str | None


def _locate(path: str) -> tuple[str, int | None, str | None]:
    """(checkpoints folder, step or None for the latest, run folder or None); local or ``gs://``."""
    path = str(path).rstrip("/") or "/"
    if not paths.exists(path):
        raise InputNotFound(f"{path}: no such run folder or checkpoint")
    parent, name = paths.parent(path), paths.name(path)
    if paths.is_dir(paths.join(path, "checkpoints")):
        return paths.join(path, "checkpoints"), None, path
    if name.isdigit() and paths.is_dir(path):
        run = paths.parent(parent) if paths.name(parent) == "checkpoints" else None
        return parent, int(name), run
    if any(n.isdigit() for n in paths.listdir(path)):
        return path, None, parent if name == "checkpoints" else None
    raise UserError(f"{path}: neither a run folder (with checkpoints/) nor a checkpoint folder")


def _latest(ckpts: Checkpoints, step: int | None, ckpt_dir: str) -> int:
    step = ckpts.latest_step() if step is None else step
    if step is None:
        raise UserError(f"{ckpt_dir}: no checkpoint")
    return step


def restore_params(path: str | Path, s, shapes: dict) -> tuple[object, int]:
    """The parameters of the checkpoint at ``path`` (a run folder, its checkpoints/ or one step's
    folder; local or ``gs://``) laid out as the train setup ``s`` lays them out, and its step; a
    checkpoint of another model shape is an error naming the first differing parameter."""
    ckpt_dir, step, _ = _locate(path)
    ckpts = Checkpoints(ckpt_dir, keep=1 << 30, async_save=False)
    try:
        step = _latest(ckpts, step, ckpt_dir)
        state, _ = ckpts.restore(step, s.abstract_state, s.state_shardings, None, shapes)
    finally:
        ckpts.close()
    return state["params"], step


def load_run(path: str | Path, mesh=None) -> LoadedRun:
    """The parameters of a saved run, laid out on ``mesh`` (default: the run's mesh config)."""
    ckpt_dir, step, run_dir = _locate(path)
    ckpts = Checkpoints(ckpt_dir, keep=1 << 30, async_save=False)
    try:
        step = _latest(ckpts, step, ckpt_dir)
        cfg_file = paths.join(run_dir, "config.json") if run_dir is not None else None
        if cfg_file is not None and paths.exists(cfg_file):
            cfg = load_train_config(cfg_file)
        else:
            meta_cfg = ckpts.read_meta(step).get("config")
            if not meta_cfg:
                raise UserError(f"{paths.join(ckpt_dir, str(step))}: checkpoint carries no run config")
            cfg = from_dict(TrainConfig, meta_cfg, where=f"{paths.join(ckpt_dir, str(step))}: config")
    finally:
        ckpts.close()
    model_cfg = model_config(cfg)
    mesh = mesh or make_mesh(cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
    # The optimizer only shapes the state being restored; its schedule length does not matter.
    s = setup(model_cfg, optimizer(cfg.optimizer, cfg.optimizer.warmup + 1), mesh, seed=cfg.seed)
    params, step = restore_params(paths.join(ckpt_dir, str(step)), s, param_shapes(s.abstract_state["params"]))
    name = paths.name(run_dir) if run_dir is not None else model_cfg.name
    return LoadedRun(transformer_lm(s.graphdef, params, model_cfg, mesh, name), cfg, step, run_dir)
