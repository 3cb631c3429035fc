"""Downstream laws (issue 30): a task's accuracy at (N, D) by way of a loss, in two steps.

Step 1 predicts an intermediate loss from (N, D) with Eq. 3 (``eq3``) or Eq. 4 (``eq4``); step 2
predicts accuracy from that loss with the paper's Eq. 5 (``eq5``, on the error 1 − acc) or the
OLMo ladder's sigmoid (``sigmoid``)

    acc(L) = b + a·σ(−k·(L − L0)),   b = the task's chance accuracy (its floor),

whose ceiling is the accuracy at L = 0 (every answer's loss gone): 1, or the best any model can
reach (the synthetic suite's exact Bayes accuracy). The ladder's authors anchor their fit at that
ideal point, which keeps the sigmoid from levelling off early; ``anchor`` says how:
``constraint`` (a = (ceiling − b)/σ(k·L0), so acc(0) = ceiling exactly; parameters k, L0),
``prior`` (a free; the point estimators add the anchor as one more fit point (L = 0,
acc = ceiling), as the authors do, the Bayesian model puts a prior on acc(0) around the ceiling)
or ``none``.

Routes (:class:`Route`): ``paper`` (the validation loss → the task-mean error by Eq. 5, Table 1's
route), ``per-task`` (the validation loss → each task's accuracy → their mean), ``two-step``
(per task: N, D → the task's own loss, bits per byte of its gold answers → its accuracy; then
the mean). Estimators: ``lm`` (least squares, Levenberg–Marquardt), ``huber`` (step 1 the Huber
fit in log space of ``laws.huber``, step 2 Huber on accuracy residuals, δ = 0.01) and ``bayes``
(``laws.bayes.downstream``). For ``lm`` and ``huber`` every bootstrap resample of the runs refits
both steps of every task (one resample, all tasks: their errors stay correlated), all rows of a
step in one compiled call; predictive draws add each step's residual scale (step 1 on ln loss,
step 2 on accuracy). A Bayesian fit's draws add fit noise and the discrepancy at the target's
distance from the fit runs, in each step.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from scaling_jax.errors import UserError
from scaling_jax.laws import forms, huber, lm
from scaling_jax.laws.bayes.design import Support, error_distance, log_cm, loss_distance
from scaling_jax.laws.bayes.discrepancy import Discrepancy
from scaling_jax.laws.bootstrap import resample_weights
from scaling_jax.laws.fit import fit_own_rows
from scaling_jax.laws.points import design_problems
from scaling_jax.laws.starts import start_grid
from scaling_jax.testbed.task_points import TaskPoints

ROUTES = ("paper", "two-step", "per-task")
STEP1_FORMS = {"eq3": "chinchilla", "eq4": "overtrain"}
STEP2_FORMS = ("sigmoid", "eq5")
ANCHORS = ("constraint", "prior", "none")
ESTIMATORS = ("lm", "huber", "bayes")
DEFAULT_FORMS = {"paper": ("eq4", "eq5"), "per-task": ("eq4", "sigmoid"), "two-step": ("eq3", "sigmoid")}
HUBER_DELTA = 0.01  # step 2's Huber threshold in accuracy (a point of accuracy: one run's eval noise)
ANCHOR_WEIGHT = 1.0  # the anchor point (L = 0, acc = ceiling) counts as one run in lm/huber fits
MAX_ITER = 200
ERR_FLOOR = 1e-3  # an accuracy of 1 is an error of this on ln Err scales


@dataclasses.dataclass(frozen=True)
class Route:
    """A route and its forms: step 1 ``eq3``/``eq4``, step 2 ``sigmoid``/``eq5``, the sigmoid's anchor."""

    name: str
    step1: str
    step2: str
    anchor: str = "constraint"

    def __post_init__(self):
        for what, v, ok in (("--route", self.name, ROUTES), ("step-1 form", self.step1, tuple(STEP1_FORMS)),
                            ("step-2 form", self.step2, STEP2_FORMS), ("--anchor", self.anchor, ANCHORS)):
            if v not in ok:
                raise UserError(f"{what}: {v!r} is not one of {list(ok)}")

    @classmethod
    def make(cls, name: str, forms_: str | None = None, anchor: str = "constraint") -> "Route":
        """``forms_`` as ``STEP1/STEP2`` (``eq3/sigmoid``); the route's default forms when None."""
        if name not in ROUTES:
            raise UserError(f"--route: {name!r} is not one of {list(ROUTES)}")
        if forms_ is None:
            s1, s2 = DEFAULT_FORMS[name]
        else:
            s1, _, s2 = forms_.partition("/")
            if not s2:
                raise UserError(f"--forms {forms_!r}: give STEP1/STEP2, e.g. eq3/sigmoid")
        return cls(name, s1, s2, anchor)

    @property
    def law1(self) -> str:
        return STEP1_FORMS[self.step1]

    @property
    def label(self) -> str:
        anchor = f" ({self.anchor} anchor)" if self.step2 == "sigmoid" else ""
        return f"{self.name}: {self.step1}/{self.step2}{anchor}"

    def to_json(self) -> dict:
        return {"route": self.name, "step1": self.step1, "step2": self.step2,
                "anchor": self.anchor if self.step2 == "sigmoid" else None}


