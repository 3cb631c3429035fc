from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

TINY = {
    "name": "tiny",
    "model": {"name": "tiny_d16", "set": {"seq_len": 16, "vocab_size": 64}},
    "data": {"corpus": {"kind": "synthetic",
                        "synthetic": {"vocab_size": 64, "n_sources": 8, "successors": 4}},
             "val_sequences": 16},
    "optimizer": {"warmup": 2},
    "budget": {"tokens": 2560, "global_batch": 8},
    "checkpoint": {"every": 10, "keep": 3},
    "logging": {"every": 1, "progress": False, "tensorboard": False},
}


@pytest.fixture
def tiny_yaml(tmp_path) -> Path:
    """A 20-step run of a 2-layer d=16 model on a small synthetic language."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path
