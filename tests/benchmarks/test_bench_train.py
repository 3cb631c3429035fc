"""benchmarks/bench_train.py's CPU mode runs end to end for a few steps (what the GPU mode runs at
the paper's sizes): model-only and fed steps, the profile's top ops, the whole loop with a periodic
checkpoint, and its table."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.name=tiny_d16", "model.set.seq_len=16", "model.set.vocab_size=64",
        "data.corpus.synthetic.vocab_size=64", "data.corpus.synthetic.n_sources=8", "budget.global_batch=8"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_train", REPO / "benchmarks" / "bench_train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cpu_mode_runs_a_few_steps(tmp_path, capsys):
    bench = _bench()
    out = tmp_path / "rows.json"
    bench.main(["--sizes", "cpu", "--steps", "4", "--every", "2", "--ckpt-every", "2", "--blocks", "1",
                "--block", "2", "--profile-steps", "1", "--json", str(out), *TINY])
    (row,) = json.loads(out.read_text())
    assert row["size"] == "tiny_d32" and row["batch"] == 8 and row["seq"] == 16 and row["remat"] == "none"
    assert row["model_s"] > 0 and row["loop_s"] > 0 and row["tokens_per_s"] > 0 and row["loop_tflops"] > 0
    assert row["mfu"] is None and row["model_mfu"] is None and row["record_speed"]["mfu"] is None  # the CPU
    assert row["mfu_with_saves"] is None
    assert row["save_extra_s"] is not None  # the loop saved a checkpoint inside the measured steps
    assert row["top_ops"] and 0 < sum(op["share"] for op in row["top_ops"]) <= 1 + 1e-9
    printed = capsys.readouterr().out
    assert "MFU" in printed and "tiny_d32" in printed and "top ops" in printed


def test_top_ops_reads_a_device_trace(tmp_path):
    """On an accelerator the device's "XLA Ops" line is counted, keyed by the HLO op, not the
    module line above it or the host's threads; an op nested in a loop counts once."""
    import gzip

    events = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/device:TPU:0"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "XLA Modules"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "XLA Ops"}},
        {"ph": "M", "name": "process_name", "pid": 2, "args": {"name": "/host:CPU"}},
        {"ph": "X", "pid": 1, "tid": 1, "ts": 0.0, "name": "jit_train_step", "dur": 150.0},
        {"ph": "X", "pid": 1, "tid": 2, "ts": 0.0, "name": "fusion.1", "dur": 60.0, "args": {"hlo_op": "fusion.1"}},
        {"ph": "X", "pid": 1, "tid": 2, "ts": 60.0, "name": "kernel", "dur": 20.0, "args": {"hlo_op": "dot.2"}},
        {"ph": "X", "pid": 1, "tid": 2, "ts": 80.0, "name": "fusion.1", "dur": 20.0, "args": {"hlo_op": "fusion.1"}},
        # a loop of 50 whose body holds a 30 dot: 20 of the loop's own, 30 of the dot's
        {"ph": "X", "pid": 1, "tid": 2, "ts": 100.0, "name": "while.3", "dur": 50.0, "args": {"hlo_op": "while.3"}},
        {"ph": "X", "pid": 1, "tid": 2, "ts": 110.0, "name": "kernel", "dur": 30.0, "args": {"hlo_op": "dot.2"}},
        {"ph": "X", "pid": 2, "tid": 3, "ts": 0.0, "name": "PjitFunction", "dur": 500.0},
    ]
    run = tmp_path / "plugins" / "profile" / "run"
    run.mkdir(parents=True)
    with gzip.open(run / "perfetto_trace.json.gz", "wt") as f:
        json.dump({"traceEvents": events}, f)
    ops = _bench().top_ops(str(tmp_path))
    assert [(o["op"], o["ms"] * 1e3) for o in ops] == [("fusion.1", 80.0), ("dot.2", 50.0), ("while.3", 20.0)]
    assert sum(o["share"] for o in ops) == pytest.approx(1.0)
