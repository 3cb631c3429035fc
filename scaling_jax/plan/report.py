"""A whole plan from one posterior: the ``plan.json`` body, its readable table, and the files.

:func:`make_plan` answers what was asked (budget, target, candidates, next run) and nothing
else; every interval is ``{median, lo95, hi95}`` and every unreachable answer is explicit
(``reachable: false`` with the probability the target is reachable at all), never NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling_jax import atomic
from scaling_jax.errors import UserError
from scaling_jax.laws.bayes.predict import ErrorLaw, LossLaw
from scaling_jax.plan import allocation, candidates, inference, next_run
from scaling_jax.plan.draws import Draws

NEXT_RUN_SHARE = 0.01  # default ladder: runs of at most 1 % of the target's compute


@dataclass(frozen=True)
class Ask:
    """What a user asks of a plan (None: not asked)."""

    budget: float | None = None
    target_loss: float | None = None
    target_error: float | None = None
    inference_tokens: float = 0.0
    p: float = 0.9
    candidates: tuple[np.ndarray, np.ndarray] | None = None  # (N, M)
    next_run: bool = False
    seed: int = 0
    trunks: str | None = None  # a folder of WSD trunks whose branches are next-run candidates (their decay's cost)

    def check(self, chained: bool | None = None) -> None:
        """Every value checked before any work (``chained``: whether the posterior has Eq. 5)."""
        if self.budget is not None:
            allocation.check_budget(self.budget)
        if self.target_loss is not None and self.target_error is not None:
            raise UserError("give --target-loss or --target-error, not both")
        if self.target is not None:
            inference.check_target(self.target, self.target_error is not None, self.inference_tokens, self.p)
        elif not 0 < self.p < 1:
            raise UserError(f"--p: a probability in (0, 1), got {self.p!r}")
        if self.target_error is not None and chained is False:
            raise UserError("--target-error needs a posterior with the error law (Eq. 5) chained to the loss law")
        if self.next_run and self.budget is None and self.target is None:
            raise UserError("--next-run needs a target to sharpen: give --budget or --target-loss/--target-error")
        if self.budget is None and self.target is None and self.candidates is None:
            raise UserError("nothing to plan: give --budget, --target-loss/--target-error or --candidates")

    @property
    def target(self) -> float | None:
        return self.target_loss if self.target_loss is not None else self.target_error


def make_plan(loss: LossLaw, error: ErrorLaw | None, ask: Ask, *, diagnostics: dict, source: dict) -> dict:
    """The ``plan.json`` body."""
    ask.check(chained=error is not None)
    dr = Draws.from_laws(loss, error)
    is_err = ask.target_error is not None
    plan: dict = {"posterior": {**source, "draws": int(len(loss.E)), "chained_error_law": error is not None,
                                "diagnostics": diagnostics,
                                "discrepancy": {"loss": loss.discrepancy.source,
                                                "error": error.discrepancy.source if error else None}}}  # fmt: skip
    if ask.budget is not None:
        plan["compute_optimal"] = allocation.compute_optimal(loss, error, ask.budget, seed=ask.seed)
    if ask.target is not None:
        plan["inference_aware"] = inference.inference_aware(dr, ask.target, ask.inference_tokens, ask.p, error=is_err)
    if ask.candidates is not None:
        plan["candidates"] = candidates.candidate_table(loss, error, *ask.candidates, dr=dr, target=ask.target,
                                                        target_is_error=is_err, seed=ask.seed)
    if ask.next_run:
        target = next_run_target(plan)
        if ask.candidates is not None:
            N, M = ask.candidates
        else:
            C_t = 6.0 * target["N"] ** 2 * target["M"]
            N, M = next_run.affordable_grid(NEXT_RUN_SHARE * C_t)
        info = [{}] * len(N)
        if ask.trunks is not None:
            from scaling_jax.plan.branch_candidates import trunk_candidates

            cap = np.inf if ask.candidates is not None else NEXT_RUN_SHARE * C_t
            extra = [c for c in trunk_candidates(ask.trunks) if c["cost"] <= cap]
            N = np.concatenate([np.asarray(N, np.float64), [c["N"] for c in extra]])
            M = np.concatenate([np.asarray(M, np.float64), [c["M"] for c in extra]])
            info += [{k: c[k] for k in ("cost", "branch_of", "decay_start")} for c in extra]
        plan["next_run"] = next_run.rank_next_runs(dr, N, M, target, seed=ask.seed, info=info)
    return plan


def next_run_target(plan: dict) -> dict:
    """The run whose band the next experiment should shrink: the inference-aware plan when it
    is reachable, else the compute-optimal run (median M*) of the budget."""
    ia = plan.get("inference_aware")
    if ia is not None and ia["reachable"]:
        return {"N": ia["N"], "M": ia["M"]}
    co = plan.get("compute_optimal")
    if co is not None:
        M = co["at_M"]
        return {"N": float(np.sqrt(co["C"] / (6.0 * M))), "M": M}
    raise UserError("--next-run: the target is unreachable and no --budget was given; no run to sharpen")


def _iv(x: dict | None, fmt: str = ".4g") -> str:
    if x is None:
        return "-"
    return f"{x['median']:{fmt}} [{x['lo95']:{fmt}}, {x['hi95']:{fmt}}]"


def table(plan: dict) -> str:
    """The plan as readable lines (medians with 95 % intervals)."""
    lines = []
    d = plan["posterior"]["diagnostics"]
    lines.append(f"posterior: {plan['posterior'].get('from', '')} ({plan['posterior']['draws']} draws, R-hat max "
                 f"{d.get('max_rhat', float('nan')):.3f}, divergences {d.get('divergences', 0)})")
    co = plan.get("compute_optimal")
    if co:
        lines.append(f"compute-optimal at C = {co['C']:.3g} FLOPs:")
        for k in ("M_star", "N", "D", "loss", "error"):
            if co[k] is not None:
                lines.append(f"  {k:>7} {_iv(co[k])}")
        flat = [r for r in co["penalty"] if r["hi95"] <= 0.01 * co["loss"]["median"]]
        if flat:
            lines.append(f"  within 1 % of the optimal loss (95 % sure) for M in [{flat[0]['M']:.3g}, "
                         f"{flat[-1]['M']:.3g}]")
    ia = plan.get("inference_aware")
    if ia:
        what = "loss" if ia["L_target"] is not None else "error"
        tgt = ia["L_target"] if ia["L_target"] is not None else ia["Err_target"]
        lines.append(f"inference-aware plan: {what} <= {tgt:g} with p >= {ia['p']:g}, {ia['D_inf']:.3g} inference "
                     f"tokens (P(reachable at all) = {ia['p_reachable']:.3f}):")
        if ia["reachable"]:
            lines.append(f"  N = {ia['N']:.4g}, D = {ia['D']:.4g} (M = {ia['M']:.4g}), train {ia['train_flops']:.4g} "
                         f"FLOPs, lifetime {ia['lifetime_flops']:.4g}, P(reach) = {ia['p_reach']:.3f}")
        else:
            lines.append(f"  unreachable: {ia['reason']}")
        b = ia["best_p_reach"]
        lines.append(f"  best P(reach) of any run: {b['p_reach']:.3f} at N = {b['N']:.4g}, M = {b['M']:.4g} "
                     f"(lifetime {b['lifetime_flops']:.4g} FLOPs)")
        if "p_reachable_nonpositive_share" in ia:
            at_plan = (f"; at the plan for {ia['nonpositive_share']:.1%} of the predictive mass"
                       if ia.get("reachable") and ia.get("nonpositive_share") is not None else "")
            lines.append(f"  Eq. 5 gives error <= 0 at E for {ia['p_reachable_nonpositive_share']:.1%} of draws "
                         f"(left out: P(reachable) is over the draws that predict){at_plan}")
        m = ia["median_plan"]
        if m.get("reachable", True):
            lines.append(f"  median-forecast plan: N = {m['N']:.4g}, M = {m['M']:.4g}, lifetime "
                         f"{m['lifetime_flops']:.4g} FLOPs, P(reach) = {m['p_reach']:.3f}")
        lines.append("  lifetime FLOPs against p: " + ", ".join(
            f"{c['p']:g}: {c['lifetime_flops']:.3g}" if c["lifetime_flops"] else f"{c['p']:g}: unreachable"
            for c in ia["cost_curve"]))
    cands = plan.get("candidates")
    if cands:
        lines.append(f"  {'N':>10} {'M':>7} {'C':>10} {'loss [95 %]':>28} {'error [95 %]':>28} {'P(target)':>9}")
        for c in cands:
            pt = "-" if c["p_target"] is None else f"{c['p_target']:.3f}"
            lines.append(f"  {c['N']:>10.4g} {c['M']:>7.4g} {c['C']:>10.4g} {_iv(c['loss']):>28} "
                         f"{_iv(c['error']):>28} {pt:>9}")
            if c["error"] and c["error"]["nonpositive_share"] > 0:
                lines.append(f"  {'':>10} error band leaves out {c['error']['nonpositive_share']:.1%} of draws "
                             "(Eq. 5 <= 0 there)")
    nr = plan.get("next_run")
    if nr:
        t = nr["target"]
        lines.append(f"next run: to sharpen the loss at N = {t['N']:.4g}, M = {t['M']:.4g} (95 % band now "
                     f"{nr['current_width_95']:.4g} wide), best first:")
        for r in nr["ranked"][:5]:
            branch = f" (a branch of {r['branch_of']} from step {r['decay_start']}: costs {r['cost']:.3g})" \
                if "branch_of" in r else ""
            lines.append(f"  N = {r['N']:.4g}, M = {r['M']:.4g}, C = {r['C']:.3g}{branch}: expected width "
                         f"{r['expected_width_95']:.4g}")
    return "\n".join(lines)


def write_plan(plan: dict, loss: LossLaw, out: Path, *, plots: bool = True) -> list[Path]:
    """``plan.json`` and, with ``plots``, the figures; atomic writes."""
    from scaling_jax.plan import figures

    written = [atomic.write_json(Path(out) / "plan.json", plan)]
    if plots:
        written += figures.plan_figures(plan, loss, Path(out))
    return written
