from pathlib import Path

from .conftest import NOTEBOOKS


def test_every_notebook_has_its_test_module():
    assert NOTEBOOKS
    tested = {p.stem.removeprefix("test_") for p in Path(__file__).parent.glob("test_*.py")}
    assert {p.stem for p in NOTEBOOKS} <= tested
