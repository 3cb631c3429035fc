import json

from scaling_jax.cli import main


def test_model_info_json(capsys):
    assert main(["model-info", "d=96_l=8_h=4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"] == 10_569_312 and out["params_no_embed"] == 5_727_840
    assert out["trainable"] == out["params"] + 2 * 8 * 96
    assert out["flops_per_token"] == 6 * out["params"]
    assert out["param_bytes"] == 4 * out["trainable"] and out["optimizer_bytes"] == 8 * out["trainable"]


def test_model_info_text_and_override(capsys):
    assert main(["model-info", "tiny_d16", "-o", "vocab_size=100"]) == 0
    assert "params_no_embed" in capsys.readouterr().out


def test_model_info_bad_config_is_one_line_error(capsys):
    assert main(["model-info", "tiny_d16", "-o", "n_heads=3"]) == 2
    assert "n_heads: 3 does not divide d_model=16" in capsys.readouterr().err
    assert main(["model-info", "no_such_model"]) == 2
    assert "available:" in capsys.readouterr().err
