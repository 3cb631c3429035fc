"""``sweep collect``: the sweep's finished records gathered into a testbed folder that ``fit``,
``posterior``, ``reproduce --recipe`` and the planner read, with the spec's recipe beside them
as ``recipes/<name>.json`` (run names for the fit sets and the targets)."""

from __future__ import annotations

from pathlib import Path

from scaling_jax import atomic
from scaling_jax.sweep.spec import Run, SweepSpec, recipe_json
from scaling_jax.testbed.schema import RunRecord


def default_dest(spec: SweepSpec) -> Path:
    out = Path(spec.out)
    return out.with_name(out.name + "_testbed")


def collect(spec: SweepSpec, runs: list[Run], dest: str | Path) -> tuple[list[Path], list[str]]:
    """Copy each finished run's ``record.json`` to ``dest/<name>/record.json`` (checked, atomic);
    returns the files written and the names of the runs without a record."""
    dest = atomic.check_out_dir(dest)
    written, missing = [], []
    for r in runs:
        src = r.out / "record.json"
        if not src.is_file():
            missing.append(r.name)
            continue
        text = src.read_text()
        RunRecord.from_json(text, source=str(src))  # a corrupt record fails here, naming the file
        written.append(atomic.write_text(dest / r.name / "record.json", text))
    if spec.recipe is not None:
        written.append(atomic.write_json(dest / "recipes" / f"{spec.recipe.name}.json", recipe_json(spec, runs)))
    return written, missing
