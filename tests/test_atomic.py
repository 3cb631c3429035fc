import json
import os

import pytest

from scaling_jax import atomic


def test_write_json_roundtrip_and_no_temp_left(tmp_path):
    p = atomic.write_json(tmp_path / "sub" / "x.json", {"a": 1})
    assert json.loads(p.read_text()) == {"a": 1}
    assert os.listdir(p.parent) == ["x.json"]


def test_failed_write_keeps_old_file(tmp_path):
    p = tmp_path / "x.json"
    atomic.write_json(p, {"old": True})

    def boom(f):
        f.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic.write_atomic(p, boom)
    assert json.loads(p.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["x.json"]


def test_nan_is_refused(tmp_path):
    with pytest.raises(ValueError):
        atomic.write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic.write_text(tmp_path / "x.txt", "hi")
    finally:
        os.umask(old)
    assert (p.stat().st_mode & 0o777) == 0o644
