"""Without PyTorch the OpenLM commands say how to install it."""

import sys

import pytest

from scaling_jax.cli import main


def test_missing_torch_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    (tmp_path / "x.pt").write_bytes(b"")
    assert main(["import-openlm", str(tmp_path / "x.pt"), "--model", "tiny_d32", "--out", str(tmp_path / "o")]) == 2
    assert "pip install 'scaling_jax[openlm]'" in capsys.readouterr().err
    from scaling_jax.errors import UserError
    from scaling_jax.openlm.io import require_torch

    with pytest.raises(UserError, match="needs PyTorch"):
        require_torch()
