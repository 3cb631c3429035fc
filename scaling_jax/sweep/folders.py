"""The sweep's output root (a local folder or ``gs://bucket/prefix``): one folder per run holding
the ``train.yaml`` its runner trains from, and ``sweep.json`` at the root listing every run."""

from __future__ import annotations

import yaml

from scaling_jax import atomic, paths
from scaling_jax.config import from_dict, to_dict, yaml_load
from scaling_jax.errors import UserError
from scaling_jax.sweep.spec import Run, SweepSpec, config_dict
from scaling_jax.sweep.state import CONFIG_FILE, checkpoint_steps
from scaling_jax.train import branches
from scaling_jax.train.config import TrainConfig, config_changes, model_config


def write_run_configs(spec: SweepSpec, runs: list[Run]) -> str:
    """Write each run's ``train.yaml`` and the root's ``sweep.json`` (local or ``gs://``); returns the root.
    A spec that changes the training fields of a run already started refuses, naming the runs and
    fields, before anything is written: rewriting its train.yaml would resume it under them."""
    if not paths.is_gcs(spec.out):
        atomic.check_out_dir(spec.out, flag=f"{spec.source}: out")
        for r in runs:
            atomic.check_out_dir(r.out, flag="run folder")
    changed = [f"{r.name} ({r.out}): {'; '.join(c)}" for r in runs if (c := started_run_changes(r))]
    if changed:
        raise UserError(f"{spec.source}: changes the training fields of runs already started (their "
                        f"{CONFIG_FILE} kept, nothing run): " + " | ".join(changed) + ". Restore those values "
                        "in the spec, delete a run's folder to train it again from the start, or continue one under "
                        "the new values by hand (scaling-jax train NEW.yaml --out RUN_FOLDER --resume "
                        "--allow-config-change)")
    trunks = {r.out: trunk_of(r) for r in runs if r.kind == "trunk"}
    for r in runs:
        paths.write_text(paths.join(r.out, CONFIG_FILE), yaml.safe_dump(config_dict(r), sort_keys=False))
        if r.kind == "trunk":  # its branches as the spec now lists them (a trunk is done at the last one's start)
            paths.write_json(paths.join(r.out, branches.TRUNK_FILE), trunks[r.out].listing(r.config))
    paths.write_json(paths.join(spec.out, "sweep.json"),
                     {"name": spec.name, "spec": spec.source,
                      "runs": [{**r.row(), "steps": r.steps, "folder": r.out} for r in runs]})
    return spec.out


def started_run_changes(r: Run) -> list[str]:
    """How the spec's config for ``r`` differs in training fields from the ``train.yaml`` its
    folder was started with (a committed checkpoint or a record); [] when not started or alike."""
    path = paths.join(r.out, CONFIG_FILE)
    if not paths.exists(path) or not (paths.exists(paths.join(r.out, "record.json")) or checkpoint_steps(r.out)):
        return []
    old = from_dict(TrainConfig, yaml_load(paths.read_text(path)), where=path)
    changes = config_changes(to_dict(old), config_dict(r))
    return branches.beside_budget(changes) if r.kind == "trunk" else changes


def trunk_of(r: Run) -> branches.Trunk:
    """The trunk run ``r``'s branches; a branch the spec adds behind the trunk's progress is refused, by name."""
    plan = branches.trunk_plan(r.config, r.N, model_config(r.config).seq_len)
    steps = checkpoint_steps(r.out)
    branches.check_reachable(plan, r.out, steps[-1] if steps else 0, steps)
    return plan
