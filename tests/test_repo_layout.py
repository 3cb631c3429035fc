"""The words around the code stay in shape (issue 33): BENCHMARKS.md holds today's figures only,
config headers say what a spec is for (histories live in studies/), benchmarks/ holds speed checks
only, every study has its README, and the repository paths the prose names exist."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_BENCHMARKS_LINES = 400
MAX_COMMENT_BLOCK = 10
# Research scripts and results moved to studies/ (issue 33); benchmarks/ must not grow them back.
RESEARCH = {"ladder_probe.py", "ladder_probe_results.txt", "ladder_surface.py", "ladder_rate_probe.py",
            "ladder_source_ranks.py", "hindsight_bound.py", "band_width_bound.py", "self_calibration_coverage.py"}
# Prefixed repository paths named in prose; globs and placeholders (`*`, `<...>`, `{...}`) are skipped.
_ROOTS = "benchmarks|studies|configs|notebooks|tests|scaling_jax|launch|docs"
PATH = re.compile(rf"(?<![\w/.])((?:{_ROOTS})/[\w./*<>{{}}-]*[\w*>}}])")
SPEC_NAME = re.compile(r"(?<![\w.-])(cpu_ladder\w*\.yaml)\b")


def comment_blocks(text: str) -> list[tuple[int, int]]:
    """(first line, length) of every run of consecutive whole-line ``#`` comments."""
    blocks, start = [], None
    lines = text.splitlines()
    for i, line in enumerate(lines + [""]):
        if line.lstrip().startswith("#"):
            start = i if start is None else start
        elif start is not None:
            blocks.append((start + 1, i - start))
            start = None
    return blocks


def prose_files() -> list[Path]:
    """Files whose text names repository paths: the top-level docs, studies, docs/, configs, notebooks."""
    files = [REPO / "README.md", REPO / "BENCHMARKS.md"]
    for folder, patterns in [("studies", ("*.md", "*.yaml", "*.py", "*.txt")), ("docs", ("*.md",)),
                             ("configs", ("*.yaml",)), ("benchmarks", ("*.py", "*.sh")),
                             ("notebooks", ("*.ipynb",)), ("scaling_jax/model/presets", ("*.yaml",))]:
        for pattern in patterns:
            files += sorted((REPO / folder).rglob(pattern))
    return [f for f in files if f.is_file()]


def test_comment_blocks_are_counted():
    text = "# a\n# b\nname: x\n  # c\nkey: 1 # not a block\n"
    assert comment_blocks(text) == [(1, 2), (4, 1)]


def test_benchmarks_md_is_short():
    n = len((REPO / "BENCHMARKS.md").read_text().splitlines())
    assert n <= MAX_BENCHMARKS_LINES, f"BENCHMARKS.md: {n} lines, at most {MAX_BENCHMARKS_LINES} (history stays in git)"


def test_benchmarks_md_has_one_table_per_capability():
    headings = re.findall(r"^## (.+)$", (REPO / "BENCHMARKS.md").read_text(), flags=re.M)
    assert headings[:3] == ["Speed", "Memory", "Accuracy"]


@pytest.mark.parametrize("path", sorted((REPO / "configs").rglob("*.yaml")), ids=lambda p: str(p.relative_to(REPO)))
def test_config_comment_blocks_are_short(path):
    long = [(line, n) for line, n in comment_blocks(path.read_text()) if n > MAX_COMMENT_BLOCK]
    assert not long, f"{path.relative_to(REPO)}: comment blocks (line, length) {long} over {MAX_COMMENT_BLOCK} lines"


def test_benchmarks_holds_speed_checks_only():
    here = {p.name for p in (REPO / "benchmarks").iterdir() if not p.name.startswith((".", "__"))}
    assert not here & RESEARCH, f"research in benchmarks/: {sorted(here & RESEARCH)} (they live in studies/)"
    bench = {n for n in here if n.startswith("bench_") and n.endswith(".py")}
    used = " ".join((REPO / "benchmarks" / n).read_text() for n in bench)
    # Besides the bench_*.py checks: GPU runner scripts, and helpers a bench script names (its reference).
    others = {n for n in here - bench if not n.endswith(".sh") and Path(n).stem not in used}
    assert not others, f"benchmarks/ holds files no bench_*.py uses: {sorted(others)}"


def test_every_study_has_a_readme_with_question_design_result():
    studies = [p for p in (REPO / "studies").iterdir() if p.is_dir()]
    assert {p.name for p in studies} >= {"cpu_ladder", "backtest_recipes", "self_calibration"}
    for study in studies:
        text = (study / "README.md").read_text()
        for part in ("**Question.**", "**Design.**", "**Result.**"):
            assert part in text, f"{study.relative_to(REPO)}/README.md lacks {part}"
        assert study.name in (REPO / "studies" / "README.md").read_text()


def test_study_specs_find_their_base():
    from scaling_jax.sweep.spec import base_dict, load_spec

    specs = sorted((REPO / "studies").rglob("*.yaml"))
    assert len(specs) >= 7
    for path in specs:
        assert base_dict(load_spec(path))["model"]


def test_paths_named_in_prose_exist():
    missing = []
    for f in prose_files():
        text = f.read_text()
        for m in PATH.finditer(text):
            if not any(c in m.group(1) for c in "*<{") and not (REPO / m.group(1)).exists():
                missing.append(f"{f.relative_to(REPO)}: {m.group(1)}")
        for m in SPEC_NAME.finditer(text):
            if not any(any((REPO / d).rglob(m.group(1))) for d in ("configs", "studies")):
                missing.append(f"{f.relative_to(REPO)}: {m.group(1)}")
    assert not missing, "paths that do not exist:\n" + "\n".join(sorted(set(missing)))
