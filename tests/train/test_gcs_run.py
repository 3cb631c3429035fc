"""``train --out gs://bucket/run`` against a GCS emulator on 127.0.0.1: stopped by SIGTERM,
resumed from the bucket's checkpoint, it matches a straight local run bitwise."""

import json
import os
import signal
import uuid

import jax
import numpy as np
import pytest

from scaling_jax import paths
from scaling_jax.train import loop
from scaling_jax.train.config import load_train_config
from tests.gcs import BUCKET, gcs_emulator  # noqa: F401 (fixture)


def _rows(out) -> list[tuple]:
    rows = [json.loads(ln) for ln in paths.read_text(paths.join(str(out), "metrics.jsonl")).splitlines()]
    return [(r["step"], r["loss"], r["grad_norm"]) for r in rows if r["kind"] == "train"]


@pytest.mark.slow
@pytest.mark.usefixtures("gcs_emulator")
def test_gcs_run_stops_resumes_and_matches_local(tmp_path, tiny_yaml, monkeypatch):
    pytest.importorskip("gcsfs")
    cfg = load_train_config(tiny_yaml, ["budget.tokens=768", "checkpoint.every=3"])  # 6 steps
    local, remote = tmp_path / "local", f"gs://{BUCKET}/{uuid.uuid4().hex}/run"
    loop.train(cfg, local)

    calls, real = {"n": 0}, loop.global_batch

    def stop_at_3(*a, **kw):  # SIGTERM while step 3's batch is placed, as a preemption would
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **kw)

    monkeypatch.setattr(loop, "global_batch", stop_at_3)
    outcome = loop.train(cfg, remote)
    monkeypatch.undo()
    assert outcome.stopped_early and outcome.step == 3
    assert "3" in paths.listdir(paths.join(remote, "checkpoints"))
    assert not paths.exists(paths.join(remote, "record.json"))
    with pytest.raises(ValueError, match=f"{remote}: holds a previous run"):
        loop.train(cfg, remote)
    loop.train(cfg, remote, resume=True)

    assert _rows(remote) == _rows(local)
    record = json.loads(paths.read_text(paths.join(remote, "record.json")))
    assert record["losses"] == json.loads((local / "record.json").read_text())["losses"]
    assert json.loads(paths.read_text(paths.join(remote, "config.json"))) == json.loads(
        (local / "config.json").read_text())
    # eval reads the run from the bucket: same step, same parameters
    from scaling_jax.train.lm import load_run

    a, b = load_run(local), load_run(remote)
    assert a.step == b.step == 6 and a.config == b.config
    for x, y in zip(jax.tree.leaves(a.lm.params), jax.tree.leaves(b.lm.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.usefixtures("gcs_emulator")
def test_run_folders_are_located_alike_in_a_bucket(tmp_path):
    from scaling_jax.train.lm import _locate

    for root in (str(tmp_path / "run"), f"gs://{BUCKET}/{uuid.uuid4().hex}/run"):
        ckpts = paths.join(root, "checkpoints")
        paths.write_text(paths.join(ckpts, "7", "meta"), "{}")
        assert _locate(root) == (ckpts, None, root)
        assert _locate(root + "/") == (ckpts, None, root)
        assert _locate(paths.join(ckpts, "7")) == (ckpts, 7, root)
        assert _locate(ckpts) == (ckpts, None, root)
        with pytest.raises(ValueError, match="no such run folder"):
            _locate(paths.join(root, "missing"))
