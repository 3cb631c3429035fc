"""The paper's default fitting recipe (Gadre et al. 2024, Table 1) as data and selectors."""

from __future__ import annotations

from scaling_jax.errors import UserError
from scaling_jax.testbed import RunRecord, Testbed

LOSS_VAL_SET = "c4_val"
SMALL_MODELS = ("d=96_l=8_h=4", "d=512_l=8_h=4", "d=576_l=24_h=8", "d=1024_l=24_h=8")
# Eq. 4 is fitted on the four small models at M = 20 plus the smallest at M = 320.
LOSS_FIT = tuple((m, 20.0) for m in SMALL_MODELS) + (("d=96_l=8_h=4", 320.0),)
# Eq. 5 adds the 1.4B model at M = 20.
ERROR_FIT = LOSS_FIT + (("open_lm_1b", 20.0),)


def loss_fit_runs(tb: Testbed, dataset: str) -> tuple[RunRecord, ...]:
    return tuple(tb.find(dataset, m, M) for m, M in LOSS_FIT)


def error_fit_runs(tb: Testbed, dataset: str) -> tuple[RunRecord, ...]:
    return tuple(tb.find(dataset, m, M) for m, M in ERROR_FIT)


def targets(tb: Testbed, dataset: str) -> tuple[RunRecord, ...]:
    """The held-out extrapolations: 1.4B at the largest M of the set, 6.9B at M = 20."""
    big = tb.select(dataset=dataset, model="open_lm_1b").runs
    if not big:
        raise UserError(f"{tb.root}: no open_lm_1b runs for {dataset!r}: the recipe's targets are missing")
    return (max(big, key=lambda r: r.M), tb.find(dataset, "open_lm_7b", 20.0))


def missing_runs(tb: Testbed, dataset: str) -> list[str]:
    """The recipe's fit runs and targets (model at M) that ``tb`` lacks for ``dataset``."""
    wanted = ERROR_FIT + (("open_lm_7b", 20.0),)
    missing = [f"{m} at M={M:g}" for m, M in wanted if not tb.has(dataset, m, M)]
    if not tb.select(dataset=dataset, model="open_lm_1b").runs:
        missing.append("open_lm_1b at its largest M")
    return missing


def check_recipe_runs(tb: Testbed, dataset: str) -> None:
    """Raise a UserError listing what the recipe needs from ``dataset`` and ``tb`` lacks."""
    missing = missing_runs(tb, dataset)
    if missing:
        raise UserError(f"{tb.root or 'testbed'}: training set {dataset!r} lacks the paper recipe's run(s) "
                        f"{missing}; reproduce and posterior need the released testbed's runs")
