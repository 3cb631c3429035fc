"""Files of a Bayesian fit: the posterior as ArviZ InferenceData (``posterior.nc``), trace and
pair plots of the law's parameters, and the fitted law with its predictive bands over the data
and the requested predictions (``fit_bands.png``). Written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from scaling_jax import atomic


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_bayes_files(fit, pts: Mapping[str, np.ndarray], targets: Sequence[dict], out: Path,
                      plots: bool = True, dataset: str | None = None) -> list[Path]:
    """``posterior.nc`` (with the law, ``dataset``, support and discrepancy draws, for ``plan``)
    and, with ``plots``, ``trace.png``, ``pair.png`` and ``fit_bands.png``."""
    from scaling_jax.laws.bayes.posterior_file import attach

    idata = attach(fit.posterior.to_inference_data(), fit.law, fit.loss_law, fit.error_law, dataset)
    written = [write_netcdf(idata, Path(out) / "posterior.nc")]
    if plots:
        written += bayes_figures(fit, idata, pts, targets, out)
    return written


def write_netcdf(idata, path: Path) -> Path:
    """InferenceData as netCDF (load with ``arviz.from_netcdf``), via a temp file renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        idata.to_netcdf(str(tmp), engine="h5netcdf")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_figure(plt, fig, path: Path) -> Path:
    """Save ``fig`` atomically (80 dpi, tight) and close it."""
    out = atomic.savefig(path, fig, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return out


def bayes_figures(fit, idata, pts: Mapping[str, np.ndarray], targets: Sequence[dict], out: Path) -> list[Path]:
    """``trace.png`` (every parameter of the fitted laws), ``pair.png`` (the first law's) and ``fit_bands.png``."""
    import arviz as az

    from scaling_jax.laws.bayes.fit import PARAMS

    plt = pyplot()
    out = Path(out)
    axes = az.plot_trace(idata, var_names=list(fit.param_names), compact=True, show=False)
    written = [save_figure(plt, np.ravel(axes)[0].figure, out / "trace.png")]
    axes = az.plot_pair(idata, var_names=list(PARAMS[fit.law]), kind="scatter", marginals=True, show=False,
                        scatter_kwargs={"alpha": 0.2, "s": 2})
    written.append(save_figure(plt, np.ravel(axes)[0].figure, out / "pair.png"))
    written.append(fit_bands(fit, pts, targets, out / "fit_bands.png"))
    return written


def fit_bands(fit, pts: Mapping[str, np.ndarray], targets: Sequence[dict], path: Path) -> Path:
    """Loss against compute, one median curve and 50/95 % band per token multiplier of the data
    and targets (or error against loss for Eq. 5), fit points as dots and targets as stars."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    if fit.law == "error":
        L = np.asarray(pts["loss"])
        x_t = [t["L"] for t in targets]
        Lg = np.linspace(min([*L, *x_t]) * 0.97, max([*L, *x_t]) * 1.03, 120)
        _band(ax, Lg, fit.bands(L=Lg)["error"], "k", "Eq. 5")
        ax.scatter(L, pts["error"], s=14, color="k", zorder=3, label="fit points")
        if targets:
            b = fit.bands(L=x_t)["error"]
            ax.scatter(x_t, b.median, marker="*", s=120, color="red", zorder=4, label="predictions")
        ax.set(xlabel="loss L", ylabel="downstream error")
    else:
        C, M = 6.0 * pts["N"] * pts["D"], pts["D"] / pts["N"]
        Ms = sorted({round(float(m), 6) for m in [*M, *(t["M"] for t in targets)]})
        C_all = np.array([*C, *(t["C"] for t in targets)])
        Cg = np.geomspace(C_all.min() / 2, C_all.max() * 2, 100)
        cmap = plt.get_cmap("viridis")
        for i, m in enumerate(Ms):
            color = cmap(i / max(len(Ms) - 1, 1))
            _band(ax, Cg, fit.bands(C=Cg, M=np.full_like(Cg, m))["loss"], color, f"M={m:g}")
            sel = np.isclose(M, m, rtol=1e-6)
            ax.scatter(C[sel], pts["loss"][sel], color=color, s=16, zorder=3)
        if targets:
            b = fit.bands(C=[t["C"] for t in targets], M=[t["M"] for t in targets])["loss"]
            ax.errorbar([t["C"] for t in targets], b.median, yerr=[b.median - b.lo[95], b.hi[95] - b.median],
                        fmt="*", color="red", ms=11, capsize=3, zorder=4, label="predictions (95 %)")
        ax.set(xscale="log", yscale="log", xlabel="compute C = 6ND (FLOPs)", ylabel="loss")
    ax.set_title(f"{fit.law} law, Bayesian fit: median, 50 % and 95 % predictive bands", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(plt, fig, path)


def _band(ax, x, bands, color, label) -> None:
    ax.plot(x, bands.median, color=color, lw=1, label=label)
    for level, alpha in ((95, 0.1), (50, 0.22)):
        ax.fill_between(x, bands.lo[level], bands.hi[level], color=color, alpha=alpha, lw=0)
