"""A micro sweep spec on the smoke config (tiny models, a few dozen steps) written into tmp folders."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "configs" / "train" / "cpu_smoke.yaml"
FAST = {"logging.progress": False, "logging.tensorboard": False, "checkpoint.every": 20,
        "checkpoint.async_save": False, "data.val_sequences": 32, "budget.global_batch": 16,
        "optimizer.warmup": 5}


def micro_spec(tmp: Path, **changes) -> dict:
    """Six runs (two sizes × M = 2, 4 and 8); Eq. 4 on five, the larger size at M = 8 held out."""
    spec = {
        "name": "micro", "base": str(SMOKE), "out": str(tmp / "runs"), "run_name": "{model}-{M:g}",
        "set": dict(FAST),
        "grid": [{"models": ["tiny_d16", "tiny_d32"], "multipliers": [2, 4, 8]}],
        "recipe": {"name": "micro", "val_set": "synthetic", "metric": "err_46",
                   "loss_fit": [{"model": "tiny_d16", "M": M} for M in (2, 4, 8)]
                   + [{"model": "tiny_d32", "M": M} for M in (2, 4)],
                   "targets": [{"model": "tiny_d32", "M": "max"}]},
    }
    spec.update(changes)
    return spec


def write_spec(tmp: Path, spec: dict, name: str = "sweep.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def micro(tmp_path) -> Path:
    return write_spec(tmp_path, micro_spec(tmp_path))
