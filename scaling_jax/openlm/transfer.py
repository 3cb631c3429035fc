"""The two directions end to end: an OpenLM ``.pt`` file into a run folder of ours, and a run or
checkpoint of ours into an OpenLM ``.pt`` file with the OpenLM model config that builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from scaling_jax import atomic
from scaling_jax.config import parse_overrides
from scaling_jax.errors import UserError
from scaling_jax.model.config import load_model_config
from scaling_jax.openlm.convert import from_flat, from_state, to_flat, to_state
from scaling_jax.openlm.io import read_state_dict, write_run, write_state_dict
from scaling_jax.train.config import EvalSection, ModelSection, TrainConfig, model_config

OPENLM_NORM_EPS, OPENLM_ROPE_THETA = 1e-5, 10000.0  # fixed in open_lm/model.py (Params, RotaryEmbedding)


def import_openlm(checkpoint: str | Path, model: str, out: str | Path, overrides: Sequence[str] = (),
                  tokenizer: str | None = None, unsafe_pickle: bool = False) -> Path:
    """Convert the OpenLM checkpoint into the run folder ``out`` for model preset (or YAML)
    ``model`` with field ``overrides`` (e.g. ``positional=head_rotary``); ``tokenizer`` (a
    tokenizer.json) becomes the run's ``eval.tokenizer``. Returns ``out``."""
    out = atomic.check_out_dir(out)
    if (out / "config.json").exists() or (out / "checkpoints").exists():
        raise UserError(f"--out {out}: holds a run already; choose a new folder")
    fields = parse_overrides(list(overrides))
    model_cfg = load_model_config(model, fields)
    tok = ""
    if tokenizer:
        from scaling_jax.data.tokenizer import load_tokenizer

        tok = str(Path(tokenizer).resolve())
        n = load_tokenizer(tok).vocab_size
        if n > model_cfg.vocab_size:
            raise UserError(f"--tokenizer {tokenizer}: {n} ids do not fit model "
                            f"{model_cfg.name!r}'s {model_cfg.vocab_size} embedding rows")
    params = to_state(to_flat(read_state_dict(checkpoint, unsafe_pickle), model_cfg, str(checkpoint)), model_cfg)
    cfg = TrainConfig(name=f"openlm-{Path(checkpoint).stem}", model=ModelSection(name=model, set=fields),
                      eval=EvalSection(tokenizer=tok))
    return write_run(out, cfg, model_cfg, params, {"openlm_checkpoint": str(Path(checkpoint).resolve())})


def openlm_model_config(cfg) -> dict:
    """The OpenLM model config (``open_lm/model_configs/*.json`` fields) that builds ``cfg``'s model."""
    return {"hidden_dim": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "seq_len": cfg.seq_len,
            "vocab_size": cfg.vocab_size, "post_embed_norm": False, "weight_tying": False,
            "model_norm": "gain_only_lp_layer_norm", "qk_norm": cfg.qk_norm,
            "positional_embedding_type": cfg.positional, "ffn_type": "swiglu"}


def export_openlm(run: str | Path, out: str | Path) -> tuple[Path, Path]:
    """Write the run's (latest or named) checkpoint as the OpenLM checkpoint ``out`` and its model
    config beside it (``out`` with suffix .json). Returns both paths."""
    from scaling_jax.train.lm import load_run

    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out}: is a folder; name the .pt file to write")
    loaded = load_run(run)
    cfg = model_config(loaded.config)
    if cfg.norm_eps != OPENLM_NORM_EPS or cfg.rope_theta != OPENLM_ROPE_THETA:
        raise UserError(f"{run}: model has norm_eps={cfg.norm_eps:g}, rope_theta={cfg.rope_theta:g}; OpenLM "
                        f"fixes them at {OPENLM_NORM_EPS:g} and {OPENLM_ROPE_THETA:g}, so its logits would differ")
    if cfg.ffn_multiple != 256:
        raise UserError(f"{run}: model has ffn_multiple={cfg.ffn_multiple}; OpenLM sizes its FFN to a multiple "
                        f"of 256, so it could not build this model's {cfg.ffn_dim}-wide FFN")
    sd = from_flat(from_state(loaded.lm.params), cfg)
    write_state_dict(out, sd, name=loaded.lm.name, step=loaded.step)
    cfg_path = atomic.write_json(out.with_suffix(".json"), openlm_model_config(cfg))
    return out, cfg_path
