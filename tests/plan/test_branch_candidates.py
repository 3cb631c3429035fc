"""plan --next-run with WSD trunks (issue 31): a trunk's untrained branches and the runs its other
committed checkpoints can start are ranked as candidates that cost their decay alone."""

import json
from pathlib import Path

import pytest

from scaling_jax.plan.branch_candidates import trunk_candidates
from scaling_jax.plan.report import Ask, make_plan, table
from tests.conftest import synthetic_laws

N, TPS = 1e8, 1e6  # parameters; tokens per step


def fake_trunk(root: Path) -> Path:
    """A trunk at step 3200 with checkpoints 1000 (a regular one), 1600 and 3200 (branch points);
    its M = 20 branch is trained, its M = 40 one is not."""
    trunk = root / "d-trunk"
    rows = [{"budget": m, "M": m, "D": m * N, "steps": s, "decay_start": k, "folder": f"branches/M{m}"}
            for m, s, k in ((20, 2000, 1600), (40, 4000, 3200))]
    (trunk / "branches" / "M20").mkdir(parents=True)
    (trunk / "branches" / "M20" / "record.json").write_text("{}")
    for k in (1000, 1600, 3200):
        (trunk / "checkpoints" / str(k)).mkdir(parents=True)
    (trunk / "trunk.json").write_text(json.dumps({
        "unit": "multiplier", "N": N, "tokens_per_step": TPS, "end_step": 3200, "schedule_steps": 4000,
        "warmup": 100, "decay": {"fraction": 0.2, "shape": "sqrt"}, "branches": rows}))
    return trunk


def test_a_trunks_branches_are_candidates_at_the_cost_of_their_decay(tmp_path):
    trunk = fake_trunk(tmp_path)
    got = trunk_candidates(str(tmp_path))
    # from checkpoint 1000: the 1250-step run (decay 250 steps); the listed M = 40 branch: 800 steps
    assert [(c["steps"], c["decay_start"], c["M"], c["cost"]) for c in got] == [
        (1250, 1000, 12.5, pytest.approx(6 * N * 250 * TPS)), (4000, 3200, 40.0, pytest.approx(6 * N * 800 * TPS))]
    assert all(c["branch_of"] == str(trunk) for c in got)

    loss, error = synthetic_laws(100, spread=0.03)
    plan = make_plan(loss, error, Ask(budget=1e21, next_run=True, trunks=str(tmp_path)), diagnostics={},
                     source={"from": "synthetic"})
    ranked = plan["next_run"]["ranked"]
    branches = [r for r in ranked if "branch_of" in r]
    assert [(r["M"], r["decay_start"]) for r in sorted(branches, key=lambda r: r["M"])] == [(12.5, 1000), (40.0, 3200)]
    assert all(r["cost"] < r["C"] for r in branches)
    assert all(r["cost"] == r["C"] for r in ranked if "branch_of" not in r)
    text = table({**plan, "next_run": {**plan["next_run"], "ranked": branches}})
    assert f"a branch of {trunk} from step 1000: costs {6 * N * 250 * TPS:.3g}" in text
