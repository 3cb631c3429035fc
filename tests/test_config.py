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
