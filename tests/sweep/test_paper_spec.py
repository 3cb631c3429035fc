"""configs/sweeps/paper.yaml expands to exactly the released testbed's 104 runs."""

import json
from pathlib import Path

from scaling_jax.sweep.spec import expand, load_spec

REPO = Path(__file__).resolve().parents[2]


def test_paper_grid_equals_the_testbeds_runs(testbed_dir):
    runs = expand(load_spec(REPO / "configs" / "sweeps" / "paper.yaml"))
    released = set()
    for f in (testbed_dir / "models").glob("*.json"):
        m = json.loads(f.read_text())
        h = m["hyperparameters"]
        model = f.stem.split("-", 1)[1].rsplit("-", 1)[0]
        released.add((m["dataset_name"], model, h["params"], round(h["chinchilla_multiplier"] * 20, 6), h["tokens"]))
    planned = {(r.dataset, r.model, r.N, round(r.M, 6), int(r.D)) for r in runs}
    assert len(runs) == len(planned) == len(released) == 104
    assert planned == released
    roles = {(r.dataset, r.model, round(r.M)): r.role for r in runs}
    assert sum(r.role == "fit" for r in runs) == 3 * 6  # Table 1's six runs per corpus
    assert roles[("rpj", "open_lm_1b", 640)] == roles[("c4_original", "open_lm_1b", 80)] == "target"
    assert roles[("rw_original", "open_lm_7b", 20)] == "target"
    assert roles[("rpj", "d=96_l=8_h=4", 320)] == "fit" and roles[("rpj", "d=96_l=8_h=4", 640)] == "other"
