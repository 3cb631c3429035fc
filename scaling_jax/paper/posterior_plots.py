"""Figures of ``scaling-jax posterior``: the paper's Figure 1 with 50/95 % bands, and a
calibration curve (nominal vs observed coverage of central intervals on held-out models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaling_jax import atomic
from scaling_jax.laws.bayes import Bands, error_draws, loss_draws
from scaling_jax.laws.figures import pyplot
from scaling_jax.paper import recipe

VAL = recipe.LOSS_VAL_SET


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    out = atomic.savefig(path, fig, dpi=110)
    plt.close(fig)
    return out


def figure1_bands(tb, checks: dict, path: Path) -> Path:
    """Top: loss vs compute, posterior median and 50/95 % bands of Eq. 4 for each M.
    Bottom: 17-task error vs loss with the 50/95 % bands of Eq. 5."""
    plt = pyplot()
    fig, axes = plt.subplots(2, len(checks), figsize=(5 * len(checks), 8), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for (ax, ax_err), (ds, c) in zip(axes.T, checks.items()):
        by_M: dict[int, list] = {}
        for r in tb.select(dataset=ds).runs:
            by_M.setdefault(round(r.M), []).append(r)
        runs = [r for M in sorted(by_M) for r in by_M[M]]
        Cg = np.geomspace(min(r.C for r in runs) / 2, max(r.C for r in runs) * 2, 80)
        for k, M in enumerate(sorted(by_M)):
            color = cmap(k / max(len(by_M) - 1, 1))
            b = Bands.from_draws(loss_draws(c.loss_law, Cg, np.full_like(Cg, M)))
            ax.plot(Cg, b.median, color=color, lw=1, label=f"M={M}")
            for level, alpha in ((95, 0.08), (50, 0.2)):
                ax.fill_between(Cg, b.lo[level], b.hi[level], color=color, alpha=alpha, lw=0)
            ax.scatter([r.C for r in by_M[M]], [r.loss(VAL) for r in by_M[M]], color=color, s=14, zorder=3)
        fit = recipe.loss_fit_runs(tb, ds)
        ax.scatter([r.C for r in fit], [r.loss(VAL) for r in fit], facecolors="none", edgecolors="k", s=60, zorder=4)
        ax.set(xscale="log", yscale="log", xlabel="compute C = 6ND (FLOPs)", ylabel="C4 eval loss")
        ax.set_title(f"{ds}: Eq. 4 posterior, 50/95 % bands (circles: fit points)", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        L = np.array([r.loss(VAL) for r in runs])
        Lg = np.linspace(L.min() * 0.95, L.max() * 1.05, 80)
        b = Bands.from_draws(error_draws(c.error_law, Lg))
        ax_err.plot(Lg, b.median, color="k", lw=1, label="Eq. 5 posterior median")
        for level, alpha in ((95, 0.1), (50, 0.25)):
            ax_err.fill_between(Lg, b.lo[level], b.hi[level], color="k", alpha=alpha, lw=0, label=f"{level} %")
        for k, M in enumerate(sorted(by_M)):
            ax_err.scatter([r.loss(VAL) for r in by_M[M]], [r.err_17 for r in by_M[M]], s=12, zorder=3,
                           color=cmap(k / max(len(by_M) - 1, 1)))
        ax_err.set(xlabel="C4 eval loss", ylabel="17-task top-1 error")
        ax_err.legend(fontsize=7)
    return _save(plt, fig, path)


def _observed(draws_DxP: np.ndarray, y_P: np.ndarray, levels: np.ndarray) -> np.ndarray:
    defined = ~np.isnan(draws_DxP)  # an Eq. 5 draw at Err <= 0 makes no prediction (laws.bayes.predict)
    F = np.sum(draws_DxP <= y_P[None], axis=0) / np.maximum(np.sum(defined, axis=0), 1)
    need = np.abs(2.0 * F - 1.0)  # smallest central level whose interval holds y
    return np.array([np.mean(need <= lv) for lv in levels])


def calibration(checks: dict, path: Path) -> Path:
    """Observed vs nominal coverage of central intervals, per set: Bayesian loss, chained
    error, and the LM bootstrap's loss intervals."""
    plt = pyplot()
    levels = np.linspace(0.05, 0.99, 40)
    datasets = list(checks)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 4.2), squeeze=False)
    for col, ds in enumerate(datasets):
        c = checks[ds]
        ax = axes[0, col]
        y_l = np.array([r.loss(VAL) for r in c.fit.loss_heldout])
        y_e = np.array([r.err_17 for r in c.fit.error_heldout])
        ax.plot(levels, _observed(c.loss_draws, y_l, levels), label="Bayes loss")
        ax.plot(levels, _observed(c.error_draws, y_e, levels), label="Bayes error (chained)")
        if len(c.bootstrap_draws):
            ax.plot(levels, _observed(c.bootstrap_draws, y_l, levels), label="LM bootstrap loss", ls="--")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set_xlabel("nominal central-interval level")
        ax.set_ylabel("observed coverage on held-out models")
        ax.set_title(f"{ds} ({len(y_l)} held-out)", fontsize=9)
        ax.legend(fontsize=7)
    return _save(plt, fig, path)
