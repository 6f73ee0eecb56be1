"""Shared by the reference-checkpoint tests: the CI config's ``llava15_7b`` variant (a tiny random LLaVA) with the
benchmark fixtures at absolute paths, so the tests run from any working directory."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from setok.config import Config, deep_merge, resolve

ROOT = Path(__file__).resolve().parents[2]
VARIANT = "llava15_7b"


def ci_raw(limits: dict[str, int] | None = None) -> dict[str, Any]:
    """config/paper.yaml + config/ci.yaml, fixture paths made absolute, ``limits`` set per benchmark."""
    raw: dict[str, Any] = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    for name, b in raw["benchmarks"].items():
        for key, v in list(b.items()):
            if isinstance(v, str) and v.startswith("tests/"):
                b[key] = str(ROOT / v)
        if limits and name in limits:
            b["limit"] = limits[name]
    return raw


def reference_config(limits: dict[str, int] | None = None) -> Config:
    """The resolved CI ``llava15_7b`` variant."""
    return resolve(ci_raw(limits), VARIANT)
