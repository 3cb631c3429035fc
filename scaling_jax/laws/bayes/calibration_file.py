"""Calibrations saved for reuse: the discrepancy that past sweeps taught, as a JSON file.

``scaling-jax posterior`` writes one (``calibration.json``); ``fit --estimator bayes
--calibration FILE`` reads it instead of the weakly informative prior. The format::

    {"format": "scaling_jax.calibration", "version": 1,
     "source": "held-out runs of c4_original, rpj, rw_original",
     "created_from": {...},                       # free-form provenance (testbed, sets, sampler)
     "laws": {"loss":  {"kind": "loss", "axes": ["C", "M_below", "M_above"], "source": "...",
                        "floor": [δ₀ per draw], "tau": [[τ_C per draw], [τ_M_below ...], [τ_M_above ...]]},
              "error": {"kind": "error", "axes": ["L"], ...}}}

Every draw is kept (float64 repr, so the file rebuilds the same draws). The "loss" entry
serves both loss laws (Eq. 3 and Eq. 4: distances along ln C and ln M toward under/over-
training), "error" serves Eq. 5; a file may hold either or both. The draws pair with any
posterior: :meth:`Discrepancy.take` resamples them to its number of draws.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from scaling_jax import atomic
from scaling_jax.errors import InputNotFound, UserError
from scaling_jax.laws.bayes.discrepancy import PRIOR_SCALES, Discrepancy

FORMAT = "scaling_jax.calibration"
VERSION = 1


def save_calibration(path: str | os.PathLike, *, loss: Discrepancy | None = None, error: Discrepancy | None = None,
                     source: str, created_from: dict | None = None) -> Path:
    """Write the given discrepancies (at least one) to ``path`` atomically."""
    laws = {}
    for kind, disc in (("loss", loss), ("error", error)):
        if disc is not None:
            if disc.kind != kind:
                raise ValueError(f"{kind}= got a {disc.kind} discrepancy (axes {disc.axes})")
            laws[kind] = disc.to_dict()
    if not laws:
        raise ValueError("a calibration file needs a loss or an error discrepancy")
    body = {"format": FORMAT, "version": VERSION, "source": source, "created_from": created_from or {}, "laws": laws}
    # One line: ~8,000 draws × 4 numbers, one per line, would be a megabyte of indentation.
    return atomic.write_json(path, body, indent=None)


def load_calibration(path: str | os.PathLike, kind: str) -> Discrepancy:
    """The ``kind`` ("loss" or "error") discrepancy saved in ``path``; any problem with the
    file raises ``UserError`` naming the file and the field."""
    if kind not in PRIOR_SCALES:
        raise ValueError(f"calibration kind must be one of {sorted(PRIOR_SCALES)}, got {kind!r}")
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputNotFound(f"{name}: calibration file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{name}: cannot read calibration file ({e})") from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{name}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
    if not isinstance(body, dict):
        raise UserError(f"{name}: expected a JSON object, got {type(body).__name__}")
    if body.get("format") != FORMAT:
        raise UserError(f"{name}: format: expected {FORMAT!r}, got {body.get('format')!r}; not a calibration file")
    if body.get("version") != VERSION:
        raise UserError(f"{name}: version: expected {VERSION}, got {body.get('version')!r}")
    laws = body.get("laws")
    if not isinstance(laws, dict):
        raise UserError(f"{name}: laws: expected an object of discrepancies by kind, got {laws!r}")
    if kind not in laws:
        holds = f"only {sorted(laws)}" if laws else "no law"
        raise UserError(f"{name}: laws.{kind}: missing; this file calibrates {holds}, not the {kind} law")
    disc = Discrepancy.from_dict(laws[kind], where=f"{name}: laws.{kind}")
    if disc.kind != kind:
        raise UserError(f"{name}: laws.{kind}.kind: expected {kind!r}, got {disc.kind!r}")
    return disc


SELF = "self"


def parse_calibrate(value: str, allowed: tuple[str, ...], flag: str = "--calibrate") -> tuple[str, str | None]:
    """``(mode, file)`` of a ``--calibrate`` value: one of ``allowed`` (e.g. others, none, self), or
    ``self+FILE`` (the ladder's own residuals updating FILE's discrepancy instead of the prior's)."""
    mode, plus, path = value.partition("+")
    if plus and mode == SELF and SELF in allowed:
        if not path:
            raise UserError(f"{flag} {value!r}: self+FILE needs a calibration file after the +")
        return SELF, path
    if plus or mode not in allowed:
        forms = list(allowed) + ([f"{SELF}+FILE"] if SELF in allowed else [])
        raise UserError(f"{flag}: {value!r} is not one of {forms}")
    return mode, None
