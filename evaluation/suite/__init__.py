"""Benchmark definitions; every module here is imported (and so registered) when the registry is first used.

To add a benchmark, drop one module in this folder that defines a ``@register("<name>")`` :class:`Benchmark`
subclass (its scorer, formats, headline, output kind, task and layout check: see :mod:`evaluation.registry`).
Benchmarks that share code share a base in a private module (``_vqa``, ``_editing``, ``_refer``), not imported here.
Keep module-level imports light (no torch): ``python -m evaluation list`` imports all of them.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in sorted(
    m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
):
    importlib.import_module(f"{__name__}.{_module}")
