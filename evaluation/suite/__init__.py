"""Benchmark definitions, one module each; :func:`load_all` imports (and so registers) every one of them.

To add a benchmark, drop one module in this folder that defines a ``@register("<name>")`` :class:`Benchmark`
subclass (its scorer, formats, headline, output kind, task and layout check: see :mod:`evaluation.registry`); name
the module after the benchmark (``vqav2.py`` registers ``vqav2``) so that scoring it imports that module alone.
Benchmarks that share code share a base in a private module (``_vqa``, ``_editing``, ``_refer``), not imported here.
Keep module-level imports light (no torch, no task classes: a benchmark's ``task`` imports its own): ``python -m
evaluation list`` imports all of them, and ``score <benchmark>`` starts with what its module imports.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every public module of this package (the registry calls it once, on first need of the full list)."""
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
        importlib.import_module(f"{__name__}.{module}")
