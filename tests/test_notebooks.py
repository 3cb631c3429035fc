"""Every notebook's code cells run top to bottom (no Jupyter needed: cells are exec'd in order)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch, testbed_dir):
    monkeypatch.setenv("SCALING_JAX_TESTBED", str(testbed_dir))
    monkeypatch.setenv("NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = json.loads(path.read_text())
    ns: dict = {"__name__": "__notebook__"}
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        exec(compile("".join(cell["source"]), f"{path.name}[cell {i}]", "exec"), ns)
    assert any(tmp_path.glob("*.png"))


def test_there_are_notebooks():
    assert NOTEBOOKS
