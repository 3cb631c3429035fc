"""``fit --runs wandb-export.csv``: W&B's run-table CSV export, its columns mapped to N, D, loss and
error by flags, the runs not finished left out with a warning; the fit equals the plain CSV's."""

import csv
import json

import numpy as np
import pytest

from scaling_jax.cli import main
from scaling_jax.testbed.points_io import read_points
from tests.cli.test_fit_cli import _csv

HEADER = ["Name", "State", "Notes", "User", "Tags", "Created", "Runtime", "Sweep", "N", "D", "losses.synthetic",
          "eval/err_synthetic", "budget.multiplier"]


def _export(tmp_path, plain) -> str:
    """The plain CSV's runs as W&B exports them (config and summary columns, a crashed run too)."""
    rows = list(csv.DictReader(plain.open()))
    path = tmp_path / "wandb_export_2026-12-07.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i, r in enumerate(rows):
            w.writerow([f"run-{i}", "finished", "-", "me", "ladder", "2026-12-07T10:00:00", "61", "trio",
                        r["N"], r["D"], r["loss"], 0.5 + 0.01 * i, float(r["D"]) / float(r["N"])])
        w.writerow(["run-x", "crashed", "-", "me", "", "2026-12-07T11:00:00", "3", "trio", "1e7", "", "", "", ""])
        w.writerow(["run-y", "finished", "-", "me", "", "2026-12-07T12:00:00", "9", "trio", "1e7", "2e8", "", "", 20])
    return str(path)


def test_a_wandb_export_fits_as_the_plain_csv(tmp_path, capsys):
    plain = _csv(tmp_path)
    export = _export(tmp_path, plain)
    with pytest.warns(UserWarning) as caught:
        pts = read_points(export, need_error=True, columns={"loss": "losses.synthetic", "error": "eval/err_synthetic"})
    said = [str(w.message) for w in caught]
    assert any("left out 1 W&B run(s) not finished: run-x (crashed)" in m for m in said)
    # finished without its eval: left out, named, rather than failing the whole export
    empty = "left out 1 finished W&B run(s) with empty cells: run-y (no losses.synthetic, eval/err_synthetic)"
    assert any(empty in m for m in said)
    ref = read_points(plain)
    for k in ("N", "D", "loss"):
        np.testing.assert_array_equal(pts[k], ref[k])
    assert pts["error"][0] == 0.5

    args = ["fit", "--law", "chinchilla", "--bootstrap", "0"]
    assert main([*args, "--runs", str(plain), "--out", str(tmp_path / "a")]) == 0
    with pytest.warns(UserWarning, match="not finished"):
        assert main([*args, "--runs", export, "--loss-column", "losses.synthetic", "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "fit.json").read_text()) for d in "ab")
    assert a["params"] == b["params"]

    capsys.readouterr()
    assert main([*args, "--runs", export]) == 2  # W&B names the column losses.synthetic, not loss
    assert "missing column(s) ['loss']" in capsys.readouterr().err
    assert main([*args, "--runs", str(tmp_path), "--loss-column", "x"]) == 2
    assert "--loss-column: applies to a CSV" in capsys.readouterr().err


def test_a_loss_fit_keeps_finished_runs_logged_without_their_eval(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Name,State,N,D,loss,error\n"
                    "a,finished,1e7,2e8,3.0,0.6\nb,finished,2e7,4e8,2.9,\nc,crashed,3e7,,,\n")
    with pytest.warns(UserWarning, match="not finished: c"):
        pts = read_points(str(path))  # a loss fit: b keeps its loss, and no error is read
    assert list(pts["loss"]) == [3.0, 2.9] and "error" not in pts
    with pytest.warns(UserWarning) as caught:
        pts = read_points(str(path), need_error=True)  # an error fit: b has none, and is left out
    assert list(pts["error"]) == [0.6] and any("b (no error)" in str(w.message) for w in caught)
