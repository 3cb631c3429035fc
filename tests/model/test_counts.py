import json

import pytest

from scaling_jax.model import counts
from scaling_jax.model.config import load_model_config

PAPER = ["d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8", "open_lm_1b", "open_lm_7b"]


def _testbed_counts(testbed_dir, name):
    """The testbed's params / params_no_embed for a model, read from its result files."""
    seen = set()
    for path in (testbed_dir / "models").glob(f"*-{name}-*.json"):
        hp = json.loads(path.read_text())["hyperparameters"]
        seen.add((hp["params"], hp["params_no_embed"]))
    assert len(seen) == 1, (name, seen)
    return seen.pop()


@pytest.mark.parametrize("name", PAPER)
def test_paper_counts_equal_testbed(name, testbed_dir):
    cfg = load_model_config(name)
    params, no_embed = _testbed_counts(testbed_dir, name)
    assert counts.paper_params(cfg) == params
    assert counts.params_no_embed(cfg) == no_embed


@pytest.mark.parametrize("name, overrides", [(n, []) for n in PAPER + ["tiny_d16", "tiny_d256"]]
                         + [("tiny_d32", ["ffn_multiple=16"])])
def test_counts_follow_the_closed_form(name, overrides):
    cfg = load_model_config(name, overrides)
    V, d, L, f = cfg.vocab_size, cfg.d_model, cfg.n_layers, cfg.ffn_dim
    N = 2 * V * d + L * (4 * d * d + 3 * d * f + 2 * d) + d
    assert counts.paper_params(cfg) == N
    assert counts.trainable_params(cfg) == N + 2 * L * d  # qk-norm gains on q and k
    assert counts.flops_per_token(cfg) == 6 * N
    gains = L * 2 * d + d  # the norms' gains: no matmul
    assert counts.flops_per_token(cfg, exact=True) == 6 * (N - V * d - gains) + 6 * L * d * cfg.seq_len


def test_trainable_without_qk_norm_is_paper_count():
    cfg = load_model_config("tiny_d32", ["qk_norm=false"])
    assert counts.trainable_params(cfg) == counts.paper_params(cfg)


def test_memory_bytes():
    cfg = load_model_config("d=96_l=8_h=4")
    n = counts.trainable_params(cfg)
    assert counts.memory_bytes(cfg) == {"param_bytes": 4 * n, "optimizer_bytes": 8 * n}
    bf16 = load_model_config("d=96_l=8_h=4", ["param_dtype=bfloat16"])
    assert counts.memory_bytes(bf16)["param_bytes"] == 2 * n
