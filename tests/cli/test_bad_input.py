"""Bad input through the CLI: one line naming the thing, exit status 2, nothing written.
Anything that is not bad input (a bug) keeps its traceback."""

from pathlib import Path

import pytest

from scaling_jax.cli import main
from scaling_jax.errors import UserError
from scaling_jax.laws.fit import predict
from scaling_jax.testbed import RunRecord

LAW = {"E": 1.8, "a": 150.0, "b": 400.0, "eta": 0.15}
GRID = [(1e7, 20.0), (3e7, 20.0), (8e7, 20.0), (2e8, 20.0), (1e7, 320.0), (3e7, 80.0)]


def own_records(root: Path, dataset: str = "synthetic", grid=GRID) -> Path:
    """A folder of record.json files as ``scaling-jax train`` writes them (loss on its own set)."""
    for i, (N, M) in enumerate(grid):
        loss = float(predict("overtrain", LAW, C=6 * N * N * M, M=M))
        r = RunRecord(name=f"{dataset}-m{i}-{M:g}", dataset=dataset, model=f"m{i}", N=int(N),
                      params_no_embed=int(N) // 2, D=N * M, losses={dataset: loss})
        (root / r.name).mkdir(parents=True)
        (root / r.name / "record.json").write_text(r.to_json())
    return root


def _csv(path: Path, rows: list[str], header: str = "N,D,loss") -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _file(tmp: Path) -> Path:
    f = tmp / "taken"
    f.write_text("keep me")
    return f


def _error_only_calibration(tmp: Path) -> Path:
    from scaling_jax.laws.bayes import prior_discrepancy, save_calibration

    return save_calibration(tmp / "cal.json", error=prior_discrepancy("error", 50), source="a past sweep")


def _posterior(tmp: Path, law: str = "overtrain") -> Path:
    from tests.conftest import synthetic_posterior_file

    return synthetic_posterior_file(tmp / f"{law}.nc", law=law, n=100)


def _two_sets(tmp: Path) -> Path:
    own_records(tmp / "two", "setA")
    return own_records(tmp / "two", "setB")


CASES = {
    # name: (argv from (tmp, testbed_dir), fragment of the one-line error)
    "unknown --val-set": (lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--val-set", "nope",
                                         "--bootstrap", "0", "--out", str(t / "o")], "--val-set 'nope'"),
    "reproduce without the recipe's runs": (
        lambda t, tb: ["reproduce", "--testbed", str(own_records(t / "own")), "--out", str(t / "o")],
        "lacks the paper recipe's run(s)"),
    "posterior without the recipe's runs": (
        lambda t, tb: ["posterior", "--testbed", str(own_records(t / "own")), "--out", str(t / "o")],
        "lacks the paper recipe's run(s)"),
    "reproduce --out is a file": (lambda t, tb: ["reproduce", "--testbed", str(tb), "--out", str(_file(t))],
                                  "exists and is not a folder"),
    "posterior --out is a file": (lambda t, tb: ["posterior", "--testbed", str(tb), "--out", str(_file(t))],
                                  "exists and is not a folder"),
    "fit --out is a file": (lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--out", str(_file(t))],
                            "exists and is not a folder"),
    "five identical rows": (lambda t, tb: ["fit", "--runs", str(_csv(t / "r.csv", ["1e8,2e9,3.1"] * 5)),
                                           "--out", str(t / "o")], "only 1 distinct"),
    "every run at one (N, D)": (
        lambda t, tb: ["fit", "--runs", str(_csv(t / "r.csv", [f"1e8,2e9,{3 + i / 10}" for i in range(6)])),
                       "--law", "chinchilla", "--out", str(t / "o")], "only 1 distinct"),
    "several training sets, no --dataset": (lambda t, tb: ["fit", "--runs", str(_two_sets(t)), "--out", str(t / "o")],
                                            "pass --dataset"),
    "released testbed, no --dataset": (lambda t, tb: ["fit", "--runs", str(tb), "--out", str(t / "o")],
                                       "pass --dataset"),
    "error above 1": (lambda t, tb: ["fit", "--runs", str(_csv(t / "r.csv", ["1,1,3.0,0.4", "1,1,2.9,1.3"],
                                                                "N,D,loss,error")),
                                     "--law", "error", "--out", str(t / "o")], "must lie in (0, 1]"),
    "error zero": (lambda t, tb: ["fit", "--runs", str(_csv(t / "r.csv", ["1,1,3.0,0.4", "1,1,2.9,0"],
                                                             "N,D,loss,error")),
                                  "--law", "error", "--out", str(t / "o")], "must be positive"),
    "negative --bootstrap": (lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--bootstrap", "-1",
                                            "--out", str(t / "o")], "--bootstrap: must be >= 0"),
    "--predict with N = 0": (lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--predict", "0,1e9",
                                             "--out", str(t / "o")], "N must be positive"),
    "--predict of the wrong shape": (lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--predict", "1e9",
                                                    "--out", str(t / "o")], "expected two numbers N,D"),
    "--predict without a bootstrap": (lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--bootstrap", "0",
                                                     "--predict", "1e9,2e10", "--out", str(t / "o")],
                                      "use --bootstrap > 0"),
    "error law without an error column": (
        lambda t, tb: ["fit", "--runs", str(_csv(t / "r.csv", ["1e8,2e9,3.1", "2e8,4e9,3.0"])), "--law", "error",
                       "--out", str(t / "o")], "missing column(s) ['error']"),
    "--calibration with lm": (lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--calibration",
                                             str(_file(t)), "--out", str(t / "o")], "applies to --estimator bayes"),
    "calibration file of another law": (
        lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--estimator", "bayes", "--calibration",
                       str(_error_only_calibration(t)), "--out", str(t / "o")], "calibrates only ['error']"),
    "--chains 0": (lambda t, tb: ["fit", "--runs", str(tb), "--dataset", "rpj", "--estimator", "bayes", "--chains", "0",
                                  "--out", str(t / "o")], "--chains: must be >= 1"),
    "backtest --cuts 0": (lambda t, tb: ["backtest", "--runs", str(tb), "--dataset", "rpj", "--cuts", "0",
                                         "--out", str(t / "o")], "--cuts: must be >= 1"),
    "backtest unknown recipe": (lambda t, tb: ["backtest", "--runs", str(tb), "--recipes", "eq4/lsq/most",
                                               "--out", str(t / "o")], "unknown recipe 'eq4/lsq/most'"),
    "backtest one multiplier only": (
        lambda t, tb: ["backtest", "--runs", str(_csv(t / "r.csv", [f"{n},{20 * n},{3 - n / 1e9}" for n in
                                                                    (1e7, 2e7, 4e7, 8e7, 1.6e8, 3.2e8)])),
                       "--out", str(t / "o")], "same token multiplier M = 20"),
    "backtest non-finite loss": (lambda t, tb: ["backtest", "--runs", str(_csv(t / "r.csv", ["1e8,2e9,nan"])),
                                                "--out", str(t / "o")], "must be positive and finite"),
    "backtest too few runs to cut": (
        lambda t, tb: ["backtest", "--runs", str(_csv(t / "r.csv", [f"{n},{m * n},{3 - n / 1e9 - m / 1e3}" for n, m in
                                                                    ((1e7, 20), (2e7, 40), (4e7, 20), (8e7, 80))])),
                       "--out", str(t / "o")], "too few to backtest"),
    "backtest --final-cut paper on a CSV": (
        lambda t, tb: ["backtest", "--runs", str(_csv(t / "r.csv", [f"{n},{m * n},{3 - n / 1e9 - m / 1e3}" for n, m in
                                                                    ((1e7, 20), (2e7, 40), (4e7, 20), (8e7, 80))])),
                       "--final-cut", "paper", "--out", str(t / "o")], "lacks the paper recipe's runs"),
    "plan: non-positive --budget": (lambda t, tb: ["plan", "--posterior", str(_posterior(t)), "--budget", "0",
                                                   "--out", str(t / "o")], "--budget: a FLOP budget must be positive"),
    "plan: posterior of another law": (
        lambda t, tb: ["plan", "--posterior", str(_posterior(t, law="chinchilla")), "--budget", "1e21", "--out",
                       str(t / "o")], "a posterior of law 'chinchilla'"),
    "plan: posterior of another dataset": (
        lambda t, tb: ["plan", "--posterior", str(_posterior(t)), "--dataset", "c4_original", "--budget", "1e21",
                       "--out", str(t / "o")], "fitted on training set 'rpj', not 'c4_original'"),
    "plan: candidate grid empty under the budget": (
        lambda t, tb: ["plan", "--posterior", str(_posterior(t)), "--budget", "1e15", "--next-run", "--out",
                       str(t / "o")], "candidate grid is empty under the budget"),
    "plan: bad --candidates": (lambda t, tb: ["plan", "--posterior", str(_posterior(t)), "--candidates", "1e9:-20",
                                              "--out", str(t / "o")], "M must be positive"),
    "plan: --testbed without --dataset": (lambda t, tb: ["plan", "--testbed", str(tb), "--budget", "1e21", "--out",
                                                         str(t / "o")], "--testbed needs --dataset"),
    "plan: unknown --dataset": (lambda t, tb: ["plan", "--testbed", str(tb), "--dataset", "nope", "--budget", "1e21",
                                               "--out", str(t / "o")], "--dataset 'nope': not in"),
    "plan: nothing asked": (lambda t, tb: ["plan", "--posterior", str(_posterior(t)), "--out", str(t / "o")],
                            "nothing to plan"),
    "missing testbed": (lambda t, tb: ["reproduce", "--testbed", str(t / "nope"), "--out", str(t / "o")], "not found"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(case, tmp_path, testbed_dir, capsys):
    make_argv, fragment = CASES[case]
    argv = make_argv(tmp_path, testbed_dir)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err, err
    assert len(err.splitlines()) == 1 and err.startswith(f"scaling-jax {argv[0]}: error: "), err
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # no file written or changed
    assert not (tmp_path / "o").exists()


def test_own_records_fit_on_their_own_validation_set(tmp_path, capsys):
    runs = own_records(tmp_path / "runs")
    assert main(["fit", "--runs", str(runs), "--bootstrap", "0", "--out", str(tmp_path / "o")]) == 0
    import json

    fit = json.loads((tmp_path / "o" / "fit.json").read_text())
    for k, v in LAW.items():
        assert fit["params"][k] == pytest.approx(v, rel=1e-4), k


def test_a_bug_keeps_its_traceback(monkeypatch):
    import scaling_jax.cli.model_info as mi

    def boom(args):
        raise ValueError("a genuine bug")

    monkeypatch.setattr(mi, "run", boom)
    with pytest.raises(ValueError, match="a genuine bug"):
        main(["model-info", "tiny_d16"])

    def bad_input(args):
        raise UserError("field x: bad")

    monkeypatch.setattr(mi, "run", bad_input)
    assert main(["model-info", "tiny_d16"]) == 2
