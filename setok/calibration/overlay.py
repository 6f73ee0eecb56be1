"""The calibration's result as a config overlay, and its merge into a variant's resolved config.

The overlay (``results/{variant}/calibration/clustering.yaml``) holds only the chosen grid point, written twice:
as the clustering's values (``tokenizer.clustering``: what the tokenizer runs) and as
``tokenizer.calibration.calibrated`` (the record that they came from a calibration; ``TokenizerConfig.check``
rejects a config where the two differ). It holds no measured number, so a rerun that picks the same point writes the
same bytes and the resolved config keeps its ``config_sha``: checkpoints of an interrupted training still resume.
Light (no torch): the workflow's ``resolve_config`` rule runs :func:`apply_overlay`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from setok.config import Config, dump, from_dict
from setok.configtools import check_tree, deep_merge, read_yaml

SWEPT = ("kernel_c", "min_seed_score", "beta")


def overlay(values: dict[str, float]) -> dict[str, Any]:
    """The overlay mapping of a chosen ``{kernel_c, min_seed_score, beta}``."""
    chosen = {k: float(values[k]) for k in SWEPT}
    return {"tokenizer": {"clustering": dict(chosen), "calibration": {"calibrated": dict(chosen)}}}


def overlay_text(values: dict[str, float]) -> str:
    """YAML of :func:`overlay` (what ``calibrate_clustering`` writes)."""
    return yaml.safe_dump(overlay(values), sort_keys=False, default_flow_style=False)


def apply_overlay(config_text: str, overlay_path: str | Path) -> str:
    """A resolved config's YAML with the calibration overlay at ``overlay_path`` merged in, validated (the overlay
    may set nothing but the calibrated values) and dumped again."""
    delta = read_yaml(overlay_path)
    expected = overlay({k: 0.0 for k in SWEPT})
    unexpected = _keys(delta) - _keys(expected)
    if unexpected:
        raise ValueError(f"{overlay_path}: not a calibration overlay (sets {', '.join(sorted(unexpected))})")
    cfg = from_dict(Config, deep_merge(yaml.safe_load(config_text), delta))
    check_tree(cfg)
    return dump(cfg)


def _keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of the leaves of a nested mapping."""
    out: set[str] = set()
    for k, v in tree.items():
        path = f"{prefix}{k}"
        out |= _keys(v, path + ".") if isinstance(v, dict) else {path}
    return out
