"""Branches of existing WSD trunks as next-run candidates (``plan --next-run --trunks DIR``).

A trunk (``trunk.json``, ``train/branches.py``) serves a run of S steps from its checkpoint at
S's decay start k: such a run costs only its decay, S - k steps, not S. The candidates are a
trunk's listed branches not trained yet (the trunk's steps still ahead of a branch point count
in its cost) and, for every other committed checkpoint of the trunk, the shortest run whose
decay starts there.
"""

from __future__ import annotations

import json
import math

from scaling_jax import paths
from scaling_jax.train.checkpoint import committed_steps
from scaling_jax.train.config import OptimizerSection, WsdSection
from scaling_jax.train.optimizer import decay_start


def _shortest_from(opt: OptimizerSection, k: int) -> int | None:
    """The shortest run length whose decay starts at step ``k`` (None if no length does)."""
    guess = math.floor(k / (1.0 - opt.wsd.decay_fraction)) if opt.wsd.decay_fraction < 1 else k
    return next((S for S in range(max(k, guess - 3), guess + 4) if decay_start(opt, S) == k), None)


def trunk_candidates(root: str) -> list[dict]:
    """Every trunk under ``root``'s branch candidates: ``{N, M, cost, branch_of, decay_start, steps}``,
    ``cost`` in FLOPs (6·N per token the branch, and the trunk up to its start, still trains)."""
    out = []
    for listing in paths.find(root, "trunk.json"):
        trunk = paths.parent(listing)
        t = json.loads(paths.read_text(listing))
        opt = OptimizerSection(schedule="wsd", warmup=t["warmup"],
                               wsd=WsdSection(t["decay"]["fraction"], t["decay"]["shape"]))
        have = committed_steps(paths.join(trunk, "checkpoints"))
        at = have[-1] if have else 0
        done = {b["decay_start"] for b in t["branches"] if paths.exists(paths.join(trunk, b["folder"], "record.json"))}
        runs = {b["steps"]: b["decay_start"] for b in t["branches"]
                if not paths.exists(paths.join(trunk, b["folder"], "record.json"))}
        for k in have:
            S = _shortest_from(opt, k) if k >= max(opt.warmup, 1) and k not in done else None
            if S is not None and S not in runs and k not in runs.values():
                runs[S] = k
        for S, k in sorted(runs.items()):
            tokens = (S - k + max(k - at, 0)) * t["tokens_per_step"]
            out.append({"N": float(t["N"]), "M": S * t["tokens_per_step"] / t["N"], "cost": 6.0 * t["N"] * tokens,
                        "branch_of": trunk, "decay_start": k, "steps": S})
    return out
