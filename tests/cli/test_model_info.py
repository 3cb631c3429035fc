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


def test_model_info_prints_the_steps_flops_per_device(capsys):
    """tiny_d32 at 2 layers, f 96, V 64, seq 16: 178,176 FLOPs per token exact (hand count in
    tests/model/test_flops.py), 6·30,880 by 6N; a step of 8 sequences over 4 devices."""
    args = ["-o", "n_layers=2", "-o", "ffn_multiple=16", "-o", "vocab_size=64", "-o", "seq_len=16"]
    assert main(["model-info", "tiny_d32", *args, "--batch", "8", "--devices", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["flops_per_token_exact"] == 178_176 and out["flops_per_token"] == 6 * 30_880
    assert out["step_flops_per_device_exact"] == 8 * 16 * 178_176 / 4
    assert out["step_flops_per_device"] == 8 * 16 * 6 * 30_880 / 4
    assert main(["model-info", "tiny_d32", "--batch", "8"]) == 0
    assert "step_flops_per_device_exact" in capsys.readouterr().out
    assert main(["model-info", "tiny_d32", "--devices", "0"]) == 2
    assert "--devices: must be a positive integer, got 0" in capsys.readouterr().err
