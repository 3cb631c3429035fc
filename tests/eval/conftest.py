import copy
import os
from pathlib import Path

import pytest
import yaml

# A 40-step run of a 2-layer d=16 model on a small synthetic language, checkpoints every 10 steps,
# scoring the synthetic suite (50 examples a task) at the end.
RUN = {
    "name": "eval-tiny",
    "model": {"name": "tiny_d16", "set": {"seq_len": 32, "vocab_size": 64}},
    "data": {"corpus": {"kind": "synthetic",
                        "synthetic": {"vocab_size": 64, "n_sources": 8, "successors": 4}},
             "val_sequences": 16},
    "optimizer": {"warmup": 2, "lr": 1e-2},
    "budget": {"tokens": 40 * 8 * 32, "global_batch": 8},
    "checkpoint": {"every": 10, "keep": 5},
    "logging": {"every": 10, "val_every": 10, "progress": False, "tensorboard": False},
    "eval": {"tasks": "synthetic", "limit": 50},
}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One tiny run (its checkpoints 10 and 40 are the two models of different quality)."""
    from scaling_jax.train.config import load_train_config
    from scaling_jax.train.loop import train

    root = tmp_path_factory.mktemp("eval_run")
    cfg_path = root / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(copy.deepcopy(RUN)))
    train(load_train_config(cfg_path), root / "run")
    # notebooks/03_downstream_eval.ipynb reuses this run when its test runs after these in the
    # same process (it trains its own, the same config, when run alone)
    os.environ["SCALING_JAX_EVAL_RUN"] = str(root / "run")
    return root / "run"


def random_transformer(seed: int = 0, **overrides):
    """A tiny transformer with random weights, drawn with NumPy (compiling the truncated-normal
    initialiser costs ~20 s on a busy 2-core machine): (LanguageModel, model)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from scaling_jax.model.config import load_model_config
    from scaling_jax.model.transformer import Transformer
    from scaling_jax.train.lm import transformer_lm

    cfg = load_model_config("tiny_d16", overrides)
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
    rng = np.random.default_rng(seed)
    params = jax.tree.map(lambda x: jnp.asarray(rng.normal(0, 0.3, x.shape), x.dtype), abstract)
    return transformer_lm(graphdef, params, cfg), nnx.merge(graphdef, params)
