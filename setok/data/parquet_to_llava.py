"""Conversation parquet with the images inside the rows (Hugging Face's ``Image`` feature: EMOVA's SFT / alignment
sets, LLaVA-OneVision-style releases) -> LLaVA's conversation JSON plus an image folder, which ``kind: llava`` reads.

``python -m setok.data.parquet_to_llava --parquet resources/emova/emova-sft-4m --images resources/emova/images
--out resources/emova/emova_sft.json [--limit N]``

reads every ``*.parquet`` below ``--parquet`` in name order, one row group at a time (a 4M-row release never sits in
memory), and writes each row's image as it is stored (no re-encoding; the suffix from the bytes' format) to
``<images>/<parquet file>/<row>.<ext>``, and one JSON list ``[{"id", "image", "conversations"}]`` (``image`` absent
for text-only rows; ``id`` the row's own when it is unique, else ``<parquet file>:<row>``). Rerunnable: an image already
written with the same size is kept. A row whose image is not a JPEG / PNG / WebP / GIF / BMP, or a file without a
``conversations`` column, is an error naming the file and the row.
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from setok.cli import run
from setok.data.shards_to_coco import write_image
from setok.data.sources.llava import parquet_files
from setok.io import DataError, write_json

log = logging.getLogger("setok.data.parquet_to_llava")

# Leading bytes of the image formats PIL reads that releases store.
MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF87a", ".gif"), (b"GIF89a", ".gif"),
         (b"BM", ".bmp"))


def image_suffix(data: bytes) -> str | None:
    """The file suffix of encoded image ``data`` by its signature (None: not an image format we know)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return next((suffix for magic, suffix in MAGIC if data.startswith(magic)), None)


def parquet_rows(path: Path, *, batch_size: int = 256) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(row number in the file, {"id", "image", "conversations"})`` of one parquet file, a batch at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        if "conversations" not in names:
            raise DataError(f"{path}: parquet without a 'conversations' column (has {', '.join(names)})")
        columns = [c for c in ("id", "image", "conversations") if c in names]
        n = 0
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
            for row in batch.to_pylist():
                yield n, row
                n += 1
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable parquet file ({e.__class__.__name__}: {e})") from None


def image_bytes(value: Any, where: str) -> bytes | str | None:
    """An ``image`` cell: the HF ``Image`` struct's bytes, a path string kept as it is, or None (text-only)."""
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, dict) and value.get("bytes"):
        return bytes(value["bytes"])
    if isinstance(value, dict) and value.get("path"):
        raise DataError(f"{where}: the image is stored by path only ({value['path']!r}), not inside the file; use "
                        f"the release's image folder as the source's root instead")
    if isinstance(value, bytes):
        return value
    raise DataError(f"{where}: unrecognised image cell ({type(value).__name__})")


def convert(parquet: Path, images: Path, out: Path, *, limit: int | None = None) -> int:
    """Convert every parquet file under ``parquet``; returns the number of records written."""
    files = parquet_files(parquet)
    base = parquet if parquet.is_dir() else parquet.parent
    records: list[dict[str, Any]] = []
    origins: list[str] = []  # "<file>:<row>" of each record
    written = 0
    bar = tqdm(total=limit, desc="rows", unit="row")
    for f in files:
        rel = f.relative_to(base).with_suffix("").as_posix()
        for n, row in parquet_rows(f):
            if limit is not None and len(records) >= limit:
                break
            where, origin = f"{f}: row {n}", f"{rel}:{n}"
            rid = row.get("id")
            rec: dict[str, Any] = {"id": origin if rid in (None, "") else str(rid),
                                   "conversations": row["conversations"]}
            img = image_bytes(row.get("image"), where)
            if isinstance(img, str):
                rec["image"] = img
            elif img is not None:
                suffix = image_suffix(img)
                if suffix is None:
                    raise DataError(f"{where}: the image bytes are not a JPEG, PNG, WebP, GIF or BMP")
                rec["image"] = f"{rel}/{n}{suffix}"
                write_image(images / rec["image"], img)
                written += 1
            records.append(rec)
            origins.append(origin)
            bar.update(1)
        if limit is not None and len(records) >= limit:
            break
    bar.close()
    counts: dict[str, int] = {}
    for r in records:
        counts[r["id"]] = counts.get(r["id"], 0) + 1
    for r, origin in zip(records, origins):  # subsets of one release may reuse ids: those get file and row
        if counts[r["id"]] > 1:
            r["id"] = origin
    write_json(out, records)
    log.info("%d records (%d images) from %d parquet files -> %s (images under %s)", len(records), written,
             len(files), out, images)
    return len(records)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m setok.data.parquet_to_llava", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parquet", required=True, type=Path, help="a parquet file, or a folder of them (recursive)")
    ap.add_argument("--images", required=True, type=Path, help="where the images are written, one folder a file")
    ap.add_argument("--out", required=True, type=Path, help="the LLaVA conversation JSON")
    ap.add_argument("--limit", type=int, help="stop after this many rows")
    args = ap.parse_args(argv)
    return run(lambda: convert(args.parquet, args.images, args.out, limit=args.limit))


if __name__ == "__main__":
    raise SystemExit(main())