@dataclasses.dataclass(frozen=True)
class Layout:
    """A route laid over the runs: the intermediates step 1 predicts (``names``, values (n, K)), the
    outputs step 2 predicts (``outputs``, accuracies (n, T)), each output's intermediate ``source``,
    and the outputs' chance and ceiling."""

    names: tuple[str, ...]
    inter: np.ndarray
    outputs: tuple[str, ...]
    acc: np.ndarray
    source: np.ndarray
    chance: np.ndarray
    ceiling: np.ndarray


MEAN = "mean"  # the paper route's one output: the task mean


def layout(points: TaskPoints, route: Route) -> Layout:
    """What step 1 and step 2 fit for ``route`` on ``points``."""
    T = len(points.tasks)
    if route.name == "paper":
        return Layout(("loss",), points.loss[:, None], (MEAN,), 1.0 - points.mean_error[:, None], np.zeros(1, int),
                      np.array([points.chance.mean()]), np.array([points.ceiling.mean()]))
    if route.name == "per-task":
        return Layout(("loss",), points.loss[:, None], points.tasks, points.acc, np.zeros(T, int), points.chance,
                      points.ceiling)
    tl = points.require_task_losses("--route two-step")
    return Layout(tuple(f"task_loss:{t}" for t in points.tasks), tl, points.tasks, points.acc, np.arange(T),
                  points.chance, points.ceiling)


# --- step 2: accuracy from a loss ----------------------------------------------------------------

def step2_names(form: str) -> tuple[str, ...]:
    return ("a", "k", "L0") if form == "sigmoid" else ("epsilon", "k", "gamma")


def _sigmoid(x, xp):
    return 1.0 / (1.0 + xp.exp(-x))


def step2_accuracy(form: str, p: Mapping, L, chance, xp=np):
    """Accuracy at losses ``L`` (broadcasting against the parameters ``p``)."""
    if form == "sigmoid":
        return chance + p["a"] * _sigmoid(-p["k"] * (L - p["L0"]), xp)
    return 1.0 - (p["epsilon"] - p["k"] * xp.exp(-p["gamma"] * L))


def _theta_names(form: str, anchor: str) -> tuple[str, ...]:
    """Step 2's unconstrained parameters for the point estimators."""
    if form == "eq5":
        return ("epsilon", "k", "gamma")
    return ("ln_k", "L0") if anchor == "constraint" else ("ln_a", "ln_k", "L0")


def _theta_params(form: str, anchor: str, theta, chance, ceiling, xp=np) -> dict:
    """Unconstrained θ (first axis: parameters) → the form's parameters (``step2_names``)."""
    if form == "eq5":
        return {"epsilon": theta[0], "k": theta[1], "gamma": theta[2]}
    if anchor == "constraint":
        k, L0 = xp.exp(theta[0]), theta[1]
        return {"a": (ceiling - chance) / _sigmoid(k * L0, xp), "k": k, "L0": L0}
    return {"a": xp.exp(theta[0]), "k": xp.exp(theta[1]), "L0": theta[2]}


def _sqrt_huber(r):
    """:func:`scaling_jax.laws.huber._sqrt_huber` with threshold ``HUBER_DELTA`` (a rescaling)."""
    s = HUBER_DELTA / huber.DELTA
    return s * huber._sqrt_huber(r / s)


