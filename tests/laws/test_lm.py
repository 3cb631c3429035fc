import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.laws import lm


def test_cholesky_solve_matches_numpy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 5))
    A, b = X.T @ X + 0.1 * np.eye(5), rng.normal(size=5)
    with jax.enable_x64(True):
        x = np.asarray(lm.cholesky_solve(jnp.asarray(A), jnp.asarray(b)))
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-10)


def _exp_model(p, x):
    (t,) = x
    return p[0] + p[1] * jnp.exp(-p[2] * t)


def test_recovers_parameters_from_many_starts_under_jit():
    t = np.linspace(0, 5, 12)
    true = np.array([0.5, 2.0, 1.3])
    with jax.enable_x64(True):
        y = _exp_model(jnp.asarray(true), (jnp.asarray(t),))
        starts = jnp.array([[0.0, 1.0, 0.5], [1.0, 0.5, 3.0], [0.2, 5.0, 0.1]])
        res = jax.jit(lambda s: lm.fit_starts(_exp_model, s, (jnp.asarray(t),), y))(starts)
        best, i = lm.best_of(res)
    assert res.params.shape == (3, 3) and res.converged.shape == (3,)
    assert bool(best.converged) and int(best.iterations) > 0
    np.testing.assert_allclose(np.asarray(best.params), true, rtol=1e-8)
    assert float(best.rss) < 1e-20


def test_zero_weight_drops_a_point():
    t = np.linspace(0, 5, 12)
    true = np.array([0.5, 2.0, 1.3])
    with jax.enable_x64(True):
        y = np.array(_exp_model(jnp.asarray(true), (jnp.asarray(t),)))
        y[3] += 10.0  # an outlier, weighted out
        w = np.ones_like(y)
        w[3] = 0.0
        res = lm.fit_starts(_exp_model, jnp.array([[0.0, 1.0, 0.5]]), (jnp.asarray(t),), jnp.asarray(y), jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(res.params[0]), true, rtol=1e-7)


def test_max_iter_reports_not_converged():
    t = np.linspace(0, 5, 12)
    with jax.enable_x64(True):
        y = _exp_model(jnp.array([0.5, 2.0, 1.3]), (jnp.asarray(t),))
        res = lm.fit_starts(_exp_model, jnp.array([[5.0, 0.1, 0.01]]), (jnp.asarray(t),), y, max_iter=2)
    assert int(res.iterations[0]) == 2 and not bool(res.converged[0])


def test_lanes_are_independent():
    """A start's answer doesn't depend on which other starts share its batch."""
    t = np.linspace(0, 5, 12)
    with jax.enable_x64(True):
        y = _exp_model(jnp.array([0.5, 2.0, 1.3]), (jnp.asarray(t),))
        starts = jnp.array([[0.0, 1.0, 0.5], [1.0, 0.5, 3.0], [0.2, 5.0, 0.1]])
        together = lm.fit_starts(_exp_model, starts, (jnp.asarray(t),), y)
        alone = lm.fit_starts(_exp_model, starts[1:2], (jnp.asarray(t),), y)
    np.testing.assert_array_equal(np.asarray(together.params[1]), np.asarray(alone.params[0]))
    assert int(together.iterations[1]) == int(alone.iterations[0])
