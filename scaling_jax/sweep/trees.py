"""WSD trunks and their branches in a sweep (``branches: true`` blocks, ``train/branches.py``):
when a branch may start (its trunk has committed the checkpoint at its decay start), which
trunks a selection of runs needs, and what a trunk's branches cost against separate runs."""

from __future__ import annotations

import json

from scaling_jax import paths
from scaling_jax.sweep.spec import Run
from scaling_jax.train.checkpoint import committed_steps


def point_committed(trunk_dir: str, step: int) -> bool:
    return step in committed_steps(paths.join(trunk_dir, "checkpoints"))


def ready(run: Run) -> bool:
    """Whether ``run`` can start now: any run but a branch, and a branch once its trunk has
    committed the checkpoint at its decay start."""
    return run.kind != "branch" or point_committed(run.trunk, run.start_step)


def with_trunks(selected: list[Run], runs: list[Run]) -> list[Run]:
    """``selected`` and the trunks its branches start from, in ``runs`` order."""
    need = {r.trunk for r in selected if r.kind == "branch"}
    keep = {r.name for r in selected}
    return [r for r in runs if r.name in keep or (r.kind == "trunk" and r.out in need)]


def waits(root: str) -> dict[str, tuple[str, int]]:
    """Each branch folder of the sweep at ``root`` (its ``sweep.json``) -> (trunk folder, decay start)."""
    rows = json.loads(paths.read_text(paths.join(root, "sweep.json")))["runs"]
    return {r["folder"]: (r["trunk"], int(r["start_step"])) for r in rows if r.get("kind") == "branch"}


def cost_table(runs: list[Run]) -> list[dict]:
    """Per trunk: its own compute, its branches' decays, their total, and what the same budgets
    cost as separate runs (C = 6·N per token each run trains); ``vs_largest``: the total over
    the largest branch's separate run; ``saving``: 1 - total / separate."""
    rows = []
    for t in (r for r in runs if r.kind == "trunk"):
        bs = [r for r in runs if r.kind == "branch" and r.trunk == t.out]
        decays = sum(b.trained_C for b in bs)
        separate = [6.0 * b.N * b.steps * b.step_tokens for b in bs]
        total = t.trained_C + decays
        rows.append({"trunk": t.name, "model": t.model, "dataset": t.dataset, "seed": t.seed,
                     "multipliers": [b.M for b in bs], "trunk_C": t.trained_C, "decays_C": decays, "total_C": total,
                     "separate_C": sum(separate), "vs_largest": total / max(separate),
                     "saving": 1.0 - total / sum(separate)})
    return rows
