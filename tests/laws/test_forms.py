import numpy as np
import pytest

from scaling_jax.laws import forms


def test_chinchilla_overtrain_equivalence():
    p3 = {"E": 1.8, "A": 400.0, "B": 900.0, "alpha": 0.3, "beta": 0.3}
    p4 = forms.chinchilla_to_overtrain(p3)
    N = np.array([1e7, 1e8, 1.4e9, 6.9e9])
    D = np.array([2e8, 1e10, 9e11, 1.4e11])
    C, M = forms.compute(N, D), forms.multiplier(N, D)
    np.testing.assert_allclose(forms.overtrain(p4, C, M), forms.chinchilla(p3, N, D), rtol=1e-5)
    back = forms.overtrain_to_chinchilla(p4)
    for k in p3:
        np.testing.assert_allclose(back[k], p3[k], rtol=1e-6)


def test_optimal_multiplier_minimises_loss_at_fixed_compute():
    p = {"E": 1.5, "a": 50.0, "b": 800.0, "eta": 0.12}
    M_star = float(forms.optimal_multiplier(p))
    M = np.geomspace(M_star / 10, M_star * 10, 2001)
    L = np.asarray(forms.overtrain(p, 1e20, M))
    assert abs(np.log(M[np.argmin(L)] / M_star)) < 0.01


def test_error_law_and_chain():
    pe = {"epsilon": 0.8, "k": 2.0, "gamma": 0.5}
    assert float(forms.error(pe, 3.0)) == pytest.approx(0.8 - 2.0 * np.exp(-1.5), rel=1e-6)
    pl = {"E": 1.5, "a": 50.0, "b": 800.0, "eta": 0.12}
    L = forms.overtrain(pl, 1e21, 20.0)
    assert float(forms.chained_error(pl, pe, 1e21, 20.0)) == pytest.approx(float(forms.error(pe, L)), rel=1e-6)


def test_power_and_lookup():
    assert float(forms.power({"c": 1.0, "a": 2.0, "b": -0.5}, 4.0)) == pytest.approx(2.0)
    fn, names, inputs = forms.law("overtrain")
    assert names == ("E", "a", "b", "eta") and inputs == ("C", "M")
    with pytest.raises(ValueError, match="unknown law 'x'"):
        forms.law("x")
