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


def test_export_refuses_an_ffn_that_openlm_cannot_size(monkeypatch, tmp_path):
    """OpenLM rounds its FFN to 256: a model with a finer ``ffn_multiple`` is refused before anything is written."""
    import types

    from scaling_jax.errors import UserError
    from scaling_jax.openlm.transfer import export_openlm
    from scaling_jax.train import lm
    from scaling_jax.train.config import ModelSection, TrainConfig

    cfg = TrainConfig(name="fine", model=ModelSection(name="tiny_d32", set={"ffn_multiple": 16}))
    monkeypatch.setattr(lm, "load_run", lambda run: types.SimpleNamespace(config=cfg))
    with pytest.raises(UserError, match="ffn_multiple=16.*96-wide FFN"):
        export_openlm(tmp_path / "run", tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()
