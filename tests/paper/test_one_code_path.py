"""``fit --estimator bayes --law overtrain`` on a CSV of a set's Table-1 points gives the same
draws and bands as the ``posterior`` check's independent fit of that set: one code path."""

import jax
import numpy as np
import pytest

from scaling_jax.laws.bayes import NutsConfig
from scaling_jax.laws.bayes.fit import fit_bayes
from scaling_jax.laws.fit_report import fit_points
from scaling_jax.paper import recipe
from scaling_jax.paper.posterior_check import loss_data
from scaling_jax.testbed.points_io import parse_target, read_points


@pytest.fixture
def shared_compilation(tmp_path):
    """Both fits compile the same program: the second reuses it (JAX's persistent cache, on
    here even where the test session's is not)."""
    old = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", old or str(tmp_path / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    yield
    jax.config.update("jax_compilation_cache_dir", old)


@pytest.mark.slow
def test_fit_bayes_on_a_csv_equals_the_posterior_checks_fit(testbed, tmp_path, shared_compilation):
    runs = recipe.loss_fit_runs(testbed, "rpj")
    csv = tmp_path / "table1.csv"
    csv.write_text("N,D,loss\n" + "".join(f"{r.N!r},{r.D!r},{r.loss(recipe.LOSS_VAL_SET)!r}\n" for r in runs))
    config = NutsConfig(num_warmup=200, num_samples=200, num_chains=2)
    target = parse_target("6.9e9,1.38e11", "overtrain")
    user = fit_points(read_points(csv), "overtrain", "bayes", config=config, targets=[target])
    paper = fit_bayes("overtrain", loss=loss_data(runs), config=config)
    for k in ("E", "a", "b", "eta", "sigma_loss"):
        np.testing.assert_array_equal(user.bayes.posterior.samples[k], paper.posterior.samples[k])
    band = paper.bands(C=[target["C"]], M=[target["M"]])["loss"]
    row = user.body["predictions"][0]["loss"]
    assert row["median"] == pytest.approx(float(band.median[0]), rel=1e-12)
    assert (row["lo95"], row["hi95"]) == pytest.approx((float(band.lo[95][0]), float(band.hi[95][0])), rel=1e-12)
