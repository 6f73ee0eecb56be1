"""Visual Genome region descriptions as region captioning (SeTok Table 7 lists Visual Genome in Stage I without
saying how it is used; paper-notes S20).

The release (visualgenome.org, v1.2): ``region_descriptions.json`` = ``[{"id": <image id>, "regions": [{"region_id",
"image_id", "phrase", "x", "y", "width", "height"}, ...]}, ...]``; ``image_data.json`` beside it = ``[{"image_id" (v1.0:
"id"), "url", "width", "height", "coco_id", "flickr_id"}, ...]``, whose ``url`` (``.../rak248/VG_100K_2/1.jpg``) names
the image's folder, ``VG_100K/`` (images.zip) or ``VG_100K_2/`` (images2.zip), under ``root``.

Each image gives one multi-round sample, as LLaVA-1.5 reads Visual Genome: the user asks for a short description of a
region given as a box ``[x0, y0, x1, y1]`` in [0, 1] (two decimals), the assistant answers with its phrase. Ours: the
box is relative to the centre square crop the model sees (S4: every non-segmentation image is centre-cropped); regions
less than half inside that crop are left out, as are repeated phrases; the first ``max_regions`` regions in file order
are kept, and an image left with none gives no sample.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from setok.data.multimodal import ImageRef, MultimodalSample, Turn
from setok.data.sources._common import check_images, require
from setok.io import DataError, read_json

REGION_PROMPT = "Please provide a short description for this region: {}"
IMAGE_DATA = "image_data.json"
IMAGE_FOLDERS = ("VG_100K", "VG_100K_2")
MIN_INSIDE = 0.5  # the share of a region's area that must lie inside the centre crop


def crop_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[float, ...] | None:
    """The box ``(x, y, w, h)`` of a ``width x height`` image as ``(x0, y0, x1, y1)`` in [0, 1] of its centre square
    crop; None when less than :data:`MIN_INSIDE` of the box lies inside the crop (or the box is empty)."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    x0, y0, x1, y1 = x - left, y - top, x + w - left, y + h - top
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, side), min(y1, side)
    area = w * h
    if area <= 0 or cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < MIN_INSIDE * area:
        return None
    return tuple(round(v / side, 2) for v in (cx0, cy0, cx1, cy1))


def box_text(box: tuple[float, ...]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in box) + "]"


def image_paths(path: Path, root: Path) -> dict[int, tuple[Path, int, int]]:
    """``image_data.json``: image id -> (file under ``root``, width, height)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of images")
    out = {}
    for k, im in enumerate(data):
        iid = im.get("image_id", im.get("id")) if isinstance(im, dict) else None
        url = im.get("url") if isinstance(im, dict) else None
        if iid is None or not isinstance(url, str) or not all(key in im for key in ("width", "height")):
            raise DataError(f"{path}: image {k} lacks 'image_id', 'url', 'width' or 'height'")
        folder, name = url.rstrip("/").split("/")[-2:]
        if folder not in IMAGE_FOLDERS:
            raise DataError(f"{path}: image {iid} url {url!r} is not under {' or '.join(IMAGE_FOLDERS)}")
        out[int(iid)] = (root / folder / name, int(im["width"]), int(im["height"]))
    return out


def _rounds(regions: Any, path: Path, iid: int, width: int, height: int, max_regions: int) -> list[tuple[str, str]]:
    if not isinstance(regions, list):
        raise DataError(f"{path}: image {iid} has no 'regions' list")
    rounds, seen = [], set()
    for r in regions:
        try:
            phrase, x, y, w, h = (r["phrase"], float(r["x"]), float(r["y"]), float(r["width"]), float(r["height"]))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: image {iid} has a region without phrase, x, y, width, height") from None
        phrase = " ".join(str(phrase).split())
        box = crop_box(x, y, w, h, width, height)
        if box is None or not phrase or phrase.lower() in seen:
            continue
        seen.add(phrase.lower())
        rounds.append((box_text(box), phrase))
        if len(rounds) == max_regions:
            break
    return rounds


def read_visual_genome(annotations: str | Path, root: str | Path, *, max_regions: int) -> list[MultimodalSample]:
    """One ``caption`` sample per image: up to ``max_regions`` rounds of region box -> phrase."""
    path = require(annotations, "Visual Genome region_descriptions.json")
    images = image_paths(require(path.parent / IMAGE_DATA, f"Visual Genome {IMAGE_DATA} (beside {path.name})"),
                         Path(root))
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of {{'id', 'regions'}} records")
    out, used = [], []
    for k, rec in enumerate(data):
        iid = rec.get("id", rec.get("image_id")) if isinstance(rec, dict) else None
        if iid is None:
            raise DataError(f"{path}: record {k} has no image 'id'")
        if int(iid) not in images:
            raise DataError(f"{path}: image {iid} is not in {IMAGE_DATA}")
        file, width, height = images[int(iid)]
        rounds = _rounds(rec.get("regions"), path, int(iid), width, height, max_regions)
        if not rounds:
            continue
        turns = []
        for n, (box, phrase) in enumerate(rounds):
            prompt = REGION_PROMPT.format(box)
            turns.append(Turn("user", (ImageRef(file), prompt) if n == 0 else (prompt,)))
            turns.append(Turn("assistant", (phrase,)))
        out.append(MultimodalSample(str(iid), "caption", tuple(turns)))
        used.append(file)
    if not out:
        raise DataError(f"{path}: no region inside its image's centre crop")
    check_images(used, path)
    return out
