"""The local and SLURM runners, with a stand-in for training that writes a record (or fails for a
run whose name says so), so the runner's logic is checked in a second."""

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from scaling_jax.cli import main
from scaling_jax.sweep import local
from scaling_jax.sweep.collect import collect
from scaling_jax.sweep.folders import write_run_configs
from scaling_jax.sweep.spec import expand, load_spec
from scaling_jax.testbed import load_testbed

from .conftest import micro_spec, write_spec

# A ``sweep worker`` whose run_one writes a valid record with a loss following Eq. 3 with a floor
# of 2 and appends to attempts.txt whether it resumed (checkpoints present); it fails for the run
# whose folder name holds "-4". The worker loop, output redirection and exit codes are the real ones.
FAKE_WORKER = r"""
import json, os, pathlib, signal, sys, yaml
from scaling_jax.sweep import single

def run_one(run_dir):
    d = pathlib.Path(run_dir)
    cps = d / "checkpoints"
    with open(d / "attempts.txt", "a") as f:
        f.write("resume\n" if cps.is_dir() and any(p.name.isdigit() for p in cps.iterdir()) else "fresh\n")
    if d.name.endswith("-4") and "{fail}" == "1":
        print("boom: this run fails")
        return 1
    if d.name.endswith("-4") and "{fail}" == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    cfg = yaml.safe_load((d / "train.yaml").read_text())
    N = json.loads((d.parent / "N.json").read_text())[cfg["model"]["name"]]
    D = cfg["budget"]["multiplier"] * N
    L = (2.0 + 400 * N ** -0.3 + 900 * D ** -0.3) * (1 + 0.002 * cfg.get("seed", 0))  # seed 0: exact Eq. 3
    rec = {"name": cfg["name"], "dataset": cfg["data"]["name"], "model": cfg["model"]["name"], "N": N,
           "params_no_embed": N - 1000, "D": D, "losses": {"synthetic": L}, "err_46": 0.9 - 0.1 / L,
           "err_17": 0.9 - 0.1 / L, "accuracies": {"synth_copy": 0.1 + 0.1 / L},
           "hyperparameters": {"eval": {"suite": "synthetic", "missing": []}}}
    (d / "record.json").write_text(json.dumps(rec))
    return 0

single.run_one = run_one
print("a line on stdout that is not an exit code", flush=True)  # the runner must skip it
sys.exit(single.serve())
"""


@pytest.fixture
def fake_train(monkeypatch):
    def use(fail: bool | str):
        code = FAKE_WORKER.replace("{fail}", {True: "1", False: "0"}.get(fail, fail))
        monkeypatch.setattr(local, "worker_command", lambda: [sys.executable, "-c", code])
    return use


def _attempts(run) -> list[str]:
    p = Path(run.out) / "attempts.txt"
    return p.read_text().split() if p.exists() else []


