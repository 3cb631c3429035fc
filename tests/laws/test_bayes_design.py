import numpy as np

from scaling_jax.laws.bayes.design import Box, leave_one_out_distance, log_cm


def test_distance_is_zero_inside_and_grows_outside():
    box = Box.around(np.array([[0.0, 0.0], [2.0, 1.0]]))
    d = box.distance(np.array([[1.0, 0.5], [3.5, 0.5], [-1.0, 3.0]]))
    np.testing.assert_allclose(d, [[0, 0], [1.5, 0], [1.0, 2.0]])


def test_leave_one_out_marks_edge_points_as_extrapolations():
    # Table-1-like design: four sizes at M = 20, the smallest also at M = 320.
    C = np.array([1e16, 7e17, 3e18, 2e19, 2e17])
    M = np.array([20.0, 20, 20, 20, 320])
    d = leave_one_out_distance(log_cm(C, M))
    assert d[0, 0] > 0 and d[3, 0] > 0  # smallest and largest C lie outside the others' range
    np.testing.assert_allclose(d[1:3], 0.0)  # interior points
    np.testing.assert_allclose(d[4], [0.0, np.log(16.0)])  # the lone M = 320 run, in ln M
