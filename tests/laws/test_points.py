"""Fit points padded to a few compiled sizes: the optimum does not move, nearby sizes share a program."""

import jax
import numpy as np
import pytest

from scaling_jax.laws import fit
from scaling_jax.laws.points import pad_points, padded_size
from scaling_jax.laws.starts import start_grid

TRUE = {"E": 1.9, "a": 180.0, "b": 420.0, "eta": 0.13}


def test_padded_sizes_grow_by_at_most_half():
    sizes = [padded_size(n) for n in range(1, 200)]
    assert sizes[:8] == [8] * 8 and padded_size(9) == 12 and padded_size(13) == 16 and padded_size(17) == 24
    assert all(padded_size(n) >= n for n in range(1, 200))
    assert all(padded_size(n) <= max(8, 1.5 * n) for n in range(1, 200))
    assert len(set(sizes)) == 11  # 8 12 16 24 32 48 64 96 128 192 256


def test_padding_copies_the_first_point_at_weight_zero():
    xs, y, W = pad_points((np.arange(1.0, 10.0),), np.arange(11.0, 20.0), np.ones((3, 9)))
    assert xs[0].shape == y.shape == (12,) and W.shape == (3, 12)
    np.testing.assert_array_equal(xs[0][9:], [1.0] * 3)
    np.testing.assert_array_equal(y[9:], [11.0] * 3)
    assert W[:, 9:].sum() == 0 and W[:, :9].sum() == 27


def _points(n, seed=0):
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e7, 4e8, n)
    M = np.resize([20.0, 80.0, 320.0], n)
    C = 6 * N * N * M
    L = np.asarray(fit.predict("overtrain", TRUE, C=C, M=M)) * np.exp(0.002 * rng.normal(size=n))
    return {"C": C, "M": M}, L


def test_a_padded_fit_reaches_the_unpadded_optimum():
    xs, y = _points(9)
    padded = fit.fit_law("overtrain", xs, y)
    starts = start_grid("overtrain")
    with jax.enable_x64(True):
        best, _ = fit._fit_batch("overtrain", starts, (xs["C"], xs["M"]), y, np.ones((1, 9)), 400, 1)
    np.testing.assert_allclose([padded.params[k] for k in ("E", "a", "b", "eta")], np.asarray(best.params[0]),
                               rtol=1e-9)
    assert padded.rss == pytest.approx(float(best.rss[0]), rel=1e-9)


def test_fits_of_nearby_sizes_share_one_compiled_program():
    fit._fit_batch.clear_cache()
    for n in (9, 10, 12):
        fit.fit_law("overtrain", *_points(n, seed=n))
    assert fit._fit_batch._cache_size() == 1
    fit.fit_law("overtrain", *_points(13))
    assert fit._fit_batch._cache_size() == 2
