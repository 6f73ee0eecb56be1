"""Sharded prediction: the split of a benchmark's queries over N jobs, and the shard folder each job writes.

The split is of BATCHES, not of single queries. :func:`batch_plan` cuts the task's query list into the batches an
unsharded run forms (queries grouped by kind and by whether they read an image, in task order, ``batch_size`` at a
time); shard ``i`` of ``N`` runs batches ``i, i + N, i + 2N, ...`` (:func:`shard_batches`). Every batch is therefore
the same computation as in the unsharded run: the same rows in the same order, so the same padding, the same
``max_new_tokens`` (the batch's largest), the same per-batch generator seed of the diffusion / code sampling, the
same kernel shapes on a GPU. A split of single queries (query ``k`` to shard ``k mod N``) would change the batches,
and with them greedy outputs (padding, kernels picked by batch size) and sampled images (the per-batch noise): the
merged file would differ from an unsharded run's.

What is guaranteed: with the same model, config, ``batch_size``, device kind and software, merging the N shards gives
byte for byte the file or folder an unsharded run writes (the merge calls the task's own writer on the same outputs).
The split depends on the task's query list and ``batch_size`` only; each shard records both (the list's fingerprint)
and the merge refuses shards that disagree.

A shard folder holds ``shard.json`` (which shard, of how many, the fingerprint, the batch size, the text outputs
keyed by query index) and one file per non-text output: ``<k>.png`` for an image (lossless), ``<k>.npy`` for a mask.
Outputs are keyed by the query's index in the task list, so no benchmark id (ints, strings, tuples) is serialised.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from setok.io import DataError, write_json

SHARD_FILE = "shard.json"


def batch_plan(queries: Sequence[Any], batch_size: int) -> list[list[int]]:
    """The batches of an unsharded run, as lists of query indices.

    Queries are grouped by ``(kind, image is None)`` in order of first appearance (one batch never mixes kinds or
    image and text-only prompts), each group cut into ``batch_size`` consecutive queries.

    Args:
        queries: The task's queries (:class:`evaluation.tasks.Query`, in task order).
        batch_size: Queries per batch (>= 1).

    Returns:
        ``B`` lists of indices into ``queries``; every index appears once.
    """
    if batch_size < 1:
        raise DataError(f"--batch-size: must be >= 1, got {batch_size}")
    groups: dict[tuple[str, bool], list[int]] = {}
    for k, q in enumerate(queries):
        groups.setdefault((q.kind, q.image is None), []).append(k)
    return [idx[s : s + batch_size] for idx in groups.values() for s in range(0, len(idx), batch_size)]


def shard_batches(plan: list[list[int]], shard: int, num_shards: int) -> list[list[int]]:
    """Batches ``shard, shard + N, shard + 2N, ...`` of ``plan`` (round robin: shards differ by one batch at most).

    Raises:
        DataError: ``num_shards < 1`` or ``shard`` outside ``[0, num_shards)`` (the flag named).
    """
    if num_shards < 1:
        raise DataError(f"--num-shards: must be >= 1, got {num_shards}")
    if not 0 <= shard < num_shards:
        raise DataError(f"--shard: must be in [0, {num_shards}) for --num-shards {num_shards}, got {shard}")
    return plan[shard::num_shards]


def fingerprint(queries: Sequence[Any]) -> str:
    """SHA-256 of the query list (ids, kinds, prompts, images, budgets, in order): shards of one task share it."""
    rows = [[repr(q.id), q.kind, q.prompt, None if q.image is None else str(q.image), q.max_new_tokens]
            for q in queries]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def write_shard(folder: Path, outputs: Mapping[int, Any], *, benchmark: str, shard: int, num_shards: int,
                total: int, batch_size: int, queries_sha: str) -> Path:
    """Write one shard's outputs (``query index -> str | PIL image | bool (H, W) array``) into ``folder``.

    ``shard.json`` is written last, so a folder without it is an unfinished shard.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts: dict[str, str] = {}
    for k, out in outputs.items():
        if isinstance(out, str):
            texts[str(k)] = out
        elif isinstance(out, Image.Image):
            out.save(folder / f"{k}.png", format="PNG")
        elif isinstance(out, np.ndarray):
            np.save(folder / f"{k}.npy", out, allow_pickle=False)
        else:
            raise DataError(f"{folder}: query {k}: cannot store an output of type {type(out).__name__}")
    write_json(folder / SHARD_FILE, {
        "benchmark": benchmark, "shard": shard, "num_shards": num_shards, "total": total, "batch_size": batch_size,
        "queries_sha": queries_sha, "indices": sorted(outputs), "texts": texts,
    })
    return folder


def read_meta(folder: Path) -> dict[str, Any]:
    """A shard's ``shard.json`` (DataError naming the folder when it is missing: an unfinished shard)."""
    path = Path(folder) / SHARD_FILE
    if not path.is_file():
        raise DataError(f"{folder}: not a finished prediction shard ({SHARD_FILE} missing)")
    return json.loads(path.read_text(encoding="utf-8"))


def read_outputs(folder: Path, meta: Mapping[str, Any]) -> dict[int, Any]:
    """A shard's outputs, ``query index -> str | PIL image (RGB, no metadata) | numpy array``."""
    from PIL import Image

    folder = Path(folder)
    out: dict[int, Any] = {}
    for k in meta["indices"]:
        if str(k) in meta["texts"]:
            out[k] = meta["texts"][str(k)]
        elif (folder / f"{k}.png").is_file():
            with Image.open(folder / f"{k}.png") as im:
                im.load()
                # pixels only: nothing read from the PNG's chunks may reach the writer's encoder
                out[k] = Image.frombytes(im.mode, im.size, im.tobytes())
        elif (folder / f"{k}.npy").is_file():
            out[k] = np.load(folder / f"{k}.npy", allow_pickle=False)
        else:
            raise DataError(f"{folder}: the output of query {k} is missing")
    return out
