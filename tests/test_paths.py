"""The path layer: local folders and ``gs://`` (a GCS emulator on 127.0.0.1) read, write and
list alike; a missing bucket is an error naming the URL."""

import json
import uuid

import numpy as np
import pytest

from scaling_jax import paths
from scaling_jax.errors import InputNotFound, UserError
from tests.gcs import BUCKET, gcs_emulator  # noqa: F401 (fixture)


def _write_tree(root: str) -> None:
    paths.write_json(paths.join(root, "record.json"), {"loss": 3.25, "name": "r"})
    paths.write_text(paths.join(root, "metrics.jsonl"), '{"step": 1}\n')
    paths.write_bytes(paths.join(root, "checkpoints", "10", "blob"), b"\x00\x01")
    paths.write_text(paths.join(root, "record.json"), '{"loss": 3.0}\n')  # replaced whole


def _view(root: str) -> dict:
    return {
        "top": paths.listdir(root),
        "ckpt": paths.listdir(paths.join(root, "checkpoints")),
        "record": paths.read_text(paths.join(root, "record.json")),
        "blob": paths.read_bytes(paths.join(root, "checkpoints", "10", "blob")),
        "exists": [paths.exists(paths.join(root, n)) for n in ("record.json", "checkpoints", "nope.json")],
        "is_dir": [paths.is_dir(paths.join(root, n)) for n in ("checkpoints", "nope")],
    }


@pytest.mark.usefixtures("gcs_emulator")
def test_local_and_gcs_hold_the_same_files(tmp_path):
    remote = f"gs://{BUCKET}/{uuid.uuid4().hex}/run"
    for root in (str(tmp_path / "run"), remote):
        _write_tree(root)
    local, gcs = _view(str(tmp_path / "run")), _view(remote)
    assert local == gcs
    assert local["top"] == ["checkpoints", "metrics.jsonl", "record.json"] and local["record"] == '{"loss": 3.0}\n'
    assert local["exists"] == [True, True, False] and local["is_dir"] == [True, False]
    with pytest.raises(InputNotFound, match=f"{remote}/nope.json: not found"):
        paths.read_bytes(f"{remote}/nope.json")
    with pytest.raises(ValueError, match="Out of range float values"):
        paths.write_json(f"{remote}/bad.json", {"loss": float("nan")})
    assert not paths.exists(f"{remote}/bad.json")


@pytest.mark.usefixtures("gcs_emulator")
def test_missing_bucket_is_named():
    with pytest.raises(InputNotFound, match="no-such-bucket/run/record.json: bucket gs://no-such-bucket not found"):
        paths.write_text("gs://no-such-bucket/run/record.json", "{}")
    with pytest.raises(InputNotFound, match="gs://no-such-bucket/run/record.json"):
        paths.read_text("gs://no-such-bucket/run/record.json")
    with pytest.raises(UserError, match="gs:///x: no bucket name"):
        paths.write_text("gs:///x", "{}")


@pytest.mark.usefixtures("gcs_emulator")
def test_token_corpus_on_gcs():
    from scaling_jax.data import store

    root = f"gs://{BUCKET}/{uuid.uuid4().hex}/corpus"
    w = store.TokenWriter(paths.join(root, "train"), chunk=8)
    w.append(np.arange(20, dtype=np.int32))
    w.flush()
    store.write_metadata(root, {"format": store.FORMAT, "vocab_size": 32})
    assert store.existing_parts(root) == ["train", "metadata.json"]
    assert store.read_metadata(root)["vocab_size"] == 32
    assert store.open_array(paths.join(root, "train")).read().result().tolist() == list(range(20))


@pytest.mark.usefixtures("gcs_emulator")
def test_metrics_log_on_gcs_matches_local_and_resumes(tmp_path):
    from scaling_jax.train.metrics import MetricsLog

    remote = f"gs://{BUCKET}/{uuid.uuid4().hex}/run"
    for out in (str(tmp_path), remote):
        log = MetricsLog(out, enabled=True, tensorboard=False, resume_step=None)
        for step in (1, 2, 3):
            log.write(step, "train", {"loss": 1.0 / step})
        log.close()
        log = MetricsLog(out, enabled=True, tensorboard=False, resume_step=2)  # resumed at step 2
        log.write(3, "train", {"loss": 0.5})
        log.close()
    local = paths.read_text(paths.join(str(tmp_path), "metrics.jsonl"))
    assert paths.read_text(paths.join(remote, "metrics.jsonl")) == local
    assert [json.loads(ln)["loss"] for ln in local.splitlines()] == [1.0, 0.5, 0.5]


def test_emulator_host_reaches_tensorstore():
    env = {"STORAGE_EMULATOR_HOST": "127.0.0.1:4443", "TENSORSTORE_GCS_HTTP_URL": "http://old"}
    paths.use_emulator(env)
    assert env["TENSORSTORE_GCS_HTTP_URL"] == "http://127.0.0.1:4443" and env["GOOGLE_AUTH_TOKEN_FOR_TESTING"]
    env = {}
    paths.use_emulator(env)
    assert env == {}


@pytest.mark.usefixtures("gcs_emulator")
def test_records_in_a_bucket_read_like_a_local_folder(tmp_path, testbed):
    from scaling_jax.testbed import load_testbed
    from scaling_jax.testbed.points_io import read_points

    runs = testbed.select(dataset="c4_original").runs[:6]
    remote = f"gs://{BUCKET}/{uuid.uuid4().hex}/runs"
    for root in (str(tmp_path), remote):
        for r in runs:
            paths.write_text(paths.join(root, r.name, "record.json"), r.to_json() + "\n")
    local_tb, gcs_tb = load_testbed(tmp_path), load_testbed(remote + "/")
    assert [r.name for r in gcs_tb] == [r.name for r in local_tb] == sorted(r.name for r in runs)
    assert gcs_tb.runs[0].source == f"{remote}/{gcs_tb.runs[0].name}/record.json"
    a, b = read_points(str(tmp_path), val_set="c4_val"), read_points(remote, val_set="c4_val")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match=f"gs://{BUCKET}/nothing-here: testbed folder not found"):
        load_testbed(f"gs://{BUCKET}/nothing-here")
