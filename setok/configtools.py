"""Typed-tree machinery behind the configuration schema: mappings <-> frozen dataclasses, checks, JSON schema.

Nothing here knows the schema itself (``setok.config`` holds it). A dataclass is built from a mapping by
:func:`from_dict`, which rejects unknown keys and wrong types with the dotted key path; :func:`check_tree` then runs
the ``check(path)`` method each section defines for the rules its types cannot express. A *discriminated union* is a
base dataclass carrying ``KINDS`` (tag value -> subclass) and ``DEFAULT_KIND``: :func:`from_dict` picks the subclass
from the mapping's ``kind`` and :func:`json_schema` writes one branch per subclass.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml


class ConfigError(ValueError):
    """A configuration is malformed; the message starts with the dotted key path."""


def key_path(path: str, key: str) -> str:
    """``path.key``, or ``key`` alone at the top level."""
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------------------------- conversion


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _one_of(path: str, value: Any, allowed: typing.Iterable[Any]) -> ConfigError:
    return ConfigError(f"{path}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}")


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert nested dicts to dataclasses."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in args:
            raise _one_of(path, value, args)
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
        return [_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
        return {str(k): _convert(args[1], v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {type(value).__name__} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {path}")  # a bug in the schema, not in the config


def kinds_of(cls: type) -> dict[str, type] | None:
    """The ``kind`` -> subclass table when ``cls`` is the base of a discriminated union, else ``None``."""
    return cls.__dict__.get("KINDS")


def pick_kind(cls: type, data: dict[str, Any], path: str) -> type:
    """The subclass of the discriminated union ``cls`` that ``data['kind']`` (default ``cls.DEFAULT_KIND``) names."""
    kinds = kinds_of(cls) or {}
    kind = data.get("kind", cls.DEFAULT_KIND)  # type: ignore[attr-defined]
    if not isinstance(kind, str) or kind not in kinds:
        raise _one_of(key_path(path, "kind"), kind, kinds)
    return kinds[kind]


def from_dict(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types with their key path."""
    where = path or "<config>"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__} {data!r}")
    if kinds_of(cls) is not None:
        cls = pick_kind(cls, data, path)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{key_path(path, unknown[0])}: unknown key (allowed here: {', '.join(sorted(names))})")
    kwargs = {k: _convert(hints[k], v, key_path(path, k)) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> Any:
    """Inverse of :func:`from_dict`: plain dicts / lists / scalars."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    return obj


def check_tree(obj: Any, path: str = "") -> None:
    """Run every section's ``check(path)``, children before their parent (a parent checks what spans sections)."""
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            check_tree(getattr(obj, f.name), key_path(path, f.name))
        check = getattr(obj, "check", None)
        if check is not None:
            check(path)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            check_tree(v, key_path(path, str(k)))


def deep_merge(base: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``delta`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in delta.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """One config file as a mapping (``{}`` when empty)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


# --------------------------------------------------------------------------------------------- JSON schema


def _dataclass_schema(tp: type) -> dict[str, Any]:
    hints = typing.get_type_hints(tp)
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: json_schema(hints[f.name]) for f in dataclasses.fields(tp)},
    }


def _union_schema(base: type) -> dict[str, Any]:
    """One branch per kind; ``kind`` may be left out only for the default kind (as :func:`pick_kind` reads it)."""
    branches = []
    for kind, cls in (kinds_of(base) or {}).items():
        branch = _dataclass_schema(cls)
        if kind != base.DEFAULT_KIND:  # type: ignore[attr-defined]
            branch["required"] = ["kind"]
        branches.append(branch)
    return {"anyOf": branches}


def json_schema(tp: Any) -> dict[str, Any]:
    """JSON schema of the annotation ``tp`` (dataclasses: closed objects; unions of kinds: one branch a kind)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        return {"anyOf": [json_schema(a) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if dataclasses.is_dataclass(tp):
        return _union_schema(tp) if kinds_of(tp) is not None else _dataclass_schema(tp)
    if origin is list:
        return {"type": "array", "items": json_schema(args[0])}
    if origin is dict:
        return {"type": "object", "additionalProperties": json_schema(args[1])}
    return {
        bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
        str: {"type": "string"}, type(None): {"type": "null"},
    }[tp]
