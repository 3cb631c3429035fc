"""The sweep's output root (a local folder or ``gs://bucket/prefix``): one folder per run holding
the ``train.yaml`` its runner trains from, and ``sweep.json`` at the root listing every run."""

from __future__ import annotations

import yaml

from scaling_jax import atomic, paths
from scaling_jax.sweep.spec import Run, SweepSpec, config_dict
from scaling_jax.sweep.state import CONFIG_FILE


def write_run_configs(spec: SweepSpec, runs: list[Run]) -> str:
    """Write each run's ``train.yaml`` and the root's ``sweep.json`` (local or ``gs://``); returns the root."""
    if not paths.is_gcs(spec.out):
        atomic.check_out_dir(spec.out, flag=f"{spec.source}: out")
        for r in runs:
            atomic.check_out_dir(r.out, flag="run folder")
    for r in runs:
        paths.write_text(paths.join(r.out, CONFIG_FILE), yaml.safe_dump(config_dict(r), sort_keys=False))
    paths.write_json(paths.join(spec.out, "sweep.json"),
                     {"name": spec.name, "spec": spec.source,
                      "runs": [{**r.row(), "steps": r.steps, "folder": r.out} for r in runs]})
    return spec.out