@pytest.mark.slow
def test_failure_is_reported_idempotence_and_resume_of_only_unfinished_runs(micro, fake_train, capsys):
    spec = load_spec(micro)
    runs = expand(spec)
    write_run_configs(spec, runs)
    (Path(runs[0].out).parent / "N.json").write_text(json.dumps({r.model: r.N for r in runs}))
    fake_train(fail=True)
    out = local.run_local(runs, jobs=2, say=lambda s: None)
    assert [o.action for o in out] == ["trained", "failed", "trained", "trained", "failed", "trained"]
    failed = local.failures(out)
    assert [o.name for o in failed] == ["tiny_d16-4", "tiny_d32-4"] and all(o.rc == 1 for o in failed)
    assert "boom: this run fails" in local.log_tail(failed[0].log)
    assert main(["sweep", "status", str(micro)]) == 0
    table = capsys.readouterr().out
    assert "4 done, 0 running, 2 failed, 0 pending" in table and "tiny_d16-4" in table

    # The CLI's second pass: the four done runs are skipped, the failures retried (now passing).
    fake_train(fail=False)
    (Path(runs[1].out) / "checkpoints" / "20").mkdir(parents=True)  # one failure had saved a checkpoint
    assert main(["sweep", "run", str(micro), "--jobs", "2"]) == 0
    summary = capsys.readouterr().out.splitlines()[-1]
    assert all(part in summary for part in ("4 skipped", "1 resumed", "1 trained")), summary
    assert _attempts(runs[0]) == ["fresh"] and _attempts(runs[1]) == ["fresh", "resume"]
    assert _attempts(runs[4]) == ["fresh", "fresh"]

    # A killed sweep: one run stopped after a checkpoint, one never started. Only those two train.
    (Path(runs[2].out) / "record.json").unlink()
    (Path(runs[2].out) / "checkpoints" / "40").mkdir(parents=True)
    (Path(runs[5].out) / "record.json").unlink()
    (Path(runs[5].out) / "attempts.txt").unlink()
    out = local.run_local(runs, jobs=1, say=lambda s: None)
    assert [o.action for o in out] == ["skipped", "skipped", "resumed", "skipped", "skipped", "trained"]
    assert _attempts(runs[2]) == ["fresh", "resume"] and _attempts(runs[5]) == ["fresh"]
    assert local.run_local(runs, jobs=2, say=lambda s: None)[0].action == "skipped"  # a third pass trains nothing
    assert all(len(_attempts(r)) <= 2 for r in runs)

    # collect -> a testbed folder that `fit` and `reproduce --recipe` read.
    dest = micro.parent / "collected"
    written, missing = collect(spec, runs, dest)
    assert missing == [] and len(written) == 7
    tb = load_testbed(dest)
    assert sorted(r.name for r in tb) == sorted(r.name for r in runs)
    recipe = json.loads((dest / "recipes" / "micro.json").read_text())
    assert recipe["targets"] == ["tiny_d32-8"] and recipe["val_set"] == "synthetic"
    assert main(["fit", "--runs", str(dest), "--law", "overtrain", "--val-set", "synthetic",
                 "--bootstrap", "0", "--out", str(micro.parent / "fit"), "--no-plots"]) == 0
    fit = json.loads((micro.parent / "fit" / "fit.json").read_text())
    assert fit["params"]["E"] == pytest.approx(2.0, rel=0.02)  # the stand-in's floor, recovered
    assert main(["reproduce", "--testbed", str(dest), "--recipe", "micro", "--no-bands", "--no-plots",
                 "--out", str(micro.parent / "rep")]) == 0
    rep = json.loads((micro.parent / "rep" / "reproduce.json").read_text())
    target = rep["datasets"]["synthetic"]["targets"][0]
    assert target["model"] == "tiny_d32" and target["loss_rel_err"] < 0.5


