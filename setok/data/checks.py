"""Check that a dataset or benchmark is in place in its official layout (and matches its SHA256SUMS).

``python -m setok.data.checks --config C --dataset NAME --out results/data/checked/NAME.json`` checks a training or
evaluation dataset (:mod:`setok.data.dataset_checks`); ``python -m evaluation.layout_check`` takes the same arguments
and also ``--benchmark NAME`` instead of ``--dataset`` for an evaluation benchmark (each benchmark's check is declared
on its class in the evaluation suite). Both check presence and layout cheaply (:mod:`setok.data.layout`), never
scanning millions of files. They write ``{"dataset", "kind", "checked": [paths], "checksums_verified": n}`` and, on a
problem, exit 2 with one line ``error: dataset <name>: <path> missing (expected <what>); download <where from> and
place it at <path>``; where each dataset and benchmark comes from is the table in ``setok/data/layouts.yaml``.

Checksums (:mod:`setok.data.checksums`): this project ships NO checksum lists, because no machine it runs on can
download the official files to compute them. A lab pins what it downloaded with ``--write-checksums``: the check
hashes the named files (annotation JSONs, CSVs, synset lists, refs pickles, template files; not image folders or tar
shards) into a ``SHA256SUMS`` beside each file (``sha256sum`` format ``<hex>  <relative path>``, merged with the
entries already there). Every check verifies each ``SHA256SUMS`` found in a configured folder (the dataset's root) or
beside a configured file (its annotations), every file listed, and fails naming the first mismatching file.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from setok.cli import run
from setok.config import ConfigError, load_config, to_dict
from setok.data.dataset_checks import check_dataset
from setok.data.layout import CheckReport
from setok.io import write_json

log = logging.getLogger("setok.data.checks")

# ``(name, spec, *, write) -> CheckReport`` of one ``benchmarks.<name>`` entry (the evaluation side provides it)
BenchmarkCheck = Callable[..., CheckReport]


def check(config: Path, out: Path, *, dataset: str | None = None, benchmark: str | None = None,
          write: bool = False, check_benchmark: BenchmarkCheck | None = None) -> CheckReport:
    """Check the dataset (or benchmark, with ``check_benchmark``) ``config`` names and write its record to ``out``.

    Raises:
        ConfigError: The entry is not in ``config``, or a benchmark is asked for without ``check_benchmark``.
    """
    cfg = load_config(config)
    section, name = ("benchmarks", benchmark) if benchmark else ("datasets", dataset or "")
    entries = cfg.benchmarks if benchmark else cfg.datasets
    if name not in entries:
        raise ConfigError(f"{section}.{name}: not in {config}")
    if benchmark and check_benchmark is None:
        raise ConfigError(f"--benchmark {name}: benchmark layouts are checked by python -m evaluation.layout_check")
    spec: Mapping[str, Any] = to_dict(entries[name])
    report = (check_benchmark(name, spec, write=write) if benchmark and check_benchmark is not None
              else check_dataset(name, spec, write=write))
    write_json(out, report.record())
    log.info("%s: %d paths in place, %d checksums verified -> %s", name, len(report.checked),
             report.checksums_verified, out)
    return report


def main(argv: list[str] | None = None, *, prog: str = "python -m setok.data.checks",
         check_benchmark: BenchmarkCheck | None = None) -> int:
    """The layout-check CLI; ``check_benchmark`` checks ``--benchmark`` entries (``python -m evaluation.layout_check``).
    """
    ap = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, type=Path)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", help="a key of the config's datasets")
    which.add_argument("--benchmark", help="a key of the config's benchmarks")
    ap.add_argument("--out", required=True, type=Path, help="the check's JSON record")
    ap.add_argument("--write-checksums", action="store_true",
                    help="write SHA256SUMS for the named files, then verify them")
    args = ap.parse_args(argv)
    return run(lambda: check(args.config, args.out, dataset=args.dataset, benchmark=args.benchmark,
                             write=args.write_checksums, check_benchmark=check_benchmark))


if __name__ == "__main__":
    raise SystemExit(main())
