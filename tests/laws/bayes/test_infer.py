import warnings

import numpy as np
import pytest

from scaling_jax.laws.bayes.infer import NutsConfig, diagnose


def test_clean_chains_give_no_warning():
    rng = np.random.default_rng(0)
    grouped = {"eta": rng.normal(size=(4, 500)), "E": rng.normal(size=(4, 500))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = diagnose(grouped, np.zeros((4, 500), bool), 4)
    assert d.max_rhat < 1.01 and d.min_ess > 1000 and d.divergences == 0


def test_rhat_warning_names_the_parameter():
    rng = np.random.default_rng(0)
    stuck = rng.normal(size=(4, 500)) + np.arange(4)[:, None]  # chains disagree
    with pytest.warns(RuntimeWarning, match=r"R-hat .* for parameter 'eta'"):
        d = diagnose({"eta": stuck, "E": rng.normal(size=(4, 500))}, np.zeros((4, 500), bool), 4)
    assert d.rhat["eta"] > 1.01 and d.rhat["E"] < 1.01


def test_divergence_warning_names_the_parameter_they_cluster_in():
    rng = np.random.default_rng(0)
    sigma = np.abs(rng.normal(size=(4, 500)))
    div = sigma < 0.05  # divergences where the scale is tiny: the funnel
    with pytest.warns(RuntimeWarning, match=r"divergent transitions.*'sigma_loss'"):
        d = diagnose({"sigma_loss": sigma, "eta": rng.normal(size=(4, 500))}, div, 4)
    assert d.divergences == int(div.sum())


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="num_samples"):
        NutsConfig(num_samples=0)
    with pytest.raises(ValueError, match="chain_method"):
        NutsConfig(chain_method="threads")
