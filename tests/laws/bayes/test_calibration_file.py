"""Calibration files: saved discrepancies rebuild exactly, give the same bands, and every bad
file is a UserError naming the file and the field."""

import json

import numpy as np
import pytest

from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.laws.bayes import (
    Discrepancy,
    LossLaw,
    NutsConfig,
    Residuals,
    Support,
    calibrate,
    load_calibration,
    loss_draws,
    prior_discrepancy,
    save_calibration,
)  # fmt: skip
from scaling_jax.laws.bayes.design import ERROR_AXES, LOSS_AXES, log_cm


def _awkward(kind: str, n: int, seed: int) -> Discrepancy:
    """Draws whose decimal forms are long or extreme, and an exact zero."""
    d = prior_discrepancy(kind, n, seed=seed)
    floor = d.floor.copy()
    floor[:3] = [1 / 3, 5e-324, 0.0]
    return Discrepancy(floor, d.tau_DxK * np.pi, d.axes, f"test {kind} draws")


def _assert_same(a: Discrepancy, b: Discrepancy):
    assert a.axes == b.axes and a.source == b.source
    assert a.floor.dtype == b.floor.dtype == np.float64 and a.tau_DxK.shape == b.tau_DxK.shape
    np.testing.assert_array_equal(a.floor, b.floor)
    np.testing.assert_array_equal(a.tau_DxK, b.tau_DxK)


@pytest.mark.filterwarnings("ignore:NUTS:RuntimeWarning")  # a short chain; only its draws' round trip matters
def test_round_trip_is_exact(tmp_path):
    loss, error = _awkward("loss", 40, 1), _awkward("error", 40, 2)
    path = save_calibration(tmp_path / "cal.json", loss=loss, error=error, source="unit test",
                            created_from={"datasets": ["a", "b"]})
    body = json.loads(path.read_text())
    assert (body["format"], body["version"], body["source"]) == ("scaling_jax.calibration", 1, "unit test")
    assert body["created_from"] == {"datasets": ["a", "b"]} and set(body["laws"]) == {"loss", "error"}
    assert body["laws"]["loss"]["axes"] == list(LOSS_AXES) and len(body["laws"]["loss"]["tau"]) == 3
    _assert_same(load_calibration(path, "loss"), loss)
    _assert_same(load_calibration(path, "error"), error)
    _assert_same(Discrepancy.from_dict(json.loads(json.dumps(loss.to_dict()))), loss)
    assert load_calibration(path, "error").axes == ERROR_AXES
    # Draws straight from NUTS (what `posterior` saves) round-trip too.
    rng = np.random.default_rng(0)
    res = Residuals(mu=np.zeros(20), s=np.full(20, 0.01), log_y=rng.normal(0, 0.02, 20),
                    dist_PxK=rng.uniform(0, 2, (20, 1)))
    nuts = calibrate(res, "error", source="nuts", config=NutsConfig(num_warmup=100, num_samples=50, num_chains=1))
    save_calibration(tmp_path / "nuts.json", error=nuts, source="nuts")
    _assert_same(load_calibration(tmp_path / "nuts.json", "error"), nuts)
    with pytest.raises(UserError, match=r"nuts.json: laws.loss: missing; this file calibrates only \['error'\]"):
        load_calibration(tmp_path / "nuts.json", "loss")


def test_save_refuses_a_discrepancy_of_the_wrong_kind_or_none(tmp_path):
    with pytest.raises(ValueError, match="loss= got a error"):
        save_calibration(tmp_path / "x.json", loss=_awkward("error", 5, 0), source="x")
    with pytest.raises(ValueError, match="needs a loss or an error"):
        save_calibration(tmp_path / "x.json", source="x")
    assert not (tmp_path / "x.json").exists()


def _body():
    return {"format": "scaling_jax.calibration", "version": 1, "source": "s", "created_from": {},
            "laws": {"loss": _awkward("loss", 4, 0).to_dict(), "error": _awkward("error", 4, 0).to_dict()}}


def _set(path, value):
    def edit(b):
        *head, last = path
        for k in head:
            b = b[k]
        if value is KeyError:
            del b[last]
        else:
            b[last] = value
    return edit


