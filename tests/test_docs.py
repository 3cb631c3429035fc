"""The documentation site (docs/, mkdocs.yml) and README against the code: every ``scaling-jax``
subcommand and flag is documented, the tour runs as written, the README stays a front page."""

from __future__ import annotations

import argparse
import csv
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
TOUR = DOCS / "getting-started.md"
README_MAX_LINES = 150


def _pages() -> dict[str, str]:
    return {str(p.relative_to(DOCS)): p.read_text() for p in sorted(DOCS.rglob("*.md"))}


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(subcommand path, its long flags, its positional choices) for every parser under ``parser``."""
    flags, choices, subs = [], [], []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs += list(action.choices.items())
        elif action.option_strings:
            flags += [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        elif action.choices:
            choices += list(action.choices)
    if path:
        yield path, flags, choices
    for name, sub in subs:
        yield from _commands(sub, (*path, name))


def _mentions(text: str, token: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def test_every_subcommand_and_flag_is_documented():
    """Each subcommand appears as ``scaling-jax CMD [SUB]`` and each of its flags and positional
    choices on a page that names the command (so a flag is explained where its command is)."""
    from scaling_jax.cli import build_parser

    pages = _pages()
    missing = []
    walked = list(_commands(build_parser()))
    assert {p[0] for p, _, _ in walked} >= {"fit", "sweep", "launch", "train"} and len(walked) > 20
    for path, flags, choices in walked:
        command = "scaling-jax " + " ".join(path)
        # a sub-subcommand may be written after its parent's flags or overrides: `sweep run SPEC`
        near = [text for text in pages.values() if _mentions(text, command)]
        if not near:
            missing.append(f"{command} (no page names it)")
            continue
        for token in flags + [f"{' '.join(path)} {c}" for c in choices]:
            if not any(_mentions(text, token) for text in near):
                missing.append(f"{command}: {token}")
    assert not missing, "undocumented in docs/ (on a page that names the command):\n" + "\n".join(missing)


def _dataclass_fields(cls, prefix: str = "", skip=()) -> list[str]:
    """Dotted names of every field of dataclass ``cls``, nested dataclasses walked (``skip``: not)."""
    import dataclasses
    import typing

    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if name in skip:
            continue
        out.append(name)
        if dataclasses.is_dataclass(hints[f.name]):
            out += _dataclass_fields(hints[f.name], name + ".", skip)
    return out


def test_every_input_field_has_its_page():
    """Every field of the train config, model config, sweep spec, launch spec and run record is
    named on its format page (dotted, as written in YAML)."""
    from scaling_jax.launch.tpu_spec import TpuSpec
    from scaling_jax.model.config import ModelConfig
    from scaling_jax.sweep.spec import Block, RecipeSpec, Select, SweepSpec
    from scaling_jax.testbed.schema import RunRecord
    from scaling_jax.train.config import TrainConfig

    pages = _pages()
    expected = {
        "formats/train-config.md": _dataclass_fields(TrainConfig) + _dataclass_fields(ModelConfig),
        "formats/sweep-spec.md": [f for f in _dataclass_fields(SweepSpec) if f != "source"]
        + _dataclass_fields(Block) + _dataclass_fields(RecipeSpec, "recipe.") + _dataclass_fields(Select),
        "formats/launch-spec.md": _dataclass_fields(TpuSpec),
        "formats/record.md": _dataclass_fields(RunRecord) + ["schema_version"],
    }
    missing = [f"{page}: {name}" for page, names in expected.items() for name in names
               if not _mentions(pages[page], name)]
    assert len(expected["formats/train-config.md"]) > 50
    assert not missing, "fields not documented:\n" + "\n".join(missing)


# Maps whose keys are data (parameter, task, set, recipe names), not fields: their keys are not checked
# (what lies below them is); below the opaque ones (parameters per law or task) nothing is checked.
DATA_KEYED = {"intervals_95", "rhat", "ess", "tau", "datasets", "losses", "loss_intervals", "accuracies",
              "task_losses", "acc_norm", "val_data", "bayes_loss", "chance", "bayes_accuracy", "tasks", "recipes",
              "coverage", "loss_fit", "error_fit", "targets", "ceiling"}
OPAQUE = {"params", "correlations", "priors", "hyperprior"}


def _json_keys(obj, out: set, parent: str = "") -> set:
    if isinstance(obj, dict) and parent not in OPAQUE:
        for k, v in obj.items():
            if parent not in DATA_KEYED:
                out.add(k)
            _json_keys(v, out, k)
    elif isinstance(obj, list):
        for v in obj:
            _json_keys(v, out, parent)
    return out


def undocumented_keys(path: Path, page: str) -> list[str]:
    """The keys of JSON file ``path`` that its format page ``docs/formats/PAGE`` does not name."""
    import json

    text = (DOCS / "formats" / page).read_text()
    return sorted(k for k in _json_keys(json.loads(path.read_text()), set()) if not _mentions(text, k))


def test_tour_csv_is_the_testbed(testbed):
    """docs/tour/ladder.csv is what the tour says: RedPajama's four smallest sizes at M = 10-80."""
    rows = list(csv.DictReader((DOCS / "tour" / "ladder.csv").open()))
    runs = sorted((r for r in testbed if r.dataset == "rpj" and r.N < 1e9 and r.M in (10, 20, 40, 80)),
                  key=lambda r: (r.N, r.M))
    assert len(rows) == len(runs) == 16
    for row, run in zip(rows, runs):
        assert (int(row["N"]), float(row["D"])) == (run.N, run.D)
        assert float(row["loss"]) == pytest.approx(run.losses["c4_val"], abs=1e-6)
        assert float(row["error"]) == pytest.approx(run.err_17, abs=1e-6)


