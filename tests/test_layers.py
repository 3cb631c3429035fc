"""The package imports in layers with no arrow back up:
cli → paper → train → model / data / laws → testbed / config and the other helpers.

Every ``import`` of a scaling_jax module, at any depth of any module (lazy imports inside
functions included), is read from the source and checked against the layer table.
"""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "scaling_jax"

# Top-level module or subpackage -> layer; a module may import its own layer and those below.
LAYERS = {
    "errors": 0, "atomic": 0, "paths": 0, "config": 0, "cache": 0, "testbed": 0,
    "laws": 1, "model": 1, "data": 1,
    "train": 2, "eval": 2, "backtest": 2, "plan": 2, "sweep": 2, "openlm": 2, "launch": 2,
    "paper": 3,
    "cli": 4,
}  # fmt: skip
# Science packages are independent of each other (they meet in train and paper).
INDEPENDENT = {"laws", "model", "data"}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path, root: Path = PKG) -> list[tuple[int, str]]:
    """(line, module) of every scaling_jax import in ``path``, relative imports resolved."""
    module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] if base == "scaling_jax" else [base]
            found += [(node.lineno, n) for n in names]
    return [(line, n) for line, n in found if n.startswith("scaling_jax.")]


def _violations(path: Path, root: Path = PKG) -> list[str]:
    here = path.relative_to(root).parts[0].removesuffix(".py")
    bad = []
    for line, name in _imports(path, root):
        there = _unit(name)
        if there != here and (LAYERS[there] > LAYERS[here] or {here, there} <= INDEPENDENT):
            bad.append(f"{path.relative_to(root.parent)}:{line} imports {name} ({here} → {there})")
    return bad


MODULES = sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py" or p.parent != PKG)


def test_every_unit_has_a_layer():
    units = {p.relative_to(PKG).parts[0].removesuffix(".py") for p in MODULES}
    assert units <= set(LAYERS), f"add {sorted(units - set(LAYERS))} to LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_import_reaches_up(path):
    bad = _violations(path)
    assert not bad, "\n".join(bad)


def test_the_check_catches_upward_and_sideways_imports(tmp_path):
    probe = tmp_path / "scaling_jax" / "laws" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from scaling_jax.paper import recipe\n    from .. import cli\n"
                     "    from ..model import counts\n    from . import fit\n    from scaling_jax import errors\n")
    assert [n for _, n in _imports(probe, tmp_path / "scaling_jax")] == [
        "scaling_jax.paper", "scaling_jax.cli", "scaling_jax.model", "scaling_jax.laws", "scaling_jax.errors"]
    bad = _violations(probe, tmp_path / "scaling_jax")
    assert [b.split("(")[1] for b in bad] == ["laws → paper)", "laws → cli)", "laws → model)"]
