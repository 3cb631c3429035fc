"""The paper's figures as PNG, written atomically (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaling_jax import atomic
from scaling_jax.laws.figures import pyplot
from scaling_jax.paper.recipe import Recipe, paper_recipe


def figure5(grid: list[dict], path: Path) -> Path:
    """Relative prediction error over every testbed model: rows N, columns M, a panel per set; a
    row of panels for loss and one for downstream error, each only when the grid holds it."""
    plt = pyplot()
    datasets = sorted({g["dataset"] for g in grid})
    Ns = sorted({g["N"] for g in grid})
    Ms = sorted({g["M"] for g in grid})
    kinds = [(key, label, vmax) for key, label, vmax in
             (("loss_rel_err", "C4 eval loss", 10), ("error_rel_err", "17-task error", 20))
             if any(g[key] is not None for g in grid)]
    fig, axes = plt.subplots(len(kinds), len(datasets), figsize=(5 * len(datasets), 3.5 * len(kinds)), squeeze=False)
    for row, (key, label, vmax) in enumerate(kinds):
        for col, ds in enumerate(datasets):
            Z = np.full((len(Ns), len(Ms)), np.nan)
            for g in grid:
                if g["dataset"] == ds and g[key] is not None:
                    Z[Ns.index(g["N"]), Ms.index(g["M"])] = g[key]
            ax = axes[row, col]
            im = ax.imshow(Z, cmap="Reds", vmin=0, vmax=vmax, origin="lower")
            for i in range(len(Ns)):
                for j in range(len(Ms)):
                    if np.isfinite(Z[i, j]):
                        ax.text(j, i, f"{Z[i, j]:.1f}", ha="center", va="center", fontsize=7)
            ax.set_xticks(range(len(Ms)), [f"{m:g}" for m in Ms], fontsize=7)
            ax.set_yticks(range(len(Ns)), [f"{n / 1e9:.3g}B" for n in Ns], fontsize=7)
            ax.set_xlabel("token multiplier M")
            ax.set_ylabel("parameters N")
            ax.set_title(f"{ds}: {label} rel. error (%)", fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    out = atomic.savefig(path, fig, dpi=110)
    plt.close(fig)
    return out


def figure1(tb, fits: dict, path: Path, rec: Recipe | None = None) -> Path:
    """Top: the recipe's validation loss vs compute with the fitted Eq. 4 per M, fit points and
    targets marked. Bottom: its downstream error vs loss with the fitted Eq. 5. ``rec`` defaults
    to the paper's Table 1."""
    rec = rec or paper_recipe(tb)
    plt = pyplot()
    datasets = sorted(fits)
    fig, axes = plt.subplots(2, len(datasets), figsize=(5 * len(datasets), 8), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for col, ds in enumerate(datasets):
        loss_fit, error_fit = fits[ds]
        runs = [r for r in tb.select(dataset=ds).runs if rec.val_set in r.losses]
        fit_names = {r.name for r in rec.loss_fit[ds]}
        target_names = {r.name for r in rec.targets[ds]}
        Ms = sorted({round(r.M) for r in runs})
        C_all = np.array([r.C for r in runs])
        Cg = np.geomspace(C_all.min() / 2, C_all.max() * 2, 200)
        ax = axes[0, col]
        for k, M in enumerate(Ms):
            color = cmap(k / max(len(Ms) - 1, 1))
            ax.plot(Cg, loss_fit.predict(C=Cg, M=np.full_like(Cg, M)), color=color, lw=1, label=f"M={M}")
            pts = [r for r in runs if round(r.M) == M]
            ax.scatter([r.C for r in pts], [rec.loss(r) for r in pts], color=color, s=14, zorder=3)
        for r in runs:
            if r.name in fit_names:
                ax.scatter(r.C, rec.loss(r), facecolors="none", edgecolors="k", s=60, zorder=4)
            if r.name in target_names:
                ax.scatter(r.C, rec.loss(r), marker="*", color="red", s=120, zorder=5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("compute C = 6ND (FLOPs)")
        ax.set_ylabel(f"{rec.val_set} loss")
        ax.set_title(f"{ds}: Eq. 4 (circles: fit, stars: targets)", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        ax = axes[1, col]
        L = np.array([rec.loss(r) for r in runs])
        err = np.array([np.nan if rec.error(r) is None else rec.error(r) for r in runs])
        ax.scatter(L, err, s=12, c=[cmap(Ms.index(round(r.M)) / max(len(Ms) - 1, 1)) for r in runs])
        Lg = np.linspace(L.min() * 0.95, L.max() * 1.05, 200)
        ax.plot(Lg, error_fit.predict(L=Lg), color="k", lw=1, label="Eq. 5 fit")
        for r in runs:
            if r.name in target_names:
                ax.scatter(rec.loss(r), rec.error(r), marker="*", color="red", s=120, zorder=5)
        ax.set_xlabel(f"{rec.val_set} loss")
        ax.set_ylabel(f"top-1 error ({rec.metric})")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = atomic.savefig(path, fig, dpi=110)
    plt.close(fig)
    return out
