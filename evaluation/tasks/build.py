""":func:`build_task`: the inference task of a benchmark from its config entry, built by the benchmark's class.

Each benchmark of :mod:`evaluation.suite` that the MLLM answers defines :meth:`~evaluation.registry.Benchmark.task`,
whose docstring names the :class:`setok.config.BenchmarkConfig` fields it reads; the task classes by kind (caption,
vqa, pope, editing, ...) are in this package.
"""

from __future__ import annotations

from evaluation import registry
from evaluation.tasks.base import BenchmarkTask
from setok.config import BenchmarkConfig
from setok.io import DataError


def task_names() -> list[str]:
    """Sorted names of the benchmarks with an inference task."""
    return [n for n in registry.names() if type(registry.get(n)).declares("task")]


def build_task(name: str, cfg: BenchmarkConfig) -> BenchmarkTask:
    """The inference task of benchmark ``name`` from its config entry (``config.benchmarks[name]``).

    Args:
        name: Benchmark name (one of :func:`task_names`).
        cfg: Its :class:`~setok.config.BenchmarkConfig` (official files, images, inputs, limit, options).

    Returns:
        A :class:`~evaluation.tasks.base.Task` (every one also has ``references(out)``, see
        :class:`~evaluation.tasks.base.BenchmarkTask`).

    Raises:
        DataError: Unknown name (the known ones listed), or a needed path unset or missing (named).
    """
    known = task_names()
    if name not in known:
        raise DataError(f"unknown benchmark {name!r} for inference; known: {', '.join(known)}")
    return type(registry.get(name)).task(cfg)
