"""Every run reports its speed: per train row tokens/s, model FLOPs per token (exact and 6N), MFU
against the device's peak and the step time split; the record keeps the run's median MFU. The loop
reads the devices only at log rows and checkpoints; with device prefetch it resumes exactly."""

import dataclasses
import json
import statistics

import jax
import numpy as np
import pytest

from scaling_jax.model import flops
from scaling_jax.train import loop
from scaling_jax.train.config import load_train_config, model_config

FIELDS = ("tokens_per_s", "model_flops_per_token", "model_flops_per_token_6n", "mfu", "mfu_6n", "step_time",
          "step_time_data", "step_time_device", "step_time_host")


def _train_rows(out):
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "train"]


class _Watched:
    """A metric the step returned; records how many steps had been dispatched whenever it is read."""

    def __init__(self, value, dispatched: list, reads: list):
        self.value, self.dispatched, self.reads = value, dispatched, reads

    def _read(self):
        self.reads.append(len(self.dispatched))
        return np.asarray(self.value)

    def __array__(self, dtype=None, copy=None):
        return self._read()

    def __float__(self):
        return float(self._read())

    __bool__ = __int__ = __index__ = item = tolist = __float__


def _watch_reads(monkeypatch):
    """Wrap the loop's train step so that every read of a metric it returned is recorded."""
    dispatched, reads = [], []
    real_setup = loop.setup

    def setup(*a, **kw):
        s = real_setup(*a, **kw)

        def train_step(state, tokens):
            state, metrics = s.train_step(state, tokens)
            dispatched.append(1)
            return state, {k: _Watched(v, dispatched, reads) for k, v in metrics.items()}
        return dataclasses.replace(s, train_step=train_step)

    monkeypatch.setattr(loop, "setup", setup)
    return reads


@pytest.mark.slow  # the module's first run: it compiles the tiny model (the others reuse it)
def test_rows_carry_speed_and_mfu_against_the_given_peak(tmp_path, tiny_yaml, monkeypatch):
    # 20 steps, a row every 5, a checkpoint every 10; a made-up peak of 1 GFLOP/s per device.
    cfg = load_train_config(tiny_yaml, ["logging.every=5", "logging.peak_flops=1e9"])
    reads = _watch_reads(monkeypatch)
    outcome = loop.train(cfg, tmp_path)
    rows = _train_rows(tmp_path)
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    # Each step's metrics are read once, only at the rows (5, 10, 15, 20) and checkpoints (10, 20): no
    # sync between them (loss, ce, z_loss, grad_norm, lr of 20 steps).
    assert set(reads) <= {5, 10, 15, 20} and len(reads) == 20 * 5, reads

    mc = model_config(cfg)  # tiny_d16 at seq 16, vocab 64: d 16, 2 layers, f 256
    assert (mc.d_model, mc.n_layers, mc.ffn_dim, mc.vocab_size, mc.seq_len) == (16, 2, 256, 64, 16)
    # 3 · (2·4·16²·2 + 2·3·16·256·2 + 2·16·64 + 2·2·16·16·2 / 2) = 3 · (4,096 + 49,152 + 2,048 + 1,024)
    exact = 3 * (4_096 + 49_152 + 2_048 + 1_024)
    assert flops.flops_per_token(mc, exact=True) == exact
    tokens_per_step, devices = 8 * 16, jax.device_count()
    for r in rows:
        assert all(k in r for k in FIELDS), sorted(r)
        assert r["model_flops_per_token"] == exact and r["model_flops_per_token_6n"] == flops.flops_per_token(mc)
        assert r["mfu"] == pytest.approx(exact * r["tokens_per_s"] / (1e9 * devices), rel=1e-12)
        assert r["mfu_6n"] == pytest.approx(r["model_flops_per_token_6n"] * r["tokens_per_s"] / (1e9 * devices))
        assert r["tokens_per_s"] == pytest.approx(tokens_per_step / r["step_time"])
        parts = r["step_time_data"] + r["step_time_device"] + r["step_time_host"]
        assert r["step_time"] == pytest.approx(parts) and min(r[k] for k in FIELDS[-3:]) >= 0
    speed = outcome.record.hyperparameters["speed"]
    assert speed["mfu"] == pytest.approx(statistics.median(r["mfu"] for r in rows[1:]))  # the compile interval out
    assert speed["peak_flops"] == 1e9 and speed["devices"] == devices and speed["intervals"] == 3
    saved = json.loads((tmp_path / "record.json").read_text())["hyperparameters"]["speed"]
    assert saved["mfu"] == pytest.approx(speed["mfu"])


def test_an_unknown_device_reports_null_mfu_with_one_note(tmp_path, tiny_yaml, capsys):
    if jax.devices()[0].device_kind != "cpu":
        pytest.skip("the CPU is the device with no peak")
    cfg = load_train_config(tiny_yaml, ["logging.every=10"])
    outcome = loop.train(cfg, tmp_path)
    rows = _train_rows(tmp_path)
    assert rows and all(r["mfu"] is None and r["mfu_6n"] is None and r["tokens_per_s"] > 0 for r in rows)
    assert outcome.record.hyperparameters["speed"]["mfu"] is None
    err = capsys.readouterr().err
    assert err.count("no dense bf16 peak known for device kind 'cpu'") == 1 and "logging.peak_flops" in err


def test_sigterm_and_resume_with_device_prefetch_equals_a_straight_run(tmp_path, tiny_yaml, monkeypatch):
    """Batches placed two steps ahead are not lost or repeated across a stop at step 7: the checkpoint
    holds the data position of the last batch trained on."""
    from tests.train.test_loop import _params, _stop_at
    from tests.train.test_loop import _train_rows as losses

    straight, split = tmp_path / "straight", tmp_path / "split"
    loop.train(load_train_config(tiny_yaml), straight)
    cfg = load_train_config(tiny_yaml, ["data.device_prefetch=2"])
    _stop_at(monkeypatch, 9)  # batch 9 is placed while step 7 is taken
    outcome = loop.train(cfg, split)
    assert outcome.stopped_early and outcome.step == 7
    monkeypatch.undo()
    loop.train(cfg, split, resume=True)
    assert losses(split) == losses(straight)
    for a, b in zip(jax.tree.leaves(_params(straight, 20)), jax.tree.leaves(_params(split, 20))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
