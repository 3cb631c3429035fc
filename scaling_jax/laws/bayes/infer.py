"""NUTS over a NumPyro model in float64, several chains vectorised, with diagnostics.

A fresh ``MCMC`` is built for every run: re-running one vectorised ``MCMC`` object on new
arrays fails in NumPyro 0.22 (see ENVIRONMENT.md). The same seed gives the same draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import jax
import numpy as np

RHAT_MAX = 1.01


@dataclass(frozen=True)
class NutsConfig:
    """Sampler settings; defaults are 4 chains × (1,000 warm-up + 2,000 draws).

    2,000 draws, not 1,000: with 1,000 the chained Table-1 fits' smallest ESS is ~600-900 and
    split R-hat's own sampling noise is about as large as the 0.01 margin (RPJ seed 3 gave
    1.011 on ε; seeds 0-4 of the three sets ranged 1.002-1.011). Doubling the draws halves that
    noise (RPJ seed 3: 1.004) for ~15 % more wall time, since compilation dominates a fit;
    doubling the warm-up instead also passed (1.007) but cost ~50 % more.
    tests/laws/bayes/test_convergence.py holds R-hat ≤ 1.01 for seeds 0-4 of every set.
    """

    num_warmup: int = 1000
    num_samples: int = 2000
    num_chains: int = 4
    seed: int = 0
    chain_method: str = "vectorized"
    # Small steps: the posteriors have a mild funnel in their scales (σ_fit; s_η when pooled).
    # With an earlier model that sampled discrepancy scales in the fit, 0.95 gave the chained
    # Table-1 fits 10-61 divergences of 4,000 and 0.99 gave 0-1, for about the same time; the
    # pooled fit still has 10-15 at 0.99 (BENCHMARKS.md).
    target_accept_prob: float = 0.99
    dense_mass: bool = True  # the law's parameters stay correlated even after centring
    max_tree_depth: int = 10

    def __post_init__(self):
        for name in ("num_warmup", "num_samples", "num_chains"):
            if getattr(self, name) < 1:
                raise ValueError(f"NutsConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.chain_method not in ("vectorized", "sequential", "parallel"):
            raise ValueError(
                f"NutsConfig.chain_method must be vectorized|sequential|parallel, got {self.chain_method!r}"
            )


@dataclass(frozen=True)
class Diagnostics:
    """Split R-hat and effective sample size per parameter (worst component), divergences."""

    rhat: dict[str, float]
    ess: dict[str, float]
    divergences: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def max_rhat(self) -> float:
        return max(self.rhat.values())

    @property
    def min_ess(self) -> float:
        return min(self.ess.values())

    def to_dict(self) -> dict:
        return {"max_rhat": self.max_rhat, "min_ess": self.min_ess, "divergences": self.divergences}


@dataclass(frozen=True)
class Posterior:
    """Draws (chains merged, float64 numpy) of every sampled and deterministic site."""

    samples: dict[str, np.ndarray]
    diagnostics: Diagnostics
    mcmc: object = field(default=None, repr=False, compare=False)  # the numpyro MCMC that drew them

    @property
    def num_draws(self) -> int:
        return len(next(iter(self.samples.values())))

    def to_inference_data(self):
        """The run as ArviZ InferenceData (posterior by chain, sample stats, observed data)."""
        import arviz as az

        if self.mcmc is None:
            raise ValueError("this Posterior keeps no MCMC run to convert")
        with jax.enable_x64(True):
            return az.from_numpyro(self.mcmc)


def diagnose(grouped: dict[str, np.ndarray], diverging_CxS: np.ndarray, num_chains: int) -> Diagnostics:
    """R-hat/ESS of each site from ``grouped`` (chain, draw, ...) draws; warn by parameter name."""
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    rhat, ess = {}, {}
    for name, x in grouped.items():
        x = np.asarray(x, np.float64)
        if num_chains > 1 or x.shape[1] >= 4:
            rhat[name] = float(np.nanmax(split_gelman_rubin(x)))
        else:
            rhat[name] = float("nan")
        ess[name] = float(np.nanmin(effective_sample_size(x)))
    msgs = [f"NUTS: R-hat {v:.3f} > {RHAT_MAX} for parameter {k!r}" for k, v in rhat.items() if v > RHAT_MAX]
    n_div = int(np.sum(diverging_CxS))
    if n_div:
        worst = _divergence_suspect(grouped, np.asarray(diverging_CxS, bool))
        msgs.append(f"NUTS: {n_div} divergent transitions; they sit furthest from the bulk in parameter {worst!r}")
    for m in msgs:
        warnings.warn(m, RuntimeWarning, stacklevel=3)
    return Diagnostics(rhat=rhat, ess=ess, divergences=n_div, warnings=tuple(msgs))


def _divergence_suspect(grouped: dict[str, np.ndarray], div_CxS: np.ndarray) -> str:
    """The parameter whose divergent draws differ most (in posterior sds) from all draws."""
    best, best_shift = next(iter(grouped)), -1.0
    for name, x in grouped.items():
        flat = np.asarray(x, np.float64).reshape(div_CxS.size, -1)
        sd = flat.std(axis=0) + 1e-300
        shift = np.max(np.abs(flat[div_CxS.ravel()].mean(axis=0) - flat.mean(axis=0)) / sd)
        if shift > best_shift:
            best, best_shift = name, float(shift)
    return best


def run_nuts(model: Callable, *args, config: NutsConfig = NutsConfig(), **kwargs) -> Posterior:
    """Sample ``model(*args, **kwargs)`` with NUTS in float64; diagnostics on every site
    (sampled and deterministic, so warnings use the paper's names E, a, b, η too).

    ``args`` and ``kwargs`` are pytrees of arrays, passed to the compiled sampler as arguments
    (bind anything else into ``model`` with ``functools.partial``): another fit of the same model
    and shapes reuses the program, from memory or from the persistent compilation cache."""
    from numpyro.infer import MCMC, NUTS, init_to_median

    with jax.enable_x64(True):
        kernel = NUTS(
            model,
            target_accept_prob=config.target_accept_prob,
            max_tree_depth=config.max_tree_depth,
            dense_mass=config.dense_mass,
            init_strategy=init_to_median(num_samples=15),
        )
        mcmc = MCMC(
            kernel,
            num_warmup=config.num_warmup,
            num_samples=config.num_samples,
            num_chains=config.num_chains,
            chain_method=config.chain_method,
            progress_bar=False,
            jit_model_args=True,  # data as arguments: one compiled sampler per model and shape
        )
        mcmc.run(jax.random.PRNGKey(config.seed), *args, extra_fields=("diverging",), **kwargs)
        grouped = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        diverging = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
    diag = diagnose(grouped, diverging, config.num_chains)
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in grouped.items()}
    return Posterior(samples=flat, diagnostics=diag, mcmc=mcmc)