@functools.partial(jax.jit, static_argnames=("form", "anchor", "robust", "max_iter"))
def _step2_rows(form, anchor, robust, starts, x, y, w, chance, ceiling, max_iter):
    """Best-of-starts fits of step 2 for R rows, each with its own points and starts: ``starts``
    (R, S, P), ``x``/``y``/``w`` (R, n), ``chance``/``ceiling`` (R,). Returns θ (R, P), objective (R,)."""
    R, S, P = starts.shape
    lanes = lambda a: jnp.repeat(a, S, axis=0)  # noqa: E731 - row r's S starts side by side
    xl, yl, sw = lanes(x).T, lanes(y).T, jnp.sqrt(lanes(w)).T
    c, u = lanes(chance), lanes(ceiling)

    def residual(theta):
        r = step2_accuracy(form, _theta_params(form, anchor, theta, c, u, jnp), xl, c, jnp) - yl
        return sw * (_sqrt_huber(r) if robust else r)

    res = lm.levenberg_marquardt(residual, starts.reshape(R * S, P).T, max_iter=max_iter)
    rss = jnp.where(jnp.isfinite(res.rss) & jnp.all(jnp.isfinite(res.params), 0), res.rss, jnp.inf).reshape(R, S)
    best = jnp.argmin(rss, axis=1)
    theta = res.params.T.reshape(R, S, P)[jnp.arange(R), best]
    return theta, rss[jnp.arange(R), best]


def _step2_starts(form: str, anchor: str, x: np.ndarray, w: np.ndarray, chance, ceiling,
                  centre: np.ndarray | None = None) -> np.ndarray:
    """(R, S, P) starts per row, scaled to the row's typical loss (the geometric mean of its points);
    ``centre`` (R, P): an earlier optimum per row (a bootstrap row's point fit), tried first."""
    R = len(x)
    if form == "eq5":
        grid = np.broadcast_to(start_grid("error"), (R,) + start_grid("error").shape)
    else:
        lbar = np.exp(np.sum(w * np.log(np.maximum(x, 1e-12)), 1) / np.maximum(w.sum(1), 1e-12))
        rows = []
        for lb, c, u in zip(lbar, chance, ceiling):
            ks, l0s = np.log(np.array([1.0, 4.0, 16.0]) / lb), lb * np.array([0.5, 1.0, 1.5, 2.5])
            if anchor == "constraint":
                rows.append([(k, l0) for k in ks for l0 in l0s])
            else:
                rows.append([(a, k, l0) for a in np.log((u - c) * np.array([1.0, 1.5])) for k in ks for l0 in l0s])
        grid = np.array(rows)
    grid = np.asarray(grid, np.float64)
    return grid if centre is None else np.concatenate([np.asarray(centre, np.float64)[:, None], grid], axis=1)


