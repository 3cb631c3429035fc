"""The plan's figures: iso-loss contours over (N, D) with the compute-optimal line and its band,
the posterior of M*, and lifetime cost against confidence p."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaling_jax.laws.bayes.predict import LossLaw
from scaling_jax.laws.figures import pyplot, save_figure
from scaling_jax.plan.allocation import m_star
from scaling_jax.plan.draws import Draws, median_law


def plan_figures(plan: dict, loss: LossLaw, out: Path) -> list[Path]:
    written = [iso_loss(plan, loss, out / "iso_loss.png"), m_star_posterior(loss, out / "m_star.png")]
    if "inference_aware" in plan:
        written.append(cost_vs_p(plan["inference_aware"], out / "cost_vs_p.png"))
    return written


def _points(plan: dict) -> list[tuple[str, float, float]]:
    pts = []
    co = plan.get("compute_optimal")
    if co:
        pts.append(("compute-optimal", co["N"]["median"], co["D"]["median"]))
    ia = plan.get("inference_aware")
    if ia and ia["reachable"]:
        pts.append((f"inference-aware (p={ia['p']:g})", ia["N"], ia["D"]))
    for c in plan.get("candidates") or []:
        pts.append(("candidate", c["N"], c["D"]))
    return pts


def iso_loss(plan: dict, loss: LossLaw, path: Path) -> Path:
    """Median-law loss contours over (N, D), the compute-optimal line D = M*·N (median and 95 %
    band of M*) and the planned runs."""
    plt = pyplot()
    pts = _points(plan)
    Ns = [p[1] for p in pts] or [1e9]
    N_G = np.geomspace(min(Ns) / 30, max(Ns) * 30, 60)
    D_G = np.geomspace(min(Ns) * 0.3, max(Ns) * 3e4, 60)
    NN, DD = np.meshgrid(N_G, D_G)
    L = median_law(Draws.from_laws(loss), (6.0 * NN * DD).ravel(), (DD / NN).ravel()).reshape(NN.shape)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    cs = ax.contour(NN, DD, L, levels=12, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, fontsize=6, fmt="%.2f")
    ms = m_star(loss)
    lo, med, hi = np.percentile(ms, [2.5, 50, 97.5])
    ax.plot(N_G, med * N_G, "k-", lw=1.2, label=f"compute-optimal D = M*·N (M* = {med:.3g})")
    ax.fill_between(N_G, lo * N_G, hi * N_G, color="k", alpha=0.12, lw=0, label="95 % band of M*")
    labelled = set()
    for name, N, D in pts:
        ax.scatter([N], [D], marker="o" if name == "candidate" else "*", s=60 if name == "candidate" else 140,
                   zorder=4, label=None if name in labelled else name)
        labelled.add(name)
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="training tokens D",
           xlim=(N_G[0], N_G[-1]), ylim=(D_G[0], D_G[-1]))
    ax.set_title("iso-loss contours (posterior-median law)", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(plt, fig, path)


def m_star_posterior(loss: LossLaw, path: Path) -> Path:
    plt = pyplot()
    ms = m_star(loss)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(np.log10(ms), bins=60, color="steelblue", alpha=0.8)
    for q in np.percentile(ms, [2.5, 50, 97.5]):
        ax.axvline(np.log10(q), color="k", lw=0.8, ls="--")
    ax.set(xlabel="log10 M* (compute-optimal tokens per parameter)", ylabel="posterior draws")
    ax.set_title("posterior of M* = (b/a)^(1/(2η)) (median and 95 % interval)", fontsize=9)
    return save_figure(plt, fig, path)


def cost_vs_p(ia: dict, path: Path) -> Path:
    plt = pyplot()
    curve = [c for c in ia["cost_curve"] if c["lifetime_flops"] is not None]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if curve:
        ax.plot([c["p"] for c in curve], [c["lifetime_flops"] for c in curve], "o-")
    median = ia["median_plan"]
    if median.get("reachable", True):
        ax.axhline(median["lifetime_flops"], color="k", ls="--", lw=0.8, label="median-forecast plan")
        ax.legend(fontsize=7)
    ax.set(yscale="log", xlabel="confidence p = P(reach target)", ylabel="lifetime FLOPs (train + inference)")
    ax.set_title("lifetime cost against confidence", fontsize=9)
    return save_figure(plt, fig, path)
