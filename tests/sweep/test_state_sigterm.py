"""A SIGTERM that reaches a ``sweep worker`` while it sets up a run (before ``train`` starts its
loop) stops that run at its first step boundary: the worker answers 143 and the run is left
stopped (``pending`` in ``sweep status``), not trained to the end."""

import collections
import json
import signal
import subprocess
import sys
import time

from scaling_jax.cli import main
from scaling_jax.sweep.folders import write_run_configs
from scaling_jax.sweep.spec import expand, load_spec
from scaling_jax.sweep.state import STATE_FILE

from .conftest import REPO, micro_spec, write_spec


def test_sigterm_during_a_workers_run_setup_stops_the_run(tmp_path, capsys):
    spec = micro_spec(tmp_path, grid=[{"models": ["tiny_d16"], "multipliers": [2, 4]}])
    spec.pop("recipe")
    path = write_spec(tmp_path, spec)
    runs = expand(load_spec(path))
    write_run_configs(load_spec(path), runs)
    state = tmp_path / "runs" / runs[0].name / STATE_FILE

    worker = subprocess.Popen([sys.executable, "-m", "scaling_jax.cli", "sweep", "worker"], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        worker.stdin.write(f"{runs[0].out}\t{tmp_path / 'a.log'}\n")
        worker.stdin.flush()
        t0 = time.monotonic()
        while not (state.exists() and json.loads(state.read_text())["state"] == "running"):
            assert time.monotonic() - t0 < 120 and worker.poll() is None
            time.sleep(0.005)
        worker.send_signal(signal.SIGTERM)  # the run is marked running; its train() is still setting up
        assert worker.stdout.readline().strip() == "143"  # 7cbb090: 0, the run trained to the end
        worker.stdin.write(f"{runs[1].out}\t{tmp_path / 'b.log'}\n")  # after a SIGTERM: nothing more trains
        worker.stdin.close()
        assert worker.stdout.readline().strip() == "143"
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert json.loads(state.read_text())["state"] == "stopped"
    run = tmp_path / "runs" / runs[0].name
    assert not (run / "record.json").exists()
    metrics = run / "metrics.jsonl"
    rows = [json.loads(ln) for ln in metrics.read_text().splitlines()] if metrics.exists() else []
    assert not [k for k, n in collections.Counter((r["step"], r["kind"]) for r in rows).items() if n > 1]
    capsys.readouterr()
    assert main(["sweep", "status", str(path), "--json"]) == 0
    states = {r["name"]: r["state"] for r in json.loads(capsys.readouterr().out)}
    assert states == {runs[0].name: "pending", runs[1].name: "pending"}
