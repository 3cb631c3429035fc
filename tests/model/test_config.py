import dataclasses

import pytest

from scaling_jax.config import ConfigError
from scaling_jax.model.config import ModelConfig, available_models, load_model_config

PAPER = ["d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8", "open_lm_1b", "open_lm_7b"]


def test_every_shipped_config_loads_and_names_itself():
    names = available_models()
    assert set(PAPER) <= set(names)
    assert [n for n in names if n.startswith("tiny_")]
    for name in names:
        assert load_model_config(name).name == name


def test_paper_sizes_match_their_names():
    cfg = load_model_config("d=576_l=24_h=8")
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.vocab_size, cfg.seq_len) == (576, 24, 8, 50432, 2048)
    big = load_model_config("open_lm_7b")
    assert (big.d_model, big.n_layers, big.n_heads) == (4096, 32, 32)


@pytest.mark.parametrize("d, f", [(96, 256), (512, 1536), (576, 1536), (1024, 2816), (2048, 5632), (4096, 11008)])
def test_ffn_dim_follows_openlm(d, f):
    assert dataclasses.replace(load_model_config("tiny_d16"), d_model=d, n_heads=2).ffn_dim == f


@pytest.mark.parametrize("d, f", [(32, 96), (48, 128), (96, 256), (128, 352), (208, 560)])
def test_a_finer_ffn_multiple_keeps_the_ffn_near_8d_over_3(d, f):
    cfg = load_model_config("tiny_d16", [f"d_model={d}", "n_heads=2", "ffn_multiple=16"])
    assert cfg.ffn_dim == f and f - 16 < 8 * d / 3 <= f


@pytest.mark.parametrize(
    "override, match",
    [
        ("n_heads=3", r"n_heads: 3 does not divide d_model=16"),
        ("d_model=0", r"d_model: must be an integer >= 1, got 0"),
        ("n_layers=-2", r"n_layers: must be an integer >= 1"),
        ("n_heads=0", r"n_heads: must be an integer >= 1"),
        ("vocab_size=0", r"vocab_size: must be an integer >= 1"),
        ("seq_len=-1", r"seq_len: must be an integer >= 1"),
        ("norm_eps=0", r"norm_eps: must be a finite number > 0"),
        ("ffn_multiple=0", r"ffn_multiple: must be an integer >= 1"),
        ("rope_theta=.inf", r"rope_theta: must be a finite number > 0, got inf"),
        ("rope_theta=.nan", r"rope_theta: must be a finite number > 0, got nan"),
        ("norm_eps=1e-6", None),
        ("dtype=float16", r"dtype: 'float16' is not one of"),
        ("remat=all", r"remat: 'all' is not one of"),
        ("n_heads=16", r"n_heads: head dim d_model/n_heads=1 must be even"),
        ("widht=3", r"unknown key\(s\) \['widht'\]"),
    ],
)
def test_bad_config_names_the_field(override, match):
    if match is None:  # exponent-form numbers parse (YAML 1.2 floats)
        assert load_model_config("tiny_d16", [override]).norm_eps == 1e-6
        return
    with pytest.raises(ConfigError, match=match) as err:
        load_model_config("tiny_d16", [override])
    assert "tiny_d16.yaml" in str(err.value)


def test_direct_construction_validates():
    with pytest.raises(ValueError, match="n_heads"):
        ModelConfig(name="x", d_model=10, n_layers=1, n_heads=4, vocab_size=8, seq_len=4)


def test_unknown_name_lists_available():
    with pytest.raises(ConfigError, match=r"unknown model 'nope'; available: .*open_lm_1b"):
        load_model_config("nope")


def test_yaml_path_loads(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nd_model: 8\nn_layers: 1\nn_heads: 2\nvocab_size: 11\nseq_len: 4\n")
    assert load_model_config(str(path)).ffn_dim == 256