BAD = {
    "wrong format": (_set(["format"], "scaling_jax.fit"), r"format: expected 'scaling_jax.calibration'"),
    "wrong version": (_set(["version"], 2), r"version: expected 1, got 2"),
    "laws not an object": (_set(["laws"], []), r"laws: expected an object"),
    "kind absent": (_set(["laws", "loss"], KeyError), r"laws.loss: missing; this file calibrates only \['error'\]"),
    "field missing": (_set(["laws", "loss", "floor"], KeyError), r"laws.loss: missing field\(s\) \['floor'\]"),
    "another law's entry": (lambda b: b["laws"].update(loss=b["laws"]["error"]), r"laws.loss.kind: expected 'loss'"),
    "axes of Eq. 3's C, N": (_set(["laws", "loss", "axes"], ["C", "N", "M_above"]), r"laws.loss.axes: a loss"),
    "two tau axes": (lambda b: b["laws"]["loss"]["tau"].pop(),
                     r"laws.loss.tau: expected 3 axes \(C, M_below, M_above\), got 2"),
    "tau draws short": (lambda b: b["laws"]["loss"]["tau"][2].pop(), r"laws.loss.tau\[2\] \(M_above\): 3 draws"),
    "negative tau": (_set(["laws", "loss", "tau", 1, 0], -0.01), r"laws.loss.tau\[1\] \(M_below\): draws must be"),
    "NaN floor": (_set(["laws", "loss", "floor", 2], float("nan")), r"laws.loss.floor: draws must be finite"),
    "infinite floor": (_set(["laws", "loss", "floor", 0], float("inf")), r"laws.loss.floor: draws must be finite"),
    "text draw": (_set(["laws", "loss", "floor", 0], "0.1"), r"laws.loss.floor: expected a non-empty list"),
    "no draws": (_set(["laws", "loss", "floor"], []), r"laws.loss.floor: expected a non-empty list"),
    "unknown kind": (_set(["laws", "loss", "kind"], "perplexity"), r"laws.loss.kind: expected one of"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_file_names_the_file_and_the_field(tmp_path, case):
    edit, pattern = BAD[case]
    body = _body()
    edit(body)
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(body))  # NaN/Infinity written as JSON's common extension
    with pytest.raises(UserError, match=r"cal.json: " + pattern) as e:
        load_calibration(path, "loss")
    assert "\n" not in str(e.value)


def test_unreadable_files_are_user_errors(tmp_path):
    path = tmp_path / "cal.json"
    path.write_text('{"format": "scaling_jax.calibration", ')
    with pytest.raises(UserError, match=r"cal.json: not valid JSON \(line 1"):
        load_calibration(path, "loss")
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match=r"cal.json: expected a JSON object, got list"):
        load_calibration(path, "error")
    with pytest.raises(InputNotFound, match=r"nope.json: calibration file not found"):
        load_calibration(tmp_path / "nope.json", "loss")


def test_loaded_calibration_gives_the_same_bands(tmp_path):
    rng = np.random.default_rng(3)
    n = 80  # posterior draws; the calibration has 50, so both pair through Discrepancy.take
    samples = {"E": rng.uniform(1.5, 1.9, n), "a": rng.uniform(40, 60, n), "b": rng.uniform(40, 60, n),
               "eta": rng.uniform(0.12, 0.16, n), "sigma_loss": rng.uniform(0.002, 0.008, n)}
    C_fit, M_fit = np.array([1e17, 1e18, 1e19, 1e19, 3e19]), np.array([20.0, 20.0, 20.0, 80.0, 320.0])
    support = Support(log_cm(C_fit, M_fit))
    disc = _awkward("loss", 50, 7)
    save_calibration(tmp_path / "cal.json", loss=disc, source="test")
    C, M = np.array([1e17, 1e20, 1e21, 5e20]), np.array([20.0, 5.0, 20.0, 640.0])
    saved = loss_draws(LossLaw.from_samples(samples, support, disc), C, M, seed=4)
    loaded = loss_draws(LossLaw.from_samples(samples, support, load_calibration(tmp_path / "cal.json", "loss")), C, M,
                        seed=4)
    np.testing.assert_array_equal(loaded, saved)
    # The discrepancy matters here: the prior's draws give other bands.
    prior = loss_draws(LossLaw.from_samples(samples, support), C, M, seed=4)
    assert not np.allclose(np.percentile(prior, 97.5, axis=0), np.percentile(loaded, 97.5, axis=0), rtol=1e-3)
