"""Model config: the OpenLM decoder-only transformer's sizes and numerics, from YAML.

The presets ship inside the package (``scaling_jax/model/presets/<name>.yaml``, read with
``importlib.resources`` so an installed wheel has them), one ``ModelConfig`` per file; the six
paper sizes carry the testbed's names (``d=96_l=8_h=4``, ..., ``open_lm_7b``) and ``tiny_d*``
are CPU sizes.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from scaling_jax.config import POSITIVE, POSITIVE_INT, ConfigError, check_ranges, load_yaml

PRESETS = importlib.resources.files("scaling_jax.model") / "presets"

DTYPES = ("float32", "bfloat16")
REMAT = ("none", "block", "dots", "auto")
ATTENTION = ("auto", "xla", "cudnn")
POSITIONAL = ("rotary", "head_rotary")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Sizes and numerics of one transformer.

    dtype is the compute dtype; param_dtype the master-weight dtype. remat: 'none' keeps
    every activation, 'block' saves only each block's input, 'dots' also saves matmul
    outputs, 'auto' takes the measured per-size table's choice for the micro-batch per
    device (``model/remat.py``). scan_layers stacks the blocks' parameters on a leading 'layers' axis and runs
    them with ``jax.lax.scan`` (compile time flat in depth). positional: 'rotary' rotates q and k
    by their position (OpenLM's ``rotary``); 'head_rotary' follows OpenLM's older ``head_rotary``
    layout, which rotates by the head index instead, only to run checkpoints trained with it.
    attention: 'auto' is cuDNN's fused kernel where it applies (an Ampere-or-newer GPU, 16-bit
    inputs, a supported head width: ``transformer.attention_impl``) and XLA's otherwise; 'xla' or
    'cudnn' force one. ffn_multiple: the SwiGLU width is 8d/3 rounded up to a multiple of it.
    OpenLM's 256 is coarse for tiny models (every width up to 96 gets 256, then 512 at 97), so a
    ladder of them may take a smaller one; OpenLM checkpoints need 256.
    """

    name: str
    d_model: int
    n_layers: int
    n_heads: int
    vocab_size: int
    seq_len: int
    qk_norm: bool = True
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat: str = "none"
    scan_layers: bool = True
    attention: str = "auto"
    positional: str = "rotary"
    ffn_multiple: int = 256

    def __post_init__(self):
        check_ranges(self, d_model=POSITIVE_INT, n_layers=POSITIVE_INT, n_heads=POSITIVE_INT,
                     vocab_size=POSITIVE_INT, seq_len=POSITIVE_INT, norm_eps=POSITIVE, rope_theta=POSITIVE,
                     ffn_multiple=POSITIVE_INT)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"n_heads: {self.n_heads} does not divide d_model={self.d_model}"
            )
        if self.head_dim % 2:
            raise ValueError(
                f"n_heads: head dim d_model/n_heads={self.head_dim} must be even for rotary"
            )
        for field, allowed in (("dtype", DTYPES), ("param_dtype", DTYPES),
                               ("remat", REMAT), ("attention", ATTENTION),
                               ("positional", POSITIONAL)):
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field}: {getattr(self, field)!r} is not one of {list(allowed)}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def ffn_dim(self) -> int:
        """SwiGLU width f = m·ceil(floor(8d/3)/m) with m = ffn_multiple (OpenLM's rule at m = 256)."""
        m = self.ffn_multiple
        return m * math.ceil((8 * self.d_model // 3) / m)


def available_models() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.name.removesuffix(".yaml") for p in PRESETS.iterdir() if p.name.endswith(".yaml"))


def load_model_config(name_or_path: str, overrides: Sequence[str] | Mapping[str, Any] = ()) -> ModelConfig:
    """Load a config by preset name (``presets/<name>.yaml``) or by YAML path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        return load_yaml(ModelConfig, path, overrides)
    preset = PRESETS / f"{name_or_path}.yaml"
    if not preset.is_file():
        raise ConfigError(f"unknown model {name_or_path!r}; available: {', '.join(available_models())}")
    with importlib.resources.as_file(preset) as preset_path:
        return load_yaml(ModelConfig, preset_path, overrides)
