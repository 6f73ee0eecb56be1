"""The machinery under the config schema, on small stand-in dataclasses: conversion, section checks, unions, schema."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import jsonschema
import pytest

from setok.configtools import ConfigError, check_tree, from_dict, json_schema, to_dict

SEEN: list[str] = []


@dataclass(frozen=True)
class Leaf:
    size: int = 1

    def check(self, path: str) -> None:
        SEEN.append(path)
        if self.size < 1:
            raise ConfigError(f"{path}.size: must be >= 1")


@dataclass(frozen=True)
class Shape:
    kind: str = "square"
    KINDS: ClassVar[dict[str, type]]
    DEFAULT_KIND: ClassVar[str] = "square"


@dataclass(frozen=True)
class Square(Shape):
    kind: Literal["square"] = "square"
    side: float = 1.0


@dataclass(frozen=True)
class Circle(Shape):
    kind: Literal["circle"] = "circle"
    radius: float = 1.0


Shape.KINDS = {"square": Square, "circle": Circle}


@dataclass(frozen=True)
class Root:
    leaf: Leaf = field(default_factory=Leaf)
    leaves: dict[str, Leaf] = field(default_factory=dict)
    optional: Leaf | None = None
    shapes: list[Shape] = field(default_factory=list)

    def check(self, path: str) -> None:
        SEEN.append(path or "<root>")


def test_from_dict_and_to_dict_round_trip_with_unions_picked_by_kind() -> None:
    data = {"leaf": {"size": 2}, "leaves": {"a": {}}, "optional": None,
            "shapes": [{"kind": "circle", "radius": 2}, {"side": 3}]}
    root = from_dict(Root, data)
    assert root.shapes == [Circle(radius=2.0), Square(side=3.0)]
    assert to_dict(root) == {"leaf": {"size": 2}, "leaves": {"a": {"size": 1}}, "optional": None,
                             "shapes": [{"kind": "circle", "radius": 2.0}, {"kind": "square", "side": 3.0}]}


@pytest.mark.parametrize("data, message", [
    ({"shapes": [{"kind": "cube"}]}, r"^shapes\[0\]\.kind: 'cube' is not one of 'square', 'circle'$"),
    ({"shapes": [{"kind": "circle", "side": 1}]}, r"^shapes\[0\]\.side: unknown key \(allowed here: kind, radius\)"),
    ({"leaf": {"size": "2"}}, r"^leaf\.size: expected an integer"),
    ({"leef": {}}, r"^leef: unknown key"),
])
def test_from_dict_names_the_key_path(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(Root, data)


def test_check_tree_checks_every_section_before_its_parent() -> None:
    SEEN.clear()
    check_tree(from_dict(Root, {"leaves": {"a": {}, "b": {}}}))
    assert SEEN == ["leaf", "leaves.a", "leaves.b", "<root>"]
    with pytest.raises(ConfigError, match=r"^leaves\.b\.size: must be >= 1$"):
        check_tree(from_dict(Root, {"leaves": {"a": {}, "b": {"size": 0}}}))


def test_json_schema_has_one_branch_per_kind() -> None:
    schema = json_schema(Root)
    jsonschema.validate({"shapes": [{"side": 1}, {"kind": "circle", "radius": 1}]}, schema)
    for bad in ({"shapes": [{"radius": 1}]}, {"shapes": [{"kind": "cube"}]}, {"leaf": {"size": 1.5}}, {"x": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
