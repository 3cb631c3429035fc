"""Two processes on localhost (jax.distributed, CPU collectives) train one model together
and agree with the single-process run of the same config."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tests.train.conftest import REPO

CLI = "import sys; from scaling_jax.cli import main; sys.exit(main(sys.argv[1:]))"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(out):
    return [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()
            if json.loads(ln)["kind"] == "train"]


@pytest.mark.slow
def test_two_processes_agree_with_one(tmp_path, tiny_yaml):
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu",
           "JAX_NUMPY_RANK_PROMOTION": "raise"}
    env.pop("XLA_FLAGS", None)
    tiny_yaml.write_text(tiny_yaml.read_text().replace("tokens: 2560", "tokens: 1280"))  # 10 steps
    port = _free_port()
    multi, single = tmp_path / "multi", tmp_path / "single"
    procs = [subprocess.Popen([sys.executable, "-c", CLI, "train", str(tiny_yaml), "--out", str(multi),
                               "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                               "--process-id", str(i)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    one = subprocess.run([sys.executable, "-c", CLI, "train", str(tiny_yaml), "--out", str(single)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    try:
        logs = [p.communicate(timeout=240)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert one.returncode == 0, one.stderr[-3000:]
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-2000:] for log in logs)
    a, b = _rows(single), _rows(multi)
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 11))
    for ra, rb in zip(a, b):
        assert abs(ra["loss"] - rb["loss"]) < 1e-4 * ra["loss"]
    rec_a = json.loads((single / "record.json").read_text())
    rec_b = json.loads((multi / "record.json").read_text())
    assert abs(rec_a["losses"]["synthetic"] - rec_b["losses"]["synthetic"]) < 1e-4
    assert sorted(p.name for p in (multi / "checkpoints").iterdir() if p.name.isdigit()) == ["10"]
