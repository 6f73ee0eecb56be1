"""Image-text tar shards (img2dataset's webdataset output: CC12M, LAION-aesthetics, COYO, ...) -> the COCO captions
layout, so SeTokIM's Stage I reads them as captioning *and* text-to-image samples (``kind: coco_captions``), as the
paper's 28M image-text pairs are used (Sec. 2.2, Table 7; docs/paper-notes.md S5).

``python -m setok.data.shards_to_coco --shards resources/cc12m/shards --images resources/cc12m/images
--out resources/cc12m/captions.json [--limit N]``

writes every image as it is stored in its shard (no re-encoding) to ``<images>/<shard>/<key>.<ext>`` and one JSON
``{"images": [{"id", "file_name"}], "annotations": [{"id", "image_id", "caption"}]}``, ids numbered in shard order.
Rerunnable: an image already written with the same size is kept. An image without a caption, or an unreadable shard,
is an error naming the shard and the member (img2dataset writes a ``.txt`` beside every image it keeps).
"""
from __future__ import annotations

import argparse
import itertools
import logging
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from setok.cli import run
from setok.data.image_shards import IMAGE_SUFFIXES
from setok.io import DataError, atomic_path, write_json

log = logging.getLogger("setok.data.shards_to_coco")


def shard_pairs(shard: Path) -> Iterator[tuple[str, str, bytes, str]]:
    """``(key, image suffix, image bytes, caption)`` per image of one tar shard, in member order.

    Two passes over the tar headers (seeks, cheap): the captions first, then one image at a time, so a shard's
    images (hundreds of MB for 10k samples) are never all held in memory.
    """
    try:
        with tarfile.open(shard, mode="r:") as tar:
            members = [(m, *os.path.splitext(m.name)) for m in tar if m.isfile()]
            captions = {key: tar.extractfile(m).read().decode("utf-8").strip()  # type: ignore[union-attr]
                        for m, key, ext in members if ext == ".txt"}
            for m, key, ext in members:
                if ext.lower() not in IMAGE_SUFFIXES:
                    continue
                if not captions.get(key):
                    raise DataError(f"{shard}: {key}{ext} has no caption ({key}.txt missing or empty)")
                yield key, ext.lower(), tar.extractfile(m).read(), captions[key]  # type: ignore[union-attr]
    except (tarfile.ReadError, EOFError, OSError) as e:
        raise DataError(f"{shard}: not a readable tar shard ({e})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{shard}: a caption is not UTF-8 ({e.reason})") from None


def write_image(path: Path, data: bytes) -> None:
    """``data`` at ``path`` (atomically), unless a file of that size is there from an earlier run."""
    if path.is_file() and path.stat().st_size == len(data):
        return
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def convert(shards: Path, images: Path, out: Path, *, limit: int | None = None) -> int:
    """Convert every ``*.tar`` of ``shards`` (sorted); returns the number of image-caption pairs written."""
    paths = sorted(shards.glob("*.tar"))
    if not paths:
        raise DataError(f"{shards}: no *.tar shards (expected img2dataset's webdataset output)")
    pairs = ((shard, pair) for shard in tqdm(paths, desc="shards", unit="shard") for pair in shard_pairs(shard))
    coco: dict[str, list[dict]] = {"images": [], "annotations": []}
    for n, (shard, (key, ext, data, caption)) in enumerate(itertools.islice(pairs, limit)):  # stops reading at limit
        name = f"{shard.stem}/{os.path.basename(key)}{ext}"
        write_image(images / name, data)
        coco["images"].append({"id": n, "file_name": name})
        coco["annotations"].append({"id": n, "image_id": n, "caption": caption})
    write_json(out, coco)
    log.info("%d image-caption pairs from %d shards -> %s (images under %s)", len(coco["images"]), len(paths), out,
             images)
    return len(coco["images"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m setok.data.shards_to_coco", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", required=True, type=Path, help="folder of img2dataset *.tar shards")
    ap.add_argument("--images", required=True, type=Path, help="where the images are written, one folder a shard")
    ap.add_argument("--out", required=True, type=Path, help="the COCO captions JSON")
    ap.add_argument("--limit", type=int, help="stop after this many pairs")
    args = ap.parse_args(argv)
    return run(lambda: convert(args.shards, args.images, args.out, limit=args.limit))


if __name__ == "__main__":
    raise SystemExit(main())