def tour_commands(text: str) -> list[list[str]]:
    """The argv of every ``scaling-jax`` line in the bash blocks between ``<!-- tour -->`` and
    ``<!-- /tour -->`` (backslash continuations joined, comments dropped)."""
    tour = text.split("<!-- tour -->", 1)[1].split("<!-- /tour -->", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", tour, flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip().startswith("scaling-jax ")]


def test_tour_commands_are_found():
    cmds = tour_commands(TOUR.read_text())
    assert [c[1] for c in cmds][:4] == ["reproduce", "fit", "fit", "plan"] and cmds[-1][1] == "reproduce"


def _repo_root_copy(tmp_path: Path, testbed_dir: Path) -> Path:
    """A folder that reads as the repository root, with ``../shared/testbed`` beside it: every top-level
    entry linked (so the tour's relative paths resolve), its outputs kept out of the real tree."""
    root = tmp_path / "main"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in ("out", "runs", ".git", "build", ".cache"):
            (root / entry.name).symlink_to(entry)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "testbed").symlink_to(testbed_dir)
    return root


@pytest.mark.slow
def test_tour_runs_as_written(tmp_path, testbed_dir, monkeypatch):
    """Getting started's tour, command by command, from a repository root (in this process, as the
    notebooks call the CLI, so programs compiled by one command serve the next): each exits 0, writes
    what the page says it writes, and every field of the JSON it writes is named on its format page."""
    from scaling_jax.cli import main

    root = _repo_root_copy(tmp_path, testbed_dir)
    monkeypatch.chdir(root)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for argv in tour_commands(TOUR.read_text()):
        assert main(argv[1:]) == 0, shlex.join(argv)
    out = root / "out"
    for f in ("reproduce/figure1_laws.png", "tour/bayes/posterior.nc", "tour/bayes/fit_bands.png",
              "tour/ladder_testbed/recipes/cpu.json"):
        assert (out / f).is_file(), f
    run = next((out / "tour" / "ladder").glob("*/record.json")).parent
    written = {"fit.md": ["tour/fit/fit.json", "tour/bayes/fit.json"], "plan.md": ["tour/plan/plan.json"],
               "reproduce.md": ["reproduce/reproduce.json", "tour/ladder_reproduce/reproduce.json"],
               "record.md": [run / "record.json"], "eval.md": [run / "eval.json"]}
    missing = {f"{f}: {undocumented_keys(out / f, page)}" for page, files in written.items() for f in files
               if undocumented_keys(out / f, page)}
    assert not missing, "fields not on their format page:\n" + "\n".join(sorted(missing))


def test_readme_is_a_front_page():
    """README <= 150 lines, opening with the two commands as the set-up contract, its tour the docs' tour,
    its figure small; its links (into docs/, BENCHMARKS.md, studies/) exist."""
    text = (REPO / "README.md").read_text()
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    assert lines[:3] == ["# scaling_jax", "", "```bash"] and lines[5] == "```"
    assert lines[3].startswith("python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && ")
    assert lines[4] == "python -m pytest -q tests"
    assert lines[3] in TOUR.read_text() and lines[4] in TOUR.read_text()
    tour = text.split("## The tour", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    assert [shlex.split(line, comments=True) for line in tour.splitlines() if line.startswith("scaling-jax ")] \
        == tour_commands(TOUR.read_text()), "README's tour differs from docs/getting-started.md's"
    assert (REPO / "docs/assets/figure1_laws.png").stat().st_size < 100_000
    links = [link for link in re.findall(r"\]\(([^)#]+)", text) if "://" not in link]
    assert sum(link.startswith("docs/") for link in links) > 20
    assert all((REPO / link).exists() for link in links), [lk for lk in links if not (REPO / lk).exists()]
