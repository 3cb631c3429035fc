"""Device prefetch: the same batches in the same order, and a state that resumes after the last batch
taken (not the last one read), stored as grain stores its own iterator's."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from etils import epath
from grain import checkpoint as grain_ckpt
from grain._src.python.checkpoint.handler import CheckpointHandler

from scaling_jax.data.pipeline import batches
from scaling_jax.data.synthetic import SyntheticConfig, SyntheticWindows
from scaling_jax.train.prefetch import DevicePrefetch

SOURCE = SyntheticWindows(SyntheticConfig(vocab_size=64, n_sources=8, successors=4), 16, "train")


def _grain():
    return iter(batches(SOURCE, global_batch=4, seed=0, shuffle=True, threads=1, prefetch=2))


def _rows(it, n):
    return [np.asarray(next(it)) for _ in range(n)]


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_same_batches_in_order(depth):
    want = _rows(_grain(), 8)
    got = _rows(DevicePrefetch(_grain(), jnp.asarray, depth), 8)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("depth", [0, 2])
def test_state_is_after_the_last_batch_taken(depth):
    plain = _grain()
    first = _rows(plain, 3)
    ahead = DevicePrefetch(_grain(), jnp.asarray, depth)
    _rows(ahead, 3)  # depth 2 has read 5
    assert ahead.get_state() == json.dumps(plain.get_state(), indent=4).encode()

    resumed = DevicePrefetch(_grain(), jnp.asarray, depth)
    resumed.set_state(ahead.get_state())
    for a, b in zip(_rows(plain, 4), _rows(resumed, 4)):
        np.testing.assert_array_equal(a, b)
    assert len(first) == 3


def test_grain_checkpoint_files_move_between_prefetch_and_grain(tmp_path):
    """Saved through grain's orbax handler by the wrapper, restored into a bare grain iterator (a
    checkpoint of a run with device prefetch resumes without, and back)."""
    ahead = DevicePrefetch(_grain(), jnp.asarray, 2)
    _rows(ahead, 5)
    handler = CheckpointHandler()
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    handler.save(epath.Path(tmp_path / "a"), args=grain_ckpt.CheckpointSave(ahead))
    bare = handler.restore(epath.Path(tmp_path / "a"), args=grain_ckpt.CheckpointRestore(_grain()))

    back = DevicePrefetch(_grain(), jnp.asarray, 2)
    handler.save(epath.Path(tmp_path / "b"), args=grain_ckpt.CheckpointSave(bare))
    handler.restore(epath.Path(tmp_path / "b"), args=grain_ckpt.CheckpointRestore(back))

    plain = _grain()
    _rows(plain, 5)
    want = _rows(plain, 3)
    for got in (_rows(bare, 3), _rows(back, 3)):
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)


def test_negative_depth_refused():
    with pytest.raises(ValueError, match="depth"):
        DevicePrefetch(_grain(), jnp.asarray, -1)
