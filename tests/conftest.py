import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Every test process caches compiled programs in this session's own folder, not the user's
    (so a run's time does not depend on what an earlier run left in ~/.cache), as the CLI does:
    fits of one model and shape (NUTS above all, ~20 s to compile) compile once per session."""
    import tempfile

    from scaling_jax.cache import enable_compilation_cache

    os.environ.setdefault("SCALING_JAX_COMPILATION_CACHE", tempfile.mkdtemp(prefix="scaling_jax_test_cache_"))
    enable_compilation_cache()


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each module, drop JAX's in-memory compiled programs (a later module's same program
    comes back from the persistent cache): a worker that held every program of the suite grew to
    6 GB and twice died serializing a NUTS program late in the run."""
    yield
    import gc

    import jax

    jax.clear_caches()
    gc.collect()


def _shared(env: str, name: str, marker: str) -> Path:
    """``$env``, else ``../shared/name``; the run fails (naming the variable) without ``marker`` in it."""
    path = Path(os.environ.get(env) or REPO.parent / "shared" / name)
    if not (path / marker).exists():
        pytest.fail(f"{name} not found at {path}; set {env}")
    return path


@pytest.fixture(scope="session")
def testbed_dir() -> Path:
    """The paper's released testbed: $SCALING_JAX_TESTBED, else ../shared/testbed."""
    return _shared("SCALING_JAX_TESTBED", "testbed", "models")


@pytest.fixture(scope="session")
def icl_dir() -> Path:
    """The paper's task files: $SCALING_JAX_ICL_DIR, else ../shared/icl_tasks."""
    return _shared("SCALING_JAX_ICL_DIR", "icl_tasks", "heavy.yaml")


@pytest.fixture(scope="session")
def testbed(testbed_dir):
    from scaling_jax.testbed import load_testbed

    return load_testbed(testbed_dir)


@pytest.fixture
def no_rank_promotion(monkeypatch):
    """Implicit rank promotion (``x_BxLxD * g_D``) raises, as in nanodo's tests: broadcasts across
    ranks must be written out. Subprocesses inherit JAX_NUMPY_RANK_PROMOTION=raise."""
    import jax

    old = jax.config.jax_numpy_rank_promotion
    jax.config.update("jax_numpy_rank_promotion", "raise")
    monkeypatch.setenv("JAX_NUMPY_RANK_PROMOTION", "raise")
    yield
    jax.config.update("jax_numpy_rank_promotion", old)


# --- planning (tests/plan, tests/cli/test_plan_cli.py) ---------------------------------------
SYNTHETIC_LOSS = {"E": 1.85, "a": 200.0, "b": 350.0, "eta": 0.135}
SYNTHETIC_ERROR = {"epsilon": 0.87, "k": 2.06, "gamma": 0.68}
SYNTHETIC_FIT_NM = [(1.06e7, 20.0), (7.9e7, 20.0), (1.54e8, 20.0), (4.12e8, 20.0), (1.06e7, 320.0)]


def synthetic_laws(n: int = 2000, spread: float = 0.01, seed: int = 0, disc_scale: float = 0.3):
    """Posterior-like draws around a known Eq. 4 and Eq. 5 (no sampler): each parameter scattered
    by ``spread`` (relative), fit noise 0.5 %, the prior discrepancy's draws × ``disc_scale`` (a
    calibrated one is narrower than the prior), RedPajama-like fit points."""
    import numpy as np

    from scaling_jax.laws.bayes import Discrepancy, ErrorLaw, LossLaw, Support, prior_discrepancy
    from scaling_jax.laws.bayes.design import log_cm

    rng = np.random.default_rng(seed)
    draw = lambda v: v * np.exp(spread * rng.standard_normal(n))  # noqa: E731
    N, M = np.array(SYNTHETIC_FIT_NM).T
    C = 6 * N * N * M
    samples = {k: draw(v) for k, v in {**SYNTHETIC_LOSS, **SYNTHETIC_ERROR}.items()}
    samples["sigma_loss"] = samples["sigma_error"] = np.full(n, 0.005)
    def disc(kind):
        d = prior_discrepancy(kind, n)
        return Discrepancy(d.floor * disc_scale, d.tau_DxK * disc_scale, d.axes, f"prior x {disc_scale:g}")

    loss = LossLaw.from_samples(samples, Support(log_cm(C, M)), disc("loss"))
    L_fit = SYNTHETIC_LOSS["E"] + (200 * M**0.135 + 350 * M**-0.135) * C**-0.135
    error = ErrorLaw.from_samples(samples, Support(np.log(L_fit)[:, None]), disc("error"))
    return loss, error


def synthetic_posterior_file(path: Path, *, law: str = "overtrain", dataset: str = "rpj", n: int = 400) -> Path:
    """A posterior.nc as `fit --estimator bayes` writes one, from :func:`synthetic_laws` (2 chains)."""
    import arviz as az
    import numpy as np

    from scaling_jax.laws.bayes.posterior_file import attach
    from scaling_jax.laws.figures import write_netcdf

    loss, error = synthetic_laws(n)
    post = {k: np.asarray(getattr(loss, k)).reshape(2, -1) for k in ("E", "a", "b", "eta")}
    post |= {k: np.asarray(getattr(error, k)).reshape(2, -1) for k in ("epsilon", "k", "gamma")}
    post["sigma_loss"] = loss.sigma.reshape(2, -1)
    post["sigma_error"] = error.sigma.reshape(2, -1)
    idata = az.from_dict(posterior=post, sample_stats={"diverging": np.zeros((2, n // 2), bool)})
    return write_netcdf(attach(idata, law, loss, error, dataset), path)


@pytest.fixture(scope="session")
def plan_fits(testbed):
    """NUTS posteriors of the testbed for the planning checks, each sampled once per session on
    first use (2 chains × (250 warm-up + 400 draws)): ``table1(ds)`` Eq. 4 on the five Table-1
    runs (chained to Eq. 5 for ``chained=True``), ``fewer(ds)`` on four (the largest-compute run
    left out). Sampling all seven as independent blocks of one model (one compilation) was
    tried: NUTS then steps at the hardest block's pace and took 320 s against ~100 s."""
    import warnings

    from scaling_jax.laws.bayes import NutsConfig
    from scaling_jax.laws.bayes.fit import fit_bayes
    from scaling_jax.paper import recipe
    from scaling_jax.paper.posterior_check import DROPPED_FOR_FEWER, fit_set, loss_data

    config = NutsConfig(num_warmup=250, num_samples=400, num_chains=2)
    cache: dict = {}

    class Fits:
        def table1(self, ds, chained=False):
            if ("chained", ds) in cache:
                return cache["chained", ds]
            key = ("chained" if chained else "loss", ds)
            if key not in cache:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    if chained:
                        cache[key] = fit_set(testbed, ds, config).laws()
                    else:
                        cache[key] = (fit_bayes("overtrain", loss=loss_data(recipe.loss_fit_runs(testbed, ds)),
                                                config=config).loss_law, None)
            return cache[key]

        def fewer(self, ds):
            if ("fewer", ds) not in cache:
                runs = [r for r in recipe.loss_fit_runs(testbed, ds) if (r.model, round(r.M)) != DROPPED_FOR_FEWER]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    cache["fewer", ds] = fit_bayes("overtrain", loss=loss_data(runs), config=config).loss_law
            return cache["fewer", ds]

    return Fits()
