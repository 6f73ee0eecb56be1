"""Merge the N shard folders of a sharded prediction into the file or folder an unsharded run writes.

    python -m evaluation.predict.merge_shards --config results/<v>/config.yaml --benchmark vqav2
        --out results/<v>/predictions/vqav2.json results/<v>/prediction_shards/vqav2.json/{0..7}

CPU only and small (the submitting host runs it: workflow rule ``merge_prediction_file`` / ``merge_prediction_folder``).
The shards must be the N shards of one split of the same query list: each exactly once, every query answered
exactly once, one batch size. The outputs are then put back in the task's query order and written by the task's own
writer (with the subset references under ``limit``), exactly as :func:`evaluation.predict.mllm.predict` writes an
unsharded run: the same outputs give the same bytes (:mod:`evaluation.predict.shards` says when they are the same).
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.predict.shards import batch_plan, fingerprint, read_meta, read_outputs
from setok.cli import run
from setok.config import load_config
from setok.io import DataError

log = logging.getLogger("evaluation.predict.merge_shards")


def check_shards(metas: Sequence[dict[str, Any]], folders: Sequence[Path], *, benchmark: str, total: int,
                 queries_sha: str) -> None:
    """Refuse shards of another benchmark, task list, split or batch size, a shard given twice or missing, and a
    query answered twice or never (one-line DataError naming the folder or the shard)."""
    n = len(folders)
    for folder, m in zip(folders, metas):
        if m["benchmark"] != benchmark:
            raise DataError(f"{folder}: a shard of {m['benchmark']!r}, not of {benchmark!r}")
        if m["num_shards"] != n:
            raise DataError(f"{folder}: shard of a {m['num_shards']}-way split, but {n} shard folders were given")
        if m["total"] != total or m["queries_sha"] != queries_sha:
            raise DataError(f"{folder}: predicted another query list ({m['total']} queries) than the config gives "
                            f"({total}); rerun the shard")
        if m["batch_size"] != metas[0]["batch_size"]:
            raise DataError(f"{folder}: batch size {m['batch_size']}, but {folders[0]} used "
                            f"{metas[0]['batch_size']} (the split is of batches; rerun with one batch size)")
    shards = sorted(m["shard"] for m in metas)
    if shards != list(range(n)):
        raise DataError(f"shards {shards} given; expected each of 0..{n - 1} once")
    seen: dict[int, int] = {}
    for m in metas:
        for k in m["indices"]:
            if k in seen:
                raise DataError(f"query {k} is in shards {seen[k]} and {m['shard']}")
            seen[k] = m["shard"]
    if len(seen) != total:
        missing = sorted(set(range(total)) - set(seen))
        raise DataError(f"{len(missing)} of {total} queries are in no shard (first: {missing[:5]})")


def merge(config: Path, benchmark: str, shards: Sequence[Path], out: Path) -> Path:
    """Check ``shards`` against the task ``config`` gives for ``benchmark`` and write the merged predictions to
    ``out`` (the task's writer; returns ``out``)."""
    from evaluation.tasks import build_task

    cfg = load_config(config)
    if benchmark not in cfg.benchmarks:
        raise DataError(f"{config}: benchmark {benchmark!r} is not configured (known: {', '.join(cfg.benchmarks)})")
    if not shards:
        raise DataError("no shard folder given")
    task = build_task(benchmark, cfg.benchmarks[benchmark])
    queries = task.queries()
    folders = [Path(s) for s in shards]
    metas = [read_meta(f) for f in folders]
    check_shards(metas, folders, benchmark=benchmark, total=len(queries), queries_sha=fingerprint(queries))
    outputs: dict[int, Any] = {}
    for folder, m in sorted(zip(folders, metas), key=lambda fm: fm[1]["shard"]):
        outputs.update(read_outputs(folder, m))
    # the unsharded run's order (its batches, one after the other), so even a writer that kept insertion order would
    # write the same bytes
    order = [k for batch in batch_plan(queries, metas[0]["batch_size"]) for k in batch]
    path = task.write({queries[k].id: outputs[k] for k in order}, out)
    log.info("merged %d shards (%d predictions) of %s into %s", len(folders), len(outputs), benchmark, path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.predict.merge_shards", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, type=Path, help="resolved config with the benchmark's inputs")
    ap.add_argument("--benchmark", required=True)
    ap.add_argument("--out", required=True, type=Path, help="the predictions file or folder the scorer reads")
    ap.add_argument("shards", nargs="+", type=Path,
                    help="the shard folders (python -m evaluation.predict.mllm --shard)")
    args = ap.parse_args(argv)
    return run(lambda: merge(args.config, args.benchmark, args.shards, args.out))


if __name__ == "__main__":
    raise SystemExit(main())
