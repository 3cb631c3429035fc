"""``sweep collect``: the sweep's finished records gathered into a testbed folder that ``fit``,
``posterior``, ``reproduce --recipe`` and the planner read, with the spec's recipe beside them
as ``recipes/<name>.json`` (run names for the fit sets and the targets)."""

from __future__ import annotations

from pathlib import Path

from scaling_jax import atomic, paths
from scaling_jax.sweep.spec import Run, SweepSpec, recipe_json
from scaling_jax.testbed.schema import RunRecord


def default_dest(spec: SweepSpec) -> str:
    return spec.out.rstrip("/") + "_testbed"


def collect(spec: SweepSpec, runs: list[Run], dest: str | Path) -> tuple[list[str], list[str]]:
    """Copy each finished run's ``record.json`` to ``dest/<name>/record.json`` (checked, atomic;
    either side local or ``gs://``); returns the files written and the runs without a record."""
    dest = str(dest if paths.is_gcs(dest) else atomic.check_out_dir(dest))
    written, missing = [], []
    for r in (r for r in runs if r.kind != "trunk"):  # a trunk has no record: its branches are the runs
        src = paths.join(r.out, "record.json")
        if not paths.exists(src):
            missing.append(r.name)
            continue
        text = paths.read_text(src)
        RunRecord.from_json(text, source=src)  # a corrupt record fails here, naming the file
        written.append(paths.write_text(paths.join(dest, r.name, "record.json"), text))
    if spec.recipe is not None:
        written.append(paths.write_json(paths.join(dest, "recipes", f"{spec.recipe.name}.json"),
                                        recipe_json(spec, runs)))
    return written, missing
