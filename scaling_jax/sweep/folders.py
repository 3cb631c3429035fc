"""The sweep's output root: one folder per run holding the ``train.yaml`` its runner trains
from, and ``sweep.json`` at the root listing every run (what ``status`` and ``collect`` read)."""

from __future__ import annotations

from pathlib import Path

import yaml

from scaling_jax import atomic
from scaling_jax.sweep.spec import Run, SweepSpec, config_dict
from scaling_jax.sweep.state import CONFIG_FILE


def write_run_configs(spec: SweepSpec, runs: list[Run]) -> Path:
    """Write each run's ``train.yaml`` and the root's ``sweep.json``; returns the root."""
    root = atomic.check_out_dir(spec.out, flag=f"{spec.source}: out")
    for r in runs:
        atomic.check_out_dir(r.out, flag="run folder")
        atomic.write_text(r.out / CONFIG_FILE, yaml.safe_dump(config_dict(r), sort_keys=False))
    atomic.write_json(root / "sweep.json", {"name": spec.name, "spec": spec.source,
                                            "runs": [{**r.row(), "steps": r.steps, "folder": str(r.out)}
                                                     for r in runs]})
    return root
