"""Readers for caption benchmarks (COCO Captions, Flickr30K): official reference files and ``[{"image_id","caption"}]``.

References, either layout (detected from the keys):

* COCO captions annotations (``captions_val2014.json``, or Flickr30K converted to it, e.g. LAVIS' ``test_gt``):
  ``{"images": [{"id": ...}, ...], "annotations": [{"image_id": ..., "caption": str, ...}, ...]}``. The scored images
  are those of ``images`` (``COCO.getImgIds()``, which ``COCOEvalCap`` iterates); each needs at least one annotation.
* Karpathy split files (``dataset_coco.json``, ``dataset_flickr30k.json``):
  ``{"images": [{"filename": str, "split": "train"|"val"|"test"|"restval", "sentences": [{"raw": str}, ...],
  ["cocoid": int]}, ...]}``; only the images of ``split`` are scored, each with its ``raw`` sentences. The image id is
  ``cocoid`` when present, else the integer after the last ``_`` of the file name's stem
  (``1000092795.jpg`` -> 1000092795, ``COCO_val2014_000000391895.jpg`` -> 391895), which is how lmms-eval's
  ``coco_karpathy`` task derives it.

Predictions: a JSON list (the COCO results format; ``.jsonl`` with one object a line is also read)
``[{"image_id": ..., "caption": str}, ...]``: exactly one per scored image, ids of the same type as the references'
(``COCO.loadRes`` compares them as given).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from evaluation.readers import preview
from setok.io import DataError, read_json, read_jsonl

ImageId = int | str


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _karpathy_id(path: Path, image: dict[str, Any], index: int) -> ImageId:
    if "cocoid" in image:
        return image["cocoid"]
    name = image.get("filename")
    tail = Path(name).stem.rsplit("_", 1)[-1] if isinstance(name, str) else ""
    if not tail.isdigit():
        raise DataError(f"{path}: image {index} has no 'cocoid' and no numeric file name ({name!r})")
    return int(tail)


def _read_karpathy(path: Path, images: list[Any], split: str) -> dict[ImageId, list[str]]:
    refs: dict[ImageId, list[str]] = {}
    splits: Counter[str] = Counter()
    for i, image in enumerate(images):
        if not isinstance(image, dict) or not isinstance(image.get("sentences"), list) or "split" not in image:
            raise DataError(f"{path}: image {i} lacks 'split' or a 'sentences' list (Karpathy layout)")
        splits[str(image["split"])] += 1
        if image["split"] != split:
            continue
        image_id = _karpathy_id(path, image, i)
        if image_id in refs:
            raise DataError(f"{path}: duplicate image id {image_id!r} in split {split!r}")
        raws = [s.get("raw") if isinstance(s, dict) else None for s in image["sentences"]]
        if not raws or not all(isinstance(r, str) for r in raws):
            raise DataError(f"{path}: image {image_id!r} has no sentences or a sentence without a 'raw' string")
        refs[image_id] = raws
    if not refs:
        raise DataError(f"{path}: no images in split {split!r}; splits present: {dict(sorted(splits.items()))}")
    return refs


def _read_coco(path: Path, data: dict[str, Any]) -> dict[ImageId, list[str]]:
    images, anns = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(anns, list):
        raise DataError(f"{path}: 'images' and 'annotations' must be lists")
    refs: dict[ImageId, list[str]] = {}
    for i, image in enumerate(images):
        if not isinstance(image, dict) or not _is_id(image.get("id")):
            raise DataError(f"{path}: images[{i}] lacks an integer or string 'id'")
        if image["id"] in refs:
            raise DataError(f"{path}: duplicate image id {image['id']!r} in 'images'")
        refs[image["id"]] = []
    stray: list[ImageId] = []
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict) or not _is_id(ann.get("image_id")) or not isinstance(ann.get("caption"), str):
            raise DataError(f"{path}: annotations[{i}] lacks an 'image_id' or a string 'caption'")
        if ann["image_id"] in refs:
            refs[ann["image_id"]].append(ann["caption"])
        else:
            stray.append(ann["image_id"])
    if stray:
        raise DataError(f"{path}: {len(stray)} annotations refer to image ids absent from 'images': {preview(stray)}")
    bare = [i for i, caps in refs.items() if not caps]
    if bare:
        raise DataError(f"{path}: {len(bare)} images have no caption annotation: {preview(bare)}")
    if not refs:
        raise DataError(f"{path}: no images")
    return refs


def read_caption_references(path: str | os.PathLike[str], split: str = "test") -> dict[ImageId, list[str]]:
    """Reference captions per image, in file order (COCO or Karpathy layout, see the module docstring).

    Args:
        path: Reference JSON.
        split: Karpathy split to score (ignored for the COCO layout).

    Raises:
        DataError: Missing file, unknown layout, malformed entries, duplicate images, images without captions.
    """
    path = Path(path)
    data = read_json(path)
    if isinstance(data, dict) and "annotations" in data:
        return _read_coco(path, data)
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        return _read_karpathy(path, data["images"], split)
    raise DataError(f"{path}: expected COCO captions ('images' + 'annotations') or a Karpathy split file ('images')")


def read_caption_predictions(path: str | os.PathLike[str]) -> dict[ImageId, str]:
    """Predicted caption per image from ``[{"image_id", "caption"}]`` (JSON list, or ``.jsonl``).

    Raises:
        DataError: Missing file, not a list of objects, missing keys, non-string caption, duplicate image ids.
    """
    path = Path(path)
    rows = read_jsonl(path) if path.suffix == ".jsonl" else read_json(path)
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{path}: expected a non-empty list of {{'image_id', 'caption'}} objects")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not _is_id(row.get("image_id")) or not isinstance(row.get("caption"), str):
            raise DataError(f"{path}: entry {i} lacks an integer or string 'image_id' or a string 'caption'")
    dups = [k for k, c in Counter(r["image_id"] for r in rows).items() if c > 1]
    if dups:
        raise DataError(f"{path}: {len(dups)} image ids have more than one caption: {preview(dups)}")
    return {r["image_id"]: r["caption"] for r in rows}


def read_captions(
    predictions: str | os.PathLike[str], references: str | os.PathLike[str], split: str = "test"
) -> tuple[dict[ImageId, list[str]], dict[ImageId, str]]:
    """Read both files and check that every reference image has exactly one prediction and nothing else.

    Returns:
        ``(references, predictions)``, both keyed in reference order.

    Raises:
        DataError: Any reader error, missing predictions, or predictions for images not in the references.
    """
    predictions, references = Path(predictions), Path(references)
    refs = read_caption_references(references, split)
    preds = read_caption_predictions(predictions)
    missing = [i for i in refs if i not in preds]
    if missing:
        hint = ""
        as_text = {str(k) for k in preds}
        if all(str(i) in as_text for i in missing):
            hint = " (the ids differ only in type: string vs integer)"
        raise DataError(
            f"{predictions}: missing captions for {len(missing)} of {len(refs)} images of {references}{hint}: "
            f"{preview(missing)}"
        )
    extra = [i for i in preds if i not in refs]
    if extra:
        raise DataError(f"{predictions}: {len(extra)} image ids are not in {references}: {preview(extra)}")
    return refs, {i: preds[i] for i in refs}
