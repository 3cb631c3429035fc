"""Typed configs: frozen dataclasses loaded from YAML, with ``key.sub=value`` overrides.

Every key is validated against the dataclass fields: an unknown key or a value of the
wrong type is an error that names the file and the dotted field.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from scaling_jax import paths
from scaling_jax.errors import InputNotFound, UserError

T = TypeVar("T")


class ConfigError(UserError):
    """A config value or key is wrong; the message names the source and the field."""


class FieldError(ConfigError):
    """One field of a config is out of range; ``from_dict`` prefixes the section's dotted name."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed values of a numeric field: finite, within [lo, hi] (ends open if asked),
    integer if ``integer``; ``extra`` values are allowed besides (e.g. -1 for "the rest")."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    extra: tuple = ()

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.lo is not None and self.hi is not None:
            bounds = f" in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        elif self.lo is not None:
            bounds = f" {'>' if self.lo_open else '>='} {self.lo:g}"
        elif self.hi is not None:
            bounds = f" {'<' if self.hi_open else '<='} {self.hi:g}"
        else:
            bounds = ""
        return kind + bounds + "".join(f" or {v}" for v in self.extra)

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if value in self.extra:
            return True
        if (self.integer and not isinstance(value, int)) or not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            return False
        return True


POSITIVE_INT = Range(lo=1, integer=True)
NON_NEGATIVE_INT = Range(lo=0, integer=True)
POSITIVE = Range(lo=0, lo_open=True)
NON_NEGATIVE = Range(lo=0)


def check_ranges(obj: Any, optional: Sequence[str] = (), **ranges: Range) -> None:
    """Raise FieldError for the first field of ``obj`` outside its Range (None passes if optional)."""
    for field, allowed in ranges.items():
        value = getattr(obj, field)
        if value is None and field in optional:
            continue
        if not allowed.admits(value):
            raise FieldError(field, f"must be {allowed.describe()}, got {value!r}")


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's floats: ``1e-3`` is a number, not the string YAML 1.1 makes it."""


Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
for _first in "-+0123456789.":
    Loader.yaml_implicit_resolvers.setdefault(_first, []).insert(0, ("tag:yaml.org,2002:float", _EXP_FLOAT))


def yaml_load(text: str) -> Any:
    """Parse YAML text with ``Loader`` (YAML 1.2-style floats)."""
    return yaml.load(text, Loader=Loader)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} matches none of {[_type_name(a) for a in args]}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (tuple, list, Sequence, typing.Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            items = tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
        else:
            elem = args[0] if args else Any
            items = tuple(_coerce(v, elem, f"{where}[{i}]") for i, v in enumerate(value))
        return items if (origin is tuple or tp is tuple) else list(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    missing = [
        n for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    try:
        return cls(**kwargs)
    except FieldError as e:
        raise ConfigError(f"{where}.{e.field}: {e.reason}") from e
    except (ValueError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{where}: {e}") from e


def to_dict(cfg: Any) -> Any:
    """Plain-data view of a config (tuples become lists), suitable for YAML/JSON."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["a.b=3", "c=true"]`` -> ``{"a": {"b": 3}, "c": True}``; values parsed as YAML (``Loader``)."""
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is set both as a value and a section")
        node[parts[-1]] = yaml_load(raw) if raw.strip() else ""
    return out


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``update`` wins."""
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def read_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A YAML file's top-level mapping (empty file: ``{}``), local or on ``gs://``; errors name the file."""
    try:
        text = paths.read_text(path)
    except InputNotFound:
        raise ConfigError(f"{path}: {what} not found") from None
    try:
        data = yaml_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping")
    return dict(data)


def load_yaml(cls: type[T], path: str | Path, overrides: Sequence[str] | Mapping[str, Any] = ()) -> T:
    """Load ``cls`` from a YAML file plus overrides (``key=value`` strings or an already parsed
    mapping); errors name the file."""
    data = read_mapping(path)
    data = merge(data, overrides if isinstance(overrides, Mapping) else parse_overrides(overrides))
    return from_dict(cls, data, where=str(path))
