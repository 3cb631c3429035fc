"""``posterior.nc`` as a reusable posterior: besides the draws (ArviZ InferenceData), the file
records the law, the training set, the fit points' support and the discrepancy draws its bands
used, so a planner can rebuild the same predictive laws without refitting.

:func:`attach` adds them (``constant_data`` group, posterior attributes) before the file is
written; :func:`read_posterior` checks them and returns the laws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.laws.bayes.design import ERROR_AXES, LOSS_AXES, Support
from scaling_jax.laws.bayes.discrepancy import Discrepancy
from scaling_jax.laws.bayes.infer import diagnose
from scaling_jax.laws.bayes.predict import ErrorLaw, LossLaw


@dataclass(frozen=True)
class StoredPosterior:
    """The laws of a posterior file, with what it says about itself."""

    loss_law: LossLaw
    error_law: ErrorLaw | None
    diagnostics: dict
    law: str
    dataset: str
    source: str
    calibration: dict | None = None  # how the discrepancy was learned, when it was (plan --calibrate self)


def attach(idata, law: str, loss_law, error_law, dataset: str | None):
    """Record law, training set, support and discrepancy draws in ``idata`` (returned)."""
    import xarray as xr

    idata.posterior.attrs["law"] = law
    idata.posterior.attrs["dataset"] = dataset or ""
    data = {}
    for kind, lw in (("loss", loss_law), ("error", error_law)):
        if lw is None:
            continue
        disc = lw.discrepancy
        data[f"{kind}_support"] = ((f"{kind}_point", f"{kind}_axis"), np.asarray(lw.support.x_FxK))
        data[f"{kind}_floor"] = ((f"{kind}_disc_draw",), np.asarray(disc.floor))
        data[f"{kind}_tau"] = ((f"{kind}_disc_draw", f"{kind}_disc_axis"), np.asarray(disc.tau_DxK))
        idata.posterior.attrs[f"{kind}_discrepancy_source"] = disc.source
    group = xr.Dataset(data)
    if "constant_data" in idata.groups():
        idata.constant_data = idata.constant_data.merge(group)
    else:
        idata.add_groups(constant_data=group)
    return idata


def _flat(idata) -> tuple[dict, dict]:
    post = idata.posterior
    grouped = {k: np.asarray(post[k].values, np.float64) for k in post.data_vars}
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in grouped.items()}
    return grouped, flat


def read_posterior(path, *, law: str = "overtrain", dataset: str | None = None) -> StoredPosterior:
    """The laws of ``path`` (written by ``fit --estimator bayes`` or ``plan``), checked to be of
    ``law`` and, when given, fitted on ``dataset``; every problem is a UserError naming the file."""
    import arviz as az

    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"--posterior {path}: no such file")
    try:
        idata = az.from_netcdf(str(path))
    except Exception as e:  # noqa: BLE001 - any unreadable file is bad input here
        raise UserError(f"--posterior {path}: not an ArviZ netCDF posterior ({type(e).__name__})") from None
    if "posterior" not in idata.groups():
        raise UserError(f"--posterior {path}: has no posterior group")
    attrs = idata.posterior.attrs
    got = attrs.get("law")
    if got != law:
        raise UserError(f"--posterior {path}: a posterior of law {got!r}; planning needs the {law!r} law (Eq. 4)")
    stored = str(attrs.get("dataset", ""))
    if dataset is not None and stored != dataset:
        what = f"fitted on training set {stored!r}" if stored else "records no training set"
        raise UserError(f"--posterior {path}: {what}, not {dataset!r} as asked (--dataset)")
    if "constant_data" not in idata.groups() or "loss_support" not in idata.constant_data:
        raise UserError(f"--posterior {path}: lacks the fit points and discrepancy (written before planning "
                        "support); refit with `scaling-jax fit --estimator bayes --out DIR`")
    cd = idata.constant_data
    grouped, flat = _flat(idata)
    n = len(flat["sigma_loss"])

    def disc(kind):
        d = Discrepancy(np.asarray(cd[f"{kind}_floor"].values), np.asarray(cd[f"{kind}_tau"].values),
                        LOSS_AXES if kind == "loss" else ERROR_AXES,
                        str(attrs.get(f"{kind}_discrepancy_source", "prior")))
        return d.take(n)

    loss = LossLaw.from_samples(flat, Support(np.asarray(cd["loss_support"].values)), disc("loss"))
    error = None
    if "error_support" in cd and "epsilon" in flat:
        error = ErrorLaw.from_samples(flat, Support(np.asarray(cd["error_support"].values)), disc("error"))
    diverging = (np.asarray(idata.sample_stats["diverging"].values) if "sample_stats" in idata.groups()
                 and "diverging" in idata.sample_stats else np.zeros(grouped["sigma_loss"].shape[:2], bool))
    names = ["E", "a", "b", "eta", "sigma_loss"] + (["epsilon", "k", "gamma", "sigma_error"] if error else [])
    diag = diagnose({k: grouped[k] for k in names}, diverging, grouped["sigma_loss"].shape[0])
    return StoredPosterior(loss, error, diag.to_dict(), law, stored, str(path))