def fit_step2(form: str, anchor: str, x: np.ndarray, y: np.ndarray, w: np.ndarray, chance, ceiling, *,
              robust: bool = False, centre: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Step-2 fits of R rows (``x``, ``y``, ``w`` (R, n): losses, accuracies, weights; ``chance``,
    ``ceiling`` (R,)): θ (R, P) unconstrained (:func:`step2_params` reads them) and objectives;
    the ``prior`` anchor adds the point (0, ceiling) to every row."""
    x, y, w = (np.atleast_2d(np.asarray(v, np.float64)) for v in (x, y, w))
    chance, ceiling = np.broadcast_to(chance, len(x)).astype(np.float64), np.broadcast_to(ceiling, len(x)).astype(
        np.float64)
    if form == "sigmoid" and anchor == "prior":
        x = np.concatenate([x, np.zeros((len(x), 1))], 1)
        y = np.concatenate([y, ceiling[:, None]], 1)
        w = np.concatenate([w, np.full((len(x), 1), ANCHOR_WEIGHT)], 1)
    starts = _step2_starts(form, anchor, x, w, chance, ceiling, centre)
    with jax.enable_x64(True):
        theta, obj = _step2_rows(form, anchor, robust, jnp.asarray(starts), jnp.asarray(x), jnp.asarray(y),
                                 jnp.asarray(w), jnp.asarray(chance), jnp.asarray(ceiling), MAX_ITER)
    return np.asarray(theta), np.asarray(obj)


def step2_params(form: str, anchor: str, theta: np.ndarray, chance, ceiling) -> dict[str, np.ndarray]:
    """θ (R, P) → the form's parameters, arrays (R,)."""
    return {k: np.asarray(v, np.float64) for k, v in
            _theta_params(form, anchor, np.asarray(theta).T, np.asarray(chance), np.asarray(ceiling)).items()}


# --- step 1: a loss from (N, D) ------------------------------------------------------------------

def _law_xs(law: str, N, D) -> dict[str, np.ndarray]:
    return {"N": N, "D": D} if law == "chinchilla" else {"C": 6.0 * N * D, "M": D / N}


def fit_step1(law: str, N: np.ndarray, D: np.ndarray, y: np.ndarray, w: np.ndarray, *, robust: bool = False,
              centres: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Step-1 fits of R rows (``y``, ``w`` (R, n) over the runs (N, D)): parameters (R, P) in the
    paper's order and an ok flag (R,). ``centres`` (S, P): optima of earlier fits to start from
    (a bootstrap's point fits) instead of the estimator's full grid."""
    y, w = np.atleast_2d(y), np.atleast_2d(w)
    xs = {k: np.broadcast_to(v, y.shape) for k, v in _law_xs(law, np.asarray(N, np.float64),
                                                               np.asarray(D, np.float64)).items()}
    if robust:
        names = forms.law(law)[1]
        grid = huber.LOG_FORMS[law][3]() if centres is None else np.vstack([
            [[np.log(c[i]) if k in ("E", "A", "B", "a", "b") else c[i] for i, k in enumerate(names)]
             for c in np.atleast_2d(centres)], huber.BOOTSTRAP_GRID[law]])
        params, _, ok = huber.fit_huber_rows(law, xs, y, w, grid, max_iter=400)
        return params, ok
    starts = start_grid(law) if centres is None else np.atleast_2d(centres)
    best, _ = fit_own_rows(law, xs, y, w, starts, max_iter=400 if centres is None else MAX_ITER)
    ok = np.all(np.isfinite(best.params), axis=1) & np.isfinite(best.rss)
    return best.params, ok


def step1_predict(law: str, params: Mapping[str, np.ndarray], N, D) -> np.ndarray:
    """The law per draw (rows of ``params``) at targets (N, D): (draws, P)."""
    from scaling_jax.laws.fit import predict

    p = {k: np.asarray(v, np.float64)[:, None] for k, v in params.items()}
    return np.asarray(predict(law, p, **_law_xs(law, np.asarray(N, np.float64)[None], np.asarray(D, np.float64)[None])))


# --- a fitted route as draws ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Step1Draws:
    """One intermediate's law as draws: parameters (draws,), noise σ on ln loss, support (fit runs'
    ln C, ln M) and the discrepancy beyond it (None: none, the point estimators)."""

    name: str
    law: str
    params: dict[str, np.ndarray]
    sigma: np.ndarray
    support: Support
    discrepancy: Discrepancy | None = None
    point: dict[str, float] | None = None


@dataclasses.dataclass(frozen=True)
class Step2Draws:
    """One output's accuracy law as draws; ``noise`` ``accuracy`` (additive, the point estimators)
    or ``log_error`` (on ln(1 − acc), the Bayesian model's likelihood)."""

    task: str
    form: str
    params: dict[str, np.ndarray]
    sigma: np.ndarray
    noise: str
    chance: float
    ceiling: float
    source: int
    support: Support
    discrepancy: Discrepancy | None = None
    point: dict[str, float] | None = None


@dataclasses.dataclass
class DownstreamFit:
    """A route fitted on ladder runs, ready to predict: per intermediate and per output, draws."""

    route: Route
    estimator: str
    step1: list[Step1Draws]
    step2: list[Step2Draws]
    info: dict = dataclasses.field(default_factory=dict)  # priors, diagnostics, bootstrap counts
    bayes: object = None  # the Bayesian fit (posterior) where there is one

    @property
    def outputs(self) -> tuple[str, ...]:
        return tuple(s.task for s in self.step2)

    @property
    def n_draws(self) -> int:
        return len(self.step2[0].sigma)

    def intermediate_draws(self, N, D, *, seed: int = 0) -> np.ndarray:
        """Predictive draws of each intermediate at targets (N, D): (draws, P, K)."""
        N, D = np.atleast_1d(np.asarray(N, np.float64)), np.atleast_1d(np.asarray(D, np.float64))
        rng = np.random.default_rng([seed, 1])
        out = []
        for s in self.step1:
            law = step1_predict(s.law, s.params, N, D)
            var = s.sigma[:, None] ** 2
            if s.discrepancy is not None:
                dist = loss_distance(s.support, 6.0 * N * D, D / N)
                var = var + s.discrepancy.take(len(law)).sd(dist) ** 2
            out.append(law * np.exp(np.sqrt(var) * rng.standard_normal(law.shape)))
        return np.stack(out, axis=-1)

    def accuracy_draws(self, inter_DxPxK: np.ndarray, *, seed: int = 0) -> np.ndarray:
        """Predictive accuracy draws of every output, given intermediate draws (draws, P, K) or the
        same measured intermediates for every draw (P, K): (draws, P, T), in [0, 1]."""
        x = np.asarray(inter_DxPxK, np.float64)
        if x.ndim == 2:
            x = np.broadcast_to(x, (self.n_draws,) + x.shape)
        rng = np.random.default_rng([seed, 2])
        out = []
        for s in self.step2:
            L = x[..., s.source]
            acc = step2_accuracy(s.form, {k: v[:, None] for k, v in s.params.items()}, L, s.chance)
            var = s.sigma[:, None] ** 2
            if s.discrepancy is not None:
                var = var + s.discrepancy.take(len(L)).sd(error_distance(s.support, L)) ** 2
            z = np.sqrt(var) * rng.standard_normal(L.shape)
            if s.noise == "log_error":
                acc = 1.0 - np.maximum(1.0 - acc, ERR_FLOOR) * np.exp(z)
            else:
                acc = acc + z
            out.append(np.clip(acc, 0.0, 1.0))
        return np.stack(out, axis=-1)

    def draws(self, N, D, *, seed: int = 0) -> dict[str, np.ndarray]:
        """Chained predictive draws at targets (N, D): ``intermediate`` (draws, P, K), ``accuracy``
        (draws, P, T) and ``mean_accuracy`` (draws, P): each draw carries both steps' uncertainty."""
        inter = self.intermediate_draws(N, D, seed=seed)
        acc = self.accuracy_draws(inter, seed=seed)
        return {"intermediate": inter, "accuracy": acc, "mean_accuracy": acc.mean(axis=-1)}

    def point_params(self) -> dict:
        """Point estimates (lm/huber) or posterior medians (bayes) of every law, for fit.json."""
        med = lambda d: {k: float(np.median(v)) for k, v in d.items()}  # noqa: E731
        return {"step1": {s.name: s.point or med(s.params) for s in self.step1},
                "step2": {s.task: s.point or med(s.params) for s in self.step2}}


def masks(points: TaskPoints, step1_mask=None, step2_mask=None) -> tuple[np.ndarray, np.ndarray]:
    n = len(points)
    m1 = np.ones(n, bool) if step1_mask is None else np.asarray(step1_mask, bool)
    m2 = m1 if step2_mask is None else np.asarray(step2_mask, bool)
    return m1, m2


def _log_scale(resid: np.ndarray, w: np.ndarray, n_params: int) -> float:
    dof = w.sum() - n_params
    return float(np.sqrt(np.sum(w * resid**2) / dof)) if dof > 0 else 0.0


def fit_downstream(points: TaskPoints, route: Route, estimator: str = "lm", *, n_bootstrap: int = 200,
                   seed: int = 0, step1_mask=None, step2_mask=None, config=None,
                   discrepancies: Mapping[str, Discrepancy | None] | None = None) -> DownstreamFit:
    """Fit ``route`` on ``points`` with ``estimator``; step 1 on the runs of ``step1_mask``, step 2 on
    those of ``step2_mask`` (default: every run; Table 1 fits Eq. 5 on one run more than Eq. 4).
    ``discrepancies`` (``loss``, ``error``): the Bayesian bands' discrepancies (default: priors)."""
    if estimator not in ESTIMATORS:
        raise UserError(f"--estimator {estimator!r}: one of {list(ESTIMATORS)}")
    lay = layout(points, route)
    m1, m2 = masks(points, step1_mask, step2_mask)
    if estimator == "bayes":
        from scaling_jax.laws.bayes.downstream import fit_bayes_downstream

        return fit_bayes_downstream(points, route, lay, m1, m2, config=config, discrepancies=discrepancies or {})
    if n_bootstrap < 0:
        raise UserError(f"--bootstrap: must be >= 0, got {n_bootstrap}")
    return _fit_point(points, route, lay, m1, m2, estimator == "huber", n_bootstrap, seed)


def _fit_point(points: TaskPoints, route: Route, lay: Layout, m1, m2, robust: bool, B: int, seed: int):
    """Point fits of both steps and their joint bootstrap (one resample of the runs refits every
    step of every task), each step's rows in one compiled call."""
    n, K, T = len(points), len(lay.names), len(lay.outputs)
    law, names1 = route.law1, forms.law(route.law1)[1]
    xs1 = _law_xs(law, points.N, points.D)
    W = np.vstack([np.ones(n), resample_weights(n, B, seed)]) if B else np.ones((1, n))  # row 0: the point fit
    W1, W2 = W * m1, W * m2
    # rows a resample cannot pin: step 1's design rules; step 2 needs as many distinct losses as parameters
    ok1 = np.array([not design_problems(law, xs1, w) for w in W1])
    P2 = len(_theta_names(route.step2, route.anchor))
    ok2 = np.array([[len(np.unique(lay.inter[w > 0, k])) >= P2 for k in range(K)] for w in W2])
    for what, ok, mask in (("step 1", ok1[0], m1), ("step 2", ok2[0].all(), m2)):
        if not ok:
            raise UserError(f"{route.label}: {int(mask.sum())} fit run(s) cannot determine the {what} law "
                            f"({'; '.join(design_problems(law, xs1, W1[0])) or 'too few distinct losses'})")
    # step 1, point fits (full grid) then the resamples from the point optima
    p1_point, good = fit_step1(law, points.N, points.D, lay.inter.T, np.broadcast_to(m1, (K, n)).astype(float),
                               robust=robust)
    if not good.all():
        raise UserError(f"{route.label}: the step-1 law could not be fitted to {lay.names[int(np.argmin(good))]}")
    p1, good1 = p1_point[:, None], np.ones((K, 1), bool)  # (K, 1+B, P): the point fit, then the resamples
    if B:
        Y1 = np.repeat(lay.inter.T, B, axis=0)  # (K·B, n): intermediate k's B resamples
        p1_boot, g1 = fit_step1(law, points.N, points.D, Y1, np.tile(W1[1:], (K, 1)), robust=robust,
                                centres=p1_point)
        p1 = np.concatenate([p1, p1_boot.reshape(K, B, -1)], axis=1)
        good1 = np.concatenate([good1, g1.reshape(K, B)], axis=1)
    good1 = good1 & ok1[None]
    # step 2, every (output, row) at once, each on its own intermediate's measured values
    x2 = np.repeat(lay.inter[:, lay.source].T, B + 1, axis=0)
    y2 = np.repeat(lay.acc.T, B + 1, axis=0)
    w2 = np.tile(W2, (T, 1))
    c2, u2 = np.repeat(lay.chance, B + 1), np.repeat(lay.ceiling, B + 1)
    th0, _ = fit_step2(route.step2, route.anchor, x2[::B + 1], y2[::B + 1], w2[::B + 1], lay.chance, lay.ceiling,
                       robust=robust)
    theta, _ = fit_step2(route.step2, route.anchor, x2, y2, w2, c2, u2, robust=robust,
                         centre=np.repeat(th0, B + 1, axis=0))
    theta = theta.reshape(T, B + 1, -1).copy()
    theta[:, 0] = th0
    good2 = np.all(np.isfinite(theta), axis=2) & ok2[:, lay.source].T
    keep = np.all(good1, axis=0) & np.all(good2, axis=0)
    if not keep[0]:
        raise UserError(f"{route.label}: the step-2 law could not be fitted to every task")
    keep[0] = B == 0  # the point fit is the one draw without a bootstrap, else not a resample
    kept = np.flatnonzero(keep)
    if B and kept.size < 2:
        raise UserError(f"{route.label}: only {kept.size} of {B} bootstrap resamples could refit every step "
                        "(too few runs or losses for the laws' parameters)")
    fit_runs1 = np.flatnonzero(m1)
    support1 = Support(log_cm(points.C[fit_runs1], points.M[fit_runs1]))
    step1 = []
    for k in range(K):
        point = dict(zip(names1, p1[k, 0]))
        fitted = step1_predict(law, {q: np.array([v]) for q, v in point.items()}, points.N[m1], points.D[m1])[0]
        resid = np.log(lay.inter[m1, k]) - np.log(np.maximum(fitted, 1e-12))  # a law below 0 there: a large miss
        sigma = _log_scale(resid, np.ones(resid.size), len(names1))
        step1.append(Step1Draws(lay.names[k], law, {q: p1[k, kept, i] for i, q in enumerate(names1)},
                                np.full(kept.size, sigma), support1, None, {q: float(v) for q, v in point.items()}))
    step2 = []
    for t in range(T):
        c, u, src = float(lay.chance[t]), float(lay.ceiling[t]), int(lay.source[t])
        draws = step2_params(route.step2, route.anchor, theta[t, kept], c, u)
        point = {q: float(v[0]) for q, v in step2_params(route.step2, route.anchor, theta[t, :1], c, u).items()}
        pred = step2_accuracy(route.step2, point, lay.inter[m2, src], c)
        sigma = _log_scale(lay.acc[m2, t] - pred, np.ones(int(m2.sum())), P2)
        step2.append(Step2Draws(lay.outputs[t], route.step2, draws, np.full(kept.size, sigma), "accuracy", c, u, src,
                                Support(np.log(lay.inter[m2, src])[:, None]), None, point))
    info = {"bootstrap": {"estimator": "huber" if robust else "lm", "n_resamples": B, "n_kept": int(kept.size),
                          "n_dropped": int(B - kept.size), "seed": seed,
                          "resampling": "runs, jointly for both steps and every task"}}
    return DownstreamFit(route, "huber" if robust else "lm", step1, step2, info)


def to_targets(targets: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([t["N"] for t in targets], np.float64), np.array([t["D"] for t in targets], np.float64))


# --- the fitted route as a file (``downstream_draws.npz``, read by ``plan``) --------------------------

def save_fit(fit: DownstreamFit, path):
    """Every draw of ``fit`` (parameters, noise, supports, discrepancies) and its route, as one
    ``.npz`` that :func:`load_fit` reads back (``plan --posterior`` plans with it)."""
    import json
    from pathlib import Path

    from scaling_jax import atomic

    arrays, meta = {}, {"route": fit.route.to_json(), "estimator": fit.estimator, "step1": [], "step2": []}
    for kind, steps in (("step1", fit.step1), ("step2", fit.step2)):
        for i, s in enumerate(steps):
            key = f"{kind}_{i}"
            m = {f.name: getattr(s, f.name) for f in dataclasses.fields(s)
                 if f.name not in ("params", "sigma", "support", "discrepancy")}
            m["params"] = list(s.params)
            for name, v in s.params.items():
                arrays[f"{key}_p_{name}"] = np.asarray(v, np.float64)
            arrays[f"{key}_sigma"] = np.asarray(s.sigma, np.float64)
            arrays[f"{key}_support"] = np.asarray(s.support.x_FxK, np.float64)
            if s.discrepancy is not None:
                arrays[f"{key}_floor"] = np.asarray(s.discrepancy.floor, np.float64)
                arrays[f"{key}_tau"] = np.asarray(s.discrepancy.tau_DxK, np.float64)
                m["discrepancy"] = {"axes": list(s.discrepancy.axes), "source": s.discrepancy.source}
            meta[kind].append(m)
    arrays["meta"] = np.array(json.dumps(meta))
    return atomic.write_atomic(Path(path), lambda f: np.savez(f, **arrays), mode="wb")


def load_fit(path) -> DownstreamFit:
    """The :class:`DownstreamFit` saved by :func:`save_fit`; a bad file is a UserError naming it."""
    import json

    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays.pop("meta")))
    except (OSError, ValueError, KeyError) as e:
        raise UserError(f"{path}: not a downstream fit's draws (downstream_draws.npz): {e}") from None
    steps = {}
    for kind, cls in (("step1", Step1Draws), ("step2", Step2Draws)):
        steps[kind] = []
        for i, m in enumerate(meta[kind]):
            key = f"{kind}_{i}"
            m = dict(m)
            d = m.pop("discrepancy", None)
            params = {n: arrays[f"{key}_p_{n}"] for n in m.pop("params")}
            disc = None if d is None else Discrepancy(arrays[f"{key}_floor"], arrays[f"{key}_tau"], tuple(d["axes"]),
                                                      d["source"])
            steps[kind].append(cls(**m, params=params, sigma=arrays[f"{key}_sigma"],
                                   support=Support(arrays[f"{key}_support"]), discrepancy=disc))
    r = meta["route"]
    route = Route(r["route"], r["step1"], r["step2"], r["anchor"] or "constraint")
    return DownstreamFit(route, meta["estimator"], steps["step1"], steps["step2"], {"source": str(path)})
