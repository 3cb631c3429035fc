"""The record's speed summary (train/throughput.py): medians over this start's intervals, the first
(compiling) one left out; a start that trained no step takes the earlier starts' train rows."""

import pytest

from scaling_jax.train.throughput import Meter, Speed

SPEED = Speed(tokens_per_step=100, flops_per_token=10, flops_per_token_6n=8, devices=1, device_kind="cpu",
              peak_flops=1e4)


def test_summary_is_this_starts_medians_else_the_earlier_rows():
    m = Meter(SPEED, 0)
    m.rows = [{"mfu": 0.9, "mfu_6n": 0.8, "tokens_per_s": 1.0, "step_time": 9.0},  # compiling: left out
              {"mfu": 0.1, "mfu_6n": 0.08, "tokens_per_s": 100.0, "step_time": 1.0},
              {"mfu": 0.3, "mfu_6n": 0.24, "tokens_per_s": 300.0, "step_time": 3.0}]
    earlier = [{"kind": "train", "mfu": 0.5, "mfu_6n": 0.4, "tokens_per_s": 500.0, "step_time": 5.0}]
    s = m.summary(earlier)
    assert s["tokens_per_s"] == 200.0 and s["mfu"] == pytest.approx(0.2) and s["intervals"] == 2  # earlier unused
    resumed_at_end = Meter(SPEED, 40)  # trained no step: the earlier start's rows
    s = resumed_at_end.summary([*earlier, {"kind": "train", "step": 40, "loss": 1.0}])  # a row without speed fields
    assert s["tokens_per_s"] == 500.0 and s["step_time"] == 5.0 and s["intervals"] == 1
    assert Meter(SPEED, 40).summary()["tokens_per_s"] is None  # nothing measured anywhere
