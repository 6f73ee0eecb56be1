"""Check that a benchmark's official files are in place: each benchmark's own check, declared on its class.

``python -m evaluation.layout_check --config C --benchmark NAME --out results/data/checked/NAME.json`` (or
``--dataset NAME``, as ``python -m setok.data.checks``) runs :meth:`evaluation.registry.Benchmark.check_layout` of the
registered benchmark ``NAME`` on its ``benchmarks.NAME`` entry (a name no benchmark is registered under: every
configured path exists), verifies the ``SHA256SUMS`` found beside its files (``--write-checksums`` pins them first)
and writes ``{"dataset", "kind", "checked", "checksums_verified"}``; on a problem it exits 2 with one line
``error: benchmark <name>: <path> missing (expected <what>); download <where from> and place it at <path>``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evaluation import registry
from setok.data.checks import main as check_main
from setok.data.checksums import finish
from setok.data.layout import CheckReport, Layout, check_configured_paths


def check_benchmark(name: str, spec: Mapping[str, Any], *, write: bool = False) -> CheckReport:
    """Check one ``benchmarks.<name>`` entry's official files (its ``annotations``, ``questions``, ``images``,
    ``inputs`` and path ``options``) with the check of the benchmark registered as ``name``.

    Args:
        name: The benchmark (for messages, the record and the registry look-up).
        spec: Its config entry.
        write: Write ``SHA256SUMS`` for the named files first (``--write-checksums``).

    Raises:
        ConfigError: A path the benchmark needs is not set.
        DataError: ``benchmark <name>: <path> missing (expected ...); download ... and place it at ...``, a
            malformed file, or a file that fails its ``SHA256SUMS``.
    """
    lay = Layout("benchmarks", name, "benchmark")
    if name in registry.names():
        registry.get(name).check_layout(lay, spec)
    else:
        check_configured_paths(lay, spec)
    return finish(lay, write=write)


def main(argv: list[str] | None = None) -> int:
    """``python -m evaluation.layout_check``: the layout-check CLI with benchmarks."""
    return check_main(argv, prog="python -m evaluation.layout_check", check_benchmark=check_benchmark)


if __name__ == "__main__":
    raise SystemExit(main())
