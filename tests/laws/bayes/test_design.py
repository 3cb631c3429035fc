import numpy as np
import pytest

from scaling_jax.laws.bayes.design import Support, error_distance, log_cm, loss_distance

# Table-1-like design in (C, M): four sizes at M = 20, the smallest also at M = 320.
N = np.array([1e7, 8e7, 1.5e8, 4e8, 1e7])
M_FIT = np.array([20.0, 20, 20, 20, 320])
C_FIT = 6 * N * N * M_FIT


def test_offset_is_to_the_nearest_fit_point():
    s = Support(np.array([[0.0, 0.0], [2.0, 1.0]]))
    np.testing.assert_allclose(s.offset(np.array([[0.0, 0.0], [0.4, 0.1], [3.5, 0.5], [-1.0, 3.0]])),
                               [[0, 0], [0.4, 0.1], [1.5, -0.5], [-1.0, 3.0]])
    with pytest.raises(ValueError, match="shape"):
        Support(np.zeros(3))


def test_loss_distance_keeps_under_and_over_training_apart():
    support = Support(log_cm(C_FIT, M_FIT))
    np.testing.assert_allclose(loss_distance(support, C_FIT, M_FIT), 0.0)  # fit points are at distance 0
    # Same sizes at M = 5 and M = 80: offsets in ln M from the same size's M = 20 run.
    d = loss_distance(support, 6 * N[1:4] ** 2 * 5.0, np.full(3, 5.0))
    np.testing.assert_allclose(d[:, 1], np.log(4.0))
    assert np.all(d[:, 2] == 0.0)
    d = loss_distance(support, 6 * N[3] ** 2 * 80.0, 80.0)
    assert d[0, 2] > 0 and d[0, 1] == 0.0
    # 100x the largest fit compute at M = 20: only the ln C distance.
    np.testing.assert_allclose(loss_distance(support, 100 * C_FIT[3], 20.0), [[np.log(100.0), 0.0, 0.0]])


def test_error_distance_in_log_loss_keeps_leading_axes():
    support = Support(np.log([[2.5], [4.0]]))
    d = error_distance(support, np.array([[3.0, 2.0], [5.0, 4.0]]))
    assert d.shape == (2, 2, 1)
    np.testing.assert_allclose(d[..., 0], [[np.log(3.0 / 2.5), np.log(1.25)], [np.log(1.25), 0.0]])
