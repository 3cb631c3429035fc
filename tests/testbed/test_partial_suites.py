"""A run whose err_17 averages fewer than the 17 tasks (a task file was missing at eval time) is
refused by ``fit`` and ``backtest``, naming the run and its missing tasks, unless
``--allow-partial-suites``; then the output lists it."""

import dataclasses
import json

import pytest

from scaling_jax.cli import main
from scaling_jax.errors import UserError
from scaling_jax.eval.aggregate import average_errors
from scaling_jax.paper.backtest import load_sweeps
from scaling_jax.testbed import TASKS_17, RunRecord

DROPPED = ("squad", "coqa")


def _as_trained_here(run: RunRecord, drop=()) -> RunRecord:
    """The released run as ``scaling-jax train`` would record it, its eval missing ``drop``: the
    averages recomputed by the evaluator's function over the tasks it has."""
    acc = {t: a for t, a in run.accuracies.items() if t not in drop}
    e = average_errors(acc)
    ev = {"suite": "tasks", "err_17_n_tasks": e["err_17_n_tasks"], "err_46_n_tasks": e["err_46_n_tasks"],
          "missing": list(drop)}
    return dataclasses.replace(run, accuracies=acc, err_17=e["err_17"], err_46=e["err_46"], source="",
                               hyperparameters={**run.hyperparameters, "eval": ev})


@pytest.fixture(scope="module")
def folder(testbed, tmp_path_factory):
    """RedPajama's 35 runs as record.json files; one of them evaluated without two of the 17 tasks."""
    root = tmp_path_factory.mktemp("records")
    runs = testbed.select(dataset="rpj").runs
    partial = runs[3].name
    for r in runs:
        rec = _as_trained_here(r, DROPPED if r.name == partial else ())
        (root / r.name).mkdir()
        (root / r.name / "record.json").write_text(rec.to_json())
    return root, partial


def test_the_record_says_which_tasks_its_errors_average(testbed):
    from scaling_jax.testbed.schema import partial_suites

    full = testbed.runs[0]
    assert full.averaged_tasks("err_17") == TASKS_17 and full.missing_tasks("err_17") == ()
    part = RunRecord.from_json(_as_trained_here(full, DROPPED).to_json())
    assert set(part.missing_tasks("err_17")) == set(DROPPED) and len(part.averaged_tasks("err_17")) == 15
    assert set(part.missing_tasks("err_46")) == set(DROPPED)
    assert partial_suites([full, part], "err_17") == {part.name: part.missing_tasks("err_17")}
    # A synthetic-suite run fills err_17 with its suite's mean: complete unless a task was unreadable.
    synth = dataclasses.replace(full, accuracies={"synth_a": 0.5, "synth_b": 0.7}, err_17=0.4, err_46=0.4,
                                hyperparameters={"eval": {"suite": "synthetic", "missing": []}})
    assert synth.averaged_tasks("err_17") == ("synth_a", "synth_b") and synth.missing_tasks("err_17") == ()


def test_fit_refuses_a_partial_suite_by_name_unless_allowed(folder, tmp_path, capsys):
    root, partial = folder
    argv = ["fit", "--runs", str(root), "--law", "error", "--bootstrap", "0"]
    assert main(argv + ["--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert f"{partial} lacks" in err and all(t in err for t in DROPPED) and "--allow-partial-suites" in err
    assert not (tmp_path / "no" / "fit.json").exists()
    assert main(argv + ["--allow-partial-suites", "--out", str(tmp_path / "yes")]) == 0
    body = json.loads((tmp_path / "yes" / "fit.json").read_text())
    assert body["partial_suites"]["metric"] == "err_17"
    assert set(body["partial_suites"]["runs"]) == {partial}
    assert set(body["partial_suites"]["runs"][partial]) == set(DROPPED)


def test_backtest_refuses_a_partial_suite_by_name_unless_allowed(folder, tmp_path, capsys):
    root, partial = folder
    assert main(["backtest", "--runs", str(root), "--bootstrap", "0", "--no-plots", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{partial} lacks" in err and all(t in err for t in DROPPED)
    (s,), _ = load_sweeps(root, allow_partial_suites=True)
    assert set(s.partial_suites) == {partial} and set(s.partial_suites[partial]) == set(DROPPED)
    with pytest.raises(UserError, match=f"{partial} lacks"):
        load_sweeps(root)
