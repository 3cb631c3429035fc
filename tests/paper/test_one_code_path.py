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
def no_cache_writes():
    """This test's NUTS program is not written to the session's persistent cache: serializing it
    crashed the CPU process twice in CI (a segfault inside ``executable.serialize()``, JAX 0.10.2),
    taking its pytest worker down. Both fits compile it (about 20 s more)."""
    old = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1e9)
    yield
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old)


@pytest.mark.slow
def test_fit_bayes_on_a_csv_equals_the_posterior_checks_fit(testbed, tmp_path, no_cache_writes):
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
