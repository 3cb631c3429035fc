"""``sweep run`` does not rewrite the train.yaml of a run already started under other training
fields (it would resume under them): it refuses, naming the run and fields, and writes nothing.
Runs not started, or changes that do not alter training, are written as before."""

import pytest
import yaml

from scaling_jax.cli import main
from scaling_jax.sweep.folders import write_run_configs
from scaling_jax.sweep.spec import expand, load_spec
from scaling_jax.sweep.state import read_state
from scaling_jax.train import loop
from tests.train.faults import term_at

from .conftest import micro_spec, write_spec


def _spec(tmp_path, **set_):
    spec = micro_spec(tmp_path, grid=[{"models": ["tiny_d16"], "multipliers": [2, 4]}])
    spec.pop("recipe")
    spec["set"].update(set_)
    return write_spec(tmp_path, spec)


def _stop_at_2(run):
    """Train ``run`` for real until SIGTERM at step 2: stopped, with a checkpoint at 2."""
    real = loop.global_batch
    loop.global_batch = term_at(2, real)
    try:
        assert loop.train(run.config, run.out).step == 2
    finally:
        loop.global_batch = real


def test_sweep_run_keeps_a_started_runs_config_and_names_it(tmp_path, capsys):
    path = _spec(tmp_path)
    started, fresh = runs = expand(load_spec(path))
    write_run_configs(load_spec(path), runs)
    _stop_at_2(started)
    assert (read_state(started.out).state, read_state(started.out).resume_step) == ("pending", 2)
    kept = (tmp_path / "runs" / started.name / "train.yaml").read_text()

    path = _spec(tmp_path, **{"optimizer.lr": 0.01, "optimizer.warmup": 1})
    with pytest.raises(ValueError, match=rf"changes the training fields of runs already started .*: "
                                         rf"{started.name} \(.*\): optimizer\.lr: 0\.003 → 0\.01; "
                                         r"optimizer\.warmup: 5 → 1\. Restore"):
        write_run_configs(load_spec(path), expand(load_spec(path)))
    assert main(["sweep", "run", str(path), "--jobs", "1"]) == 2
    assert f"{started.name} (" in capsys.readouterr().err
    assert (tmp_path / "runs" / started.name / "train.yaml").read_text() == kept
    assert yaml.safe_load((tmp_path / "runs" / fresh.name / "train.yaml").read_text())["optimizer"]["lr"] == 0.003

    # fields that do not change what is trained may change; a run not started takes any change
    path = _spec(tmp_path, **{"logging.every": 2, "checkpoint.every": 4})
    write_run_configs(load_spec(path), expand(load_spec(path)))
    assert yaml.safe_load((tmp_path / "runs" / started.name / "train.yaml").read_text())["logging"]["every"] == 2
    fresh_only = [r for r in expand(load_spec(_spec(tmp_path, **{"optimizer.lr": 0.01}))) if r.name == fresh.name]
    write_run_configs(load_spec(path), fresh_only)
    assert yaml.safe_load((tmp_path / "runs" / fresh.name / "train.yaml").read_text())["optimizer"]["lr"] == 0.01
