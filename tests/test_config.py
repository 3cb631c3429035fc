import dataclasses
from typing import Literal

import pytest

from scaling_jax.config import ConfigError, from_dict, load_yaml, parse_overrides, to_dict


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = 4
    rate: float = 0.1
    kind: Literal["a", "b"] = "a"


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner = Inner()
    sizes: tuple[int, ...] = (1, 2)
    steps: int | None = None


def test_from_dict_nested_and_defaults():
    cfg = from_dict(Outer, {"name": "x", "inner": {"width": 8}, "sizes": [3]})
    assert cfg == Outer(name="x", inner=Inner(width=8), sizes=(3,))
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_int_accepted_for_float_not_reverse():
    assert from_dict(Inner, {"rate": 1}).rate == 1.0
    with pytest.raises(ConfigError, match=r"config\.width: expected an integer"):
        from_dict(Inner, {"width": 2.5})


@pytest.mark.parametrize(
    "data, match",
    [
        ({"name": "x", "inner": {"widht": 3}}, r"config\.inner: unknown key\(s\) \['widht'\]"),
        ({"name": 3}, r"config\.name: expected a string"),
        ({"name": "x", "inner": {"kind": "c"}}, r"config\.inner\.kind: 'c' is not one of"),
        ({}, r"missing required key\(s\) \['name'\]"),
        ({"name": "x", "steps": "many"}, r"config\.steps"),
    ],
)
def test_errors_name_the_field(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(Outer, data)


def test_yaml_with_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("name: base\ninner:\n  width: 2\n")
    cfg = load_yaml(Outer, p, ["inner.width=16", "inner.kind=b", "steps=10"])
    assert cfg == Outer(name="base", inner=Inner(width=16, kind="b"), steps=10)
    with pytest.raises(ConfigError, match=str(p)):
        load_yaml(Outer, p, ["inner.depth=3"])


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["novalue"])
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(Outer, tmp_path / "nope.yaml")


@pytest.mark.parametrize("raw, value", [("1e-3", 1e-3), ("1.0e-3", 1e-3), ("-2E+4", -2e4), (".5e3", 500.0),
                                        ("3e8", 3e8), ("1", 1), ("1.5", 1.5), ("1e", "1e"), ("e3", "e3")])
def test_exponent_numbers_parse_in_overrides_and_files(tmp_path, raw, value):
    """PyYAML (YAML 1.1) reads ``1e-3`` as a string; the loader reads it as YAML 1.2 does."""
    got = parse_overrides([f"inner.rate={raw}"])["inner"]["rate"]
    assert got == value and type(got) is type(value)
    path = tmp_path / "c.yaml"
    path.write_text(f"name: x\nsteps: 3\ninner: {{rate: {raw}}}\n" if isinstance(value, float) else "name: x\n")
    if isinstance(value, float):
        assert load_yaml(Outer, path).inner.rate == value
        assert load_yaml(Outer, path, [f"inner.rate={raw}"]).inner.rate == value


def test_exponent_integers_fill_integer_fields(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nsteps: 1e3\n")
    assert load_yaml(Outer, path).steps == 1000


@dataclasses.dataclass(frozen=True)
class Ranged:
    count: int = 1
    rate: float = 0.5
    mesh: int = -1
    limit: int | None = None

    def __post_init__(self):
        from scaling_jax.config import POSITIVE, POSITIVE_INT, Range, check_ranges

        check_ranges(self, optional=("limit",), count=POSITIVE_INT, rate=POSITIVE,
                     mesh=Range(lo=1, integer=True, extra=(-1,)), limit=POSITIVE_INT)


@pytest.mark.parametrize("data, match", [
    ({"count": 0}, r"^config\.count: must be an integer >= 1, got 0$"),
    ({"rate": float("nan")}, r"^config\.rate: must be a finite number > 0, got nan$"),
    ({"rate": float("inf")}, r"^config\.rate: must be a finite number > 0, got inf$"),
    ({"rate": 0}, r"^config\.rate: must be a finite number > 0, got 0\.0$"),
    ({"mesh": 0}, r"^config\.mesh: must be an integer >= 1 or -1, got 0$"),
    ({"limit": 0}, r"^config\.limit: must be an integer >= 1, got 0$"),
])
def test_range_errors_name_the_dotted_field(data, match):
    with pytest.raises(ConfigError, match=match):
        from_dict(Ranged, data)
    assert from_dict(Ranged, {"mesh": 4, "limit": None}).mesh == 4
