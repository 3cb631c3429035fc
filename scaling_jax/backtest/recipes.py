"""A recipe: which law, which estimator, which runs may be fitted.

Estimators: ``lsq`` least squares in loss (Levenberg–Marquardt); ``lsq_log`` least squares on
relative residuals ((ŷ − y)/y, the first-order log-loss residual: the same LM with point
weights 1/y², so it shares LM's compiled call); ``huber`` the robust log-space fit of
laws/huber.py. Designs: ``paper`` the paper's Table-1 shape (each model size's run nearest
M = 20, plus the smallest size's run nearest M = 320, each within a factor 2, ties to the larger
M), ``all`` every run below the cut, ``m10`` every run below the cut with M ≥ 10 (strongly
under-trained runs left out). ``bayes`` is the NUTS posterior of the law (laws/bayes, short
chains: ``fits.BAYES_NUTS``), predicting the posterior median of the law's loss; one sampler run
per (cut, set), about 12 s each here, so it is tried only when named (``all+bayes``, or e.g.
``eq4/bayes/paper``).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from scaling_jax.backtest.cuts import below as below_cut
from scaling_jax.errors import UserError
from scaling_jax.laws import forms

LAWS = ("overtrain", "chinchilla")
ESTIMATORS = ("lsq", "lsq_log", "huber", "bayes")
POINT_ESTIMATORS = ESTIMATORS[:3]  # the batched ones: ``all`` tries these
DESIGNS = ("paper", "all", "m10")
LAW_LABEL = {"overtrain": "eq4", "chinchilla": "eq3"}
MIN_M = 10.0  # the m10 design drops runs with M below this


def check_choices(what: str, fields) -> None:
    """Each ``(field, value, allowed)``: a UserError naming the field unless value is allowed."""
    for field, value, allowed in fields:
        if value not in allowed:
            raise UserError(f"{what} {field} {value!r}: one of {list(allowed)}")


@dataclasses.dataclass(frozen=True)
class Recipe:
    law: str  # "overtrain" (Eq. 4, alpha = beta) or "chinchilla" (Eq. 3)
    estimator: str  # "lsq", "lsq_log", "huber" or "bayes"
    design: str  # "paper", "all" or "m10"

    def __post_init__(self):
        check_choices("recipe", (("law", self.law, LAWS), ("estimator", self.estimator, ESTIMATORS),
                                 ("design", self.design, DESIGNS)))

    @property
    def name(self) -> str:
        return f"{LAW_LABEL[self.law]}/{self.estimator}/{self.design}"

    @property
    def n_params(self) -> int:
        return len(forms.law(self.law)[1])

    def to_json(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}

    def fit_mask(self, N: np.ndarray, D: np.ndarray, cut: float, axis: str = "C",
                 final_cut: float | None = None) -> np.ndarray:
        """Which runs this recipe may fit at ``cut`` along ``axis`` (compute ``C`` or size ``N``):
        never one beyond the cut, nor (a size cut) one above the final compute cut ``final_cut``:
        those are held out."""
        N, D = np.asarray(N, np.float64), np.asarray(D, np.float64)
        below = below_cut(axis, N, D, cut)
        if final_cut is not None:
            below &= below_cut("C", N, D, final_cut)
        M = D / N
        if self.design == "all":
            return below
        if self.design == "m10":
            return below & (M >= MIN_M * (1 - 1e-6))
        return below & _paper_design(N, M, below)


# The paper design's reach: a run within this factor of M = 20 (or 320) may stand in for it.
PAPER_M_FACTOR = 2.0
# Distances in log M are compared rounded to this many decimals (in units of the reach), so a grid
# value (M = 10 or 40 for the target 20) is in or out, and a tie is a tie, by the rule and never by
# floating-point rounding: M = 10 one ulp low is as near as M = 10.
_DECIMALS = 9


def _nearest(idx: np.ndarray, M: np.ndarray, target: float) -> int | None:
    """The run of ``idx`` nearest ``target`` in log M, or None when none lies within a factor
    ``PAPER_M_FACTOR`` of it. Of runs equally near (M = 10 and 40 for 20), the one with the larger
    M: at equal distance in log M the run with more tokens per parameter is the less under-trained."""
    if not idx.size:
        return None
    reach = np.log(PAPER_M_FACTOR)
    dist = np.round(np.abs(np.log(M[idx] / target)) / reach, _DECIMALS)  # in units of the reach
    order = np.lexsort((-M[idx], dist))  # nearest first, then the larger M
    best = order[0]
    return int(idx[best]) if dist[best] <= 1.0 else None


def _paper_design(N: np.ndarray, M: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """The paper's Table-1 shape among the available runs: per model size the run nearest M = 20
    (within a factor 2), plus the smallest size's run nearest M = 320 (within a factor 2)."""
    keep = np.zeros(N.shape, bool)
    sizes = np.unique(N[avail])
    for n in sizes:
        i = _nearest(np.flatnonzero(avail & (N == n)), M, 20.0)
        if i is not None:
            keep[i] = True
    if sizes.size:
        i = _nearest(np.flatnonzero(avail & (N == sizes[0])), M, 320.0)
        if i is not None:
            keep[i] = True
    return keep


def candidates(bayes: bool = False) -> tuple[Recipe, ...]:
    """Every law × point estimator × design (18 recipes); with ``bayes`` the 6 Bayesian ones too."""
    estimators = ESTIMATORS if bayes else POINT_ESTIMATORS
    return tuple(Recipe(law, est, design) for law, est, design in itertools.product(LAWS, estimators, DESIGNS))


PAPER = Recipe("overtrain", "lsq", "paper")


def by_name(names: str) -> tuple[Recipe, ...]:
    """``--recipes``: comma-separated names as ``eq4/lsq/all`` (``all`` for the 18 point-estimate
    recipes, ``all+bayes`` for those and the 6 Bayesian ones)."""
    return pick_by_name(names, "--recipes", {"all": candidates(), "all+bayes": candidates(bayes=True)},
                        "names are law/estimator/design, e.g. eq4/lsq/all (laws eq4, eq3; estimators "
                        f"{list(ESTIMATORS)}; designs {list(DESIGNS)})")


def pick_by_name(names: str, flag: str, sets: dict[str, tuple], hint: str) -> tuple:
    """Comma-separated recipe names (or one key of ``sets``, e.g. ``all``) → recipes, in order and
    without repeats; ``sets``' largest is the table names are looked up in."""
    if names.strip() in sets:
        return sets[names.strip()]
    table = {r.name: r for r in max(sets.values(), key=len)}
    out = []
    for n in (s.strip() for s in names.split(",") if s.strip()):
        if n not in table:
            raise UserError(f"{flag}: unknown recipe {n!r}; {hint}")
        out.append(table[n])
    if not out:
        raise UserError(f"{flag}: no recipe named")
    return tuple(dict.fromkeys(out))
