"""A sweep's runs tracked by W&B: grouped by the sweep's name, typed by their role; a 3-run sweep
trained by the local runner leaves one offline W&B run per run folder whose history holds the
losses its metrics.jsonl holds."""

import json

import pytest

from scaling_jax.cli import main
from scaling_jax.sweep.spec import expand, load_spec
from tests.train.test_wandb import as_history, metrics_rows, wandb_history
from tests.wandb_files import offline_runs

from .conftest import FAST, micro_spec, write_spec

OFFLINE = {**FAST, "logging.wandb.mode": "offline", "logging.wandb.project": "ladder"}


def test_group_is_the_sweep_and_job_type_the_role_unless_set(tmp_path):
    runs = expand(load_spec(write_spec(tmp_path, micro_spec(tmp_path, set=OFFLINE))))
    assert {(r.config.logging.wandb.group, r.config.logging.wandb.job_type, r.role) for r in runs} == \
        {("micro", "fit", "fit"), ("micro", "target", "target")}
    mine = {**OFFLINE, "logging.wandb.group": "mine", "logging.wandb.job_type": "probe"}
    runs = expand(load_spec(write_spec(tmp_path, micro_spec(tmp_path, set=mine))))
    assert {(r.config.logging.wandb.group, r.config.logging.wandb.job_type) for r in runs} == {("mine", "probe")}
    runs = expand(load_spec(write_spec(tmp_path, micro_spec(tmp_path))))  # W&B off: configs untouched
    assert {(r.config.logging.wandb.group, r.config.logging.wandb.job_type) for r in runs} == {("", "")}


@pytest.mark.slow
def test_a_three_run_sweep_writes_one_offline_wandb_run_per_run(tmp_path, capsys):
    spec = micro_spec(tmp_path, name="trio", set=OFFLINE, recipe=None,
                      grid=[{"models": ["tiny_d16"], "multipliers": [1, 2, 3]}])
    assert main(["sweep", "run", str(write_spec(tmp_path, spec)), "--jobs", "1"]) == 0
    folders = sorted(d for d in (tmp_path / "runs").iterdir() if d.is_dir())
    assert len(folders) == 3
    ids = set()
    for d in folders:
        (run,) = offline_runs(d)
        assert (run.group, run.job_type, run.project, run.name) == ("trio", "other", "ladder", d.name)
        assert run.id == json.loads((d / "wandb.json").read_text())["id"]
        ids.add(run.id)
        rows = metrics_rows(d)
        assert any(r["kind"] == "train" for r in rows) and as_history(rows) <= wandb_history([run])
        assert run.summary["D"] == json.loads((d / "record.json").read_text())["D"]
    assert len(ids) == 3
