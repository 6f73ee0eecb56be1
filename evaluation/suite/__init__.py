"""Benchmark definitions; every module here is imported (and so registered) when the registry is first used.

To add a benchmark, drop one file in this folder that defines a ``@register("<name>")`` :class:`Benchmark` subclass.
Keep module-level imports light (no torch): ``python -m evaluation list`` imports all of them.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in sorted(
    m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
):
    importlib.import_module(f"{__name__}.{_module}")