def test_a_multi_seed_recipe_is_fitted_on_every_seed_and_judged_on_the_seed_mean(tmp_path, fake_train, capsys,
                                                                                  monkeypatch):
    spec_path = write_spec(tmp_path, micro_spec(tmp_path, seeds=[0, 1, 2], run_name="{model}-{M:g}-s{seed}"))
    runs = expand(load_spec(spec_path))
    assert len(runs) == 18
    write_run_configs(load_spec(spec_path), runs)
    (Path(runs[0].out).parent / "N.json").write_text(json.dumps({r.model: r.N for r in runs}))
    fake_train(fail=False)
    assert main(["sweep", "run", str(spec_path), "--jobs", "2"]) == 0
    dest = tmp_path / "collected"
    assert main(["sweep", "collect", str(spec_path), "--out", str(dest)]) == 0
    recipe = json.loads((dest / "recipes" / "micro.json").read_text())
    assert len(recipe["loss_fit"]) == 15 and recipe["targets"] == [f"tiny_d32-8-s{s}" for s in range(3)]
    capsys.readouterr()
    assert main(["reproduce", "--testbed", str(dest), "--recipe", "micro", "--no-bands", "--no-plots",
                 "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    d = json.loads((tmp_path / "rep" / "reproduce.json").read_text())["datasets"]["synthetic"]
    (mean,) = d["target_seed_means"]
    losses = [t["loss_true"] for t in d["targets"]]
    assert mean["seeds"] == 3 and mean["names"] == recipe["targets"]
    assert mean["loss_true"] == pytest.approx(sum(losses) / 3) and mean["loss_sd"] > 0
    assert mean["loss_pred"] == pytest.approx(d["targets"][0]["loss_pred"])
    assert mean["loss_rel_err"] == pytest.approx(abs(mean["loss_pred"] - mean["loss_true"]) / mean["loss_true"] * 100)
    assert "mean of 3" in printed and "loss sd" in printed

    # With bands: the mean is judged against the band its seeds share (the first seed's; bands stand in
    # for NUTS here, which is tested in tests/laws/bayes): one band holds the mean, the other does not.
    from scaling_jax.paper import reproduce as paper_reproduce
    from scaling_jax.paper.recipe import load_recipe

    m, n0 = mean["loss_true"], mean["names"][0]
    fake = {"params": {}, "diagnostics": {}, "targets": [
        {"name": n, "loss_lo95": m - 0.01, "loss_hi95": m + 0.01, "error_lo95": 0.0, "error_hi95": 1e-9}
        if n == n0 else {"name": n, "loss_lo95": 0.0, "loss_hi95": 0.0, "error_lo95": 0.0, "error_hi95": 0.0}
        for n in mean["names"]]}
    monkeypatch.setattr(paper_reproduce, "bayes_bands", lambda rec, ds, nuts: fake)
    tb = load_testbed(dest)
    summary, _ = paper_reproduce.write_reproduction(tb, tmp_path / "rep_bands", plots=False,
                                                    rec=load_recipe(tb, "micro"), bands=True)
    (with_band,) = summary["datasets"]["synthetic"]["target_seed_means"]
    assert (with_band["loss_lo95"], with_band["loss_hi95"]) == (m - 0.01, m + 0.01)
    assert with_band["loss_in_band"] is True and with_band["error_in_band"] is False


def test_a_worker_that_dies_fails_only_its_run(micro, fake_train):
    spec = load_spec(micro)
    runs = expand(spec)
    write_run_configs(spec, runs)
    (Path(runs[0].out).parent / "N.json").write_text(json.dumps({r.model: r.N for r in runs}))
    fake_train(fail="die")
    out = local.run_local(runs, jobs=1, say=lambda s: None)
    assert [o.action for o in out] == ["trained", "failed", "trained", "trained", "failed", "trained"]
    assert all(o.rc == -9 for o in local.failures(out))
    assert all(_attempts(r) == ["fresh"] for r in runs)  # each run tried once, by a fresh worker after a death


def test_a_worker_stopped_between_runs_answers_stopped_without_training(micro, fake_train):
    import signal
    import time

    spec = load_spec(micro)
    runs = expand(spec)
    write_run_configs(spec, runs)
    (Path(runs[0].out).parent / "N.json").write_text(json.dumps({r.model: r.N for r in runs}))
    fake_train(fail=False)
    w = local.Worker(dict(os.environ))
    try:
        assert w.train(runs[0], Path(runs[0].out) / "sweep.log") == 0
        w.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert w.train(runs[2], Path(runs[2].out) / "sweep.log") == 143
        assert _attempts(runs[2]) == []  # untrained: the next sweep run trains it
    finally:
        w.close()
    assert w.proc.returncode == 0


def _fake_sbatch(tmp: Path) -> Path:
    bin_ = tmp / "bin"
    bin_.mkdir()
    sb = bin_ / "sbatch"
    sb.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp}/sbatch_calls.txt\necho 4242\n")
    sb.chmod(sb.stat().st_mode | stat.S_IEXEC)
    return bin_


def test_workers_on_a_gpu_host_each_see_one_gpu_and_share_its_memory():
    env = {"PATH": "/bin"}
    assert local.worker_env(env, 0, 4, 0) == env  # a CPU host: nothing set
    alone = [local.worker_env(env, n, 2, 2) for n in range(2)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in alone] == ["0", "1"]
    assert not any("XLA_PYTHON_CLIENT_MEM_FRACTION" in e for e in alone)  # one worker per GPU: JAX's default
    shared = [local.worker_env(env, n, 5, 2) for n in range(5)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in shared] == ["0", "1", "0", "1", "0"]
    assert {e["XLA_PYTHON_CLIENT_MEM_FRACTION"] for e in shared} == {"0.300"}  # three share GPU 0
    own = local.worker_env({**env, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}, 1, 8, 1)
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in own and own["CUDA_VISIBLE_DEVICES"] == "0"
    assert env == {"PATH": "/bin"}  # the caller's mapping is not changed


def test_slurm_writes_one_array_over_the_unfinished_runs_and_submits_it(micro, monkeypatch, capsys):
    tmp = micro.parent
    monkeypatch.setenv("PATH", f"{_fake_sbatch(tmp)}{os.pathsep}{os.environ['PATH']}")
    runs = expand(load_spec(micro))
    Path(runs[0].out).mkdir(parents=True)
    (Path(runs[0].out) / "record.json").write_text("{}")  # done: left out of the array
    assert main(["sweep", "run", str(micro), "--runner", "slurm", "--dry-run", "--partition", "gpu"]) == 0
    assert not (tmp / "sbatch_calls.txt").exists()  # a dry run submits nothing
    assert "#SBATCH --array=0-4" in capsys.readouterr().out
    assert main(["sweep", "run", str(micro), "--runner", "slurm", "--max-parallel", "2"]) == 0
    assert "submitted job array 4242: 5 runs (1 done already)" in capsys.readouterr().out
    root = Path(load_spec(micro).out)
    job = json.loads((root / "slurm_job.json").read_text())
    script = Path(job["script"]).read_text()
    assert "#SBATCH --array=0-4%2" in script and "#SBATCH --requeue" in script
    assert "#SBATCH --gpus-per-task=1" in script and f"#SBATCH --output={root.resolve()}/logs/%A_%a.log" in script
    assert "exec " in script and "-m scaling_jax.cli sweep run-one \"$RUN\"" in script
    assert f"LIST={job['run_list']}" in script and "SLURM_ARRAY_TASK_ID + 1" in script
    listed = Path(job["run_list"]).read_text().split()
    assert listed == [str(Path(r.out).resolve()) for r in runs[1:]]
    assert all((Path(p) / "train.yaml").is_file() for p in listed)
    assert (tmp / "sbatch_calls.txt").read_text().split() == ["--parsable", job["script"]]
    assert job["job_id"] == "4242" and Path(job["script"]).parent == root


def test_plan_json_lists_runs_with_roles(micro, capsys):
    assert main(["sweep", "plan", str(micro), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [set(r) for r in rows] == [{"name", "model", "dataset", "N", "D", "M", "C", "role"}] * 6
    assert rows[-1]["role"] == "target" and rows[0]["C"] == 6 * rows[0]["N"] * rows[0]["D"]
    assert main(["sweep", "plan", str(micro), "out=/tmp/elsewhere"]) == 0
    assert "-> /tmp/elsewhere" in capsys.readouterr().out


def test_bad_spec_is_one_line_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nbase: nope.yaml\nout: o\ngrid: [{models: [tiny_d16], multipliers: [0]}]\n")
    assert main(["sweep", "plan", str(bad)]) == 2
    assert "bad.yaml: grid[0].multipliers: 0.0 must be a positive number" in capsys.readouterr().err
