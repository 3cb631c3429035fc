"""Every notebook's code cells run top to bottom (no Jupyter needed: cells are exec'd in order).

One test module per notebook (``test_<notebook>.py``), so pytest-xdist's ``--dist loadscope``
spreads the notebooks over its workers instead of running them all in one at the end.
"""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.fixture
def run_notebook(tmp_path, monkeypatch, testbed_dir):
    def run(name: str) -> Path:
        path = next(p for p in NOTEBOOKS if p.stem == name)
        monkeypatch.setenv("SCALING_JAX_TESTBED", str(testbed_dir))
        monkeypatch.setenv("NOTEBOOK_OUT", str(tmp_path))
        monkeypatch.setenv("MPLBACKEND", "Agg")
        nb = json.loads(path.read_text())
        ns: dict = {"__name__": "__notebook__"}
        for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            exec(compile("".join(cell["source"]), f"{path.name}[cell {i}]", "exec"), ns)
        assert any(tmp_path.glob("*.png")), f"{path.name} wrote no figure"
        return tmp_path
    return run
