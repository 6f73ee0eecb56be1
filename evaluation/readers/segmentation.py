"""Readers for referring segmentation: COCO-RLE mask lists, the official RefCOCO release, and the ReasonSeg folders.

* Mask lists (predictions, and references in our contract): a JSON list (or ``.jsonl``) of
  ``{"id": str|int, "segmentation": {"size": [h, w], "counts": str|[int, ...]}}``, compressed (string) or uncompressed
  (list) COCO RLE; references may add ``"ignore": <RLE>``, pixels left out of both masks (ReasonSeg's 255 label).
* RefCOCO / RefCOCO+ / RefCOCOg release folder (``lichengunc/refer`` layout, as LISA reads it):
  ``instances.json`` (COCO instances: ``images`` with ``height``/``width``, ``annotations`` with ``segmentation``)
  and ``refs(<split_by>).p`` (a pickled list of refs
  ``{"ref_id", "ann_id", "image_id", "split", "sentences": [{"sent_id", "sent"}]}``). As in LISA's ``ValDataset``,
  every sentence of every ref in the split is one sample (id ``sent_id``) whose target is the ref's annotation mask.
* ReasonSeg folder (``ReasonSeg/val``): ``<name>.jpg`` + ``<name>.json`` (labelme ``shapes``); masks rasterised with
  OpenCV exactly as LISA's ``utils/data_processing.py::get_mask_from_json`` (sample id ``<name>``).
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.readers import preview
from setok.io import DataError, read_json, read_jsonl, read_refs_pickle

SampleId = str | int
Rle = dict[str, Any]  # {"size": [h, w], "counts": str}


@dataclass(frozen=True)
class MaskPair:
    """One scored sample.

    Attributes:
        id: Sample id.
        prediction: Predicted mask (compressed RLE).
        reference: Reference mask (compressed RLE).
        ignore: Pixels excluded from both, or ``None``.
    """

    id: SampleId
    prediction: Rle
    reference: Rle
    ignore: Rle | None = None


def rle_string_counts(counts: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string (``maskApi.c::rleFrString``'s format), for validation.

    pycocotools decodes malformed strings without complaint (and writes past the mask for overlong ones), so strings
    are parsed here first: 5 bits per char (offset 48), bit 0x20 continues a value, 0x10 in a value's last char is
    its sign, and from the third run on each value is a difference to the run two before.

    Raises:
        ValueError: A character outside ``'0'..'o'``, a truncated value, or a negative run.
    """
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise ValueError("truncated value at the end")
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {counts[pos]!r} at {pos} is not RLE")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and c & 0x10:
                value -= 1 << shift  # sign-extend
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError(f"negative run length {value}")
        runs.append(value)
    return runs


def to_rle(obj: Any, where: str) -> Rle:
    """Validate one COCO RLE object and return it compressed, with ``counts`` as ``str``.

    Args:
        obj: ``{"size": [h, w], "counts": str | list[int]}``.
        where: ``"<file>: <id>"`` for the error message.

    Raises:
        DataError: Not an RLE, or run lengths that do not add up to ``h * w``.
    """
    from pycocotools import mask as mask_utils

    size = obj.get("size") if isinstance(obj, dict) else None
    counts = obj.get("counts") if isinstance(obj, dict) else None
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s >= 0 for s in size)):
        raise DataError(f"{where}: segmentation must be a COCO RLE {{'size': [h, w], 'counts': ...}}")
    h, w = size
    if isinstance(counts, str):
        try:
            runs = rle_string_counts(counts)
        except ValueError as e:
            raise DataError(f"{where}: malformed RLE counts ({e})") from None
    elif isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        runs = counts
    else:
        raise DataError(f"{where}: RLE 'counts' must be a string or a list of non-negative integers")
    if sum(runs) != h * w:
        raise DataError(f"{where}: RLE runs cover {sum(runs)} pixels, size {h}x{w} has {h * w}")
    if isinstance(counts, list):
        counts = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)["counts"].decode("ascii")
    return {"size": [h, w], "counts": counts}


def decode(rle: Rle) -> np.ndarray:
    """``(h, w)`` uint8 mask of a validated compressed RLE (pycocotools)."""
    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():  # pycocotools under NumPy 2 warns about __array__'s copy keyword on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})


def encode(mask: np.ndarray) -> Rle:
    """Compressed RLE (``counts`` as ``str``) of a binary ``(h, w)`` mask."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8))
    return {"size": [int(x) for x in rle["size"]], "counts": rle["counts"].decode("ascii")}


def read_mask_list(path: str | os.PathLike[str], *, allow_ignore: bool = False) -> dict[SampleId, dict[str, Any]]:
    """Read ``[{"id", "segmentation", ["ignore"]}]`` into ``id -> {"segmentation": Rle, "ignore": Rle | None}``.

    Raises:
        DataError: Missing file, not a list, rows without id/segmentation, duplicate ids, invalid RLE.
    """
    path = Path(path)
    rows = read_jsonl(path) if path.suffix == ".jsonl" else read_json(path)
    if not isinstance(rows, list) or not rows:
        raise DataError(f"{path}: expected a non-empty list of {{'id', 'segmentation'}} objects")
    for i, row in enumerate(rows):
        ok_id = isinstance(row, dict) and (isinstance(row.get("id"), str) or type(row.get("id")) is int)
        if not ok_id or "segmentation" not in row:
            raise DataError(f"{path}: entry {i} lacks an integer or string 'id' or a 'segmentation'")
    dups = [k for k, c in Counter(r["id"] for r in rows).items() if c > 1]
    if dups:
        raise DataError(f"{path}: {len(dups)} duplicate ids: {preview(dups)}")
    out: dict[SampleId, dict[str, Any]] = {}
    for r in rows:
        ignore = r.get("ignore") if allow_ignore else None
        out[r["id"]] = {
            "segmentation": to_rle(r["segmentation"], f"{path}: id {r['id']!r}"),
            "ignore": None if ignore is None else to_rle(ignore, f"{path}: id {r['id']!r} ignore"),
        }
    return out


def _annotation_rle(segmentation: Any, height: int, width: int, where: str) -> Rle:
    """Polygons / RLE of one COCO annotation as one mask (polygons united, as ``COCO.annToRLE`` does).

    LISA instead sums the per-polygon masks without clipping; where two polygons of one annotation overlap its target
    holds 2, which its K = 2 histogram drops from the target while a prediction there still counts in the union. The
    union here differs from LISA only on such pixels (rare: polygons of one COCO instance seldom overlap).
    """
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list) and not segmentation:  # LISA: empty segmentation -> all-zero target
        return encode(np.zeros((height, width), dtype=np.uint8))
    if isinstance(segmentation, dict):  # crowd-style RLE
        return to_rle(segmentation, where)
    if not (isinstance(segmentation, list) and all(isinstance(p, list) for p in segmentation)):
        raise DataError(f"{where}: segmentation is neither polygons nor an RLE")
    try:
        merged = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    except (TypeError, ValueError, IndexError) as e:
        raise DataError(f"{where}: unusable polygons ({e})") from None
    return {"size": [height, width], "counts": merged["counts"].decode("ascii")}


def read_refer_release(folder: str | os.PathLike[str], split: str, split_by: str) -> list[dict[str, Any]]:
    """Reference masks of one split of an official RefCOCO/+/g release folder, one row per sentence.

    Args:
        folder: Folder holding ``instances.json`` and ``refs(<split_by>).p``.
        split: ``val``, ``testA``, ``testB``, ``test``, ...
        split_by: ``unc`` (RefCOCO, RefCOCO+), ``umd`` or ``google`` (RefCOCOg).

    Returns:
        Rows ``{"id": sent_id, "ref_id", "ann_id", "image_id", "sentence", "segmentation": Rle}`` in refs order.

    Raises:
        DataError: Missing files, an unknown split, or refs pointing at missing annotations or images.
    """
    folder = Path(folder)
    refs_path, inst_path = folder / f"refs({split_by}).p", folder / "instances.json"
    refs = read_refs_pickle(refs_path)
    inst = read_json(inst_path)
    if not isinstance(inst, dict) or not isinstance(inst.get("images"), list) or not isinstance(
        inst.get("annotations"), list
    ):
        raise DataError(f"{inst_path}: expected COCO instances with 'images' and 'annotations' lists")
    images = {im["id"]: im for im in inst["images"] if isinstance(im, dict) and "id" in im}
    anns = {a["id"]: a for a in inst["annotations"] if isinstance(a, dict) and "id" in a}
    chosen = [r for r in refs if r.get("split") == split]
    if not chosen:
        present = sorted({str(r.get("split")) for r in refs})
        raise DataError(f"{refs_path}: no refs in split {split!r}; splits present: {', '.join(present)}")
    rows: list[dict[str, Any]] = []
    for ref in chosen:
        ann = anns.get(ref.get("ann_id"))
        if ann is None:
            raise DataError(f"{inst_path}: annotation {ref.get('ann_id')!r} of ref {ref.get('ref_id')!r} not found")
        image = images.get(ann.get("image_id"))
        if image is None or not all(isinstance(image.get(k), int) for k in ("height", "width")):
            raise DataError(f"{inst_path}: image {ann.get('image_id')!r} (height, width) not found")
        rle = _annotation_rle(ann.get("segmentation"), image["height"], image["width"], f"{inst_path}: ann {ann['id']}")
        sentences = ref.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            raise DataError(f"{refs_path}: ref {ref.get('ref_id')!r} has no sentences")
        for sent in sentences:
            if not isinstance(sent, dict) or "sent_id" not in sent:
                raise DataError(f"{refs_path}: ref {ref.get('ref_id')!r} has a sentence without 'sent_id'")
            rows.append(
                {
                    "id": sent["sent_id"],
                    "ref_id": ref.get("ref_id"),
                    "ann_id": ann["id"],
                    "image_id": ann.get("image_id"),
                    "sentence": sent.get("sent", sent.get("raw", "")),
                    "segmentation": rle,
                }
            )
    dups = [k for k, c in Counter(r["id"] for r in rows).items() if c > 1]
    if dups:
        raise DataError(f"{refs_path}: {len(dups)} duplicate sent_ids in split {split!r}: {preview(dups)}")
    return rows


def reasonseg_mask(json_path: Path, height: int, width: int) -> tuple[np.ndarray, list[str]]:
    """ReasonSeg label mask (0 background, 1 target, 255 ignore) as LISA's ``get_mask_from_json`` draws it.

    Polygons (except ``flag``) are drawn largest first (area of each drawn alone), so smaller ones paint over larger
    ones; each is ``cv2.polylines`` (closed, thickness 1) then ``cv2.fillPoly`` with points cast to int32 (truncation).

    Returns:
        ``(mask, texts)``: the ``(height, width)`` uint8 mask and the file's ``text`` list.
    """
    import cv2

    try:
        anno = json.loads(json_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:  # LISA retries with cp1252
        anno = json.loads(json_path.read_text(encoding="cp1252"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{json_path}: cannot read ReasonSeg JSON ({str(e).splitlines()[0]})") from None
    try:
        shapes = [s for s in anno["shapes"] if "flag" != s["label"].lower()]
        polys = [np.array([s["points"]], dtype=np.int32) for s in shapes]
        texts = list(anno.get("text", []))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{json_path}: malformed ReasonSeg shapes ({e})") from None
    areas = []
    for poly in polys:
        tmp = np.zeros((height, width), dtype=np.uint8)
        cv2.polylines(tmp, poly, True, 1, 1)
        cv2.fillPoly(tmp, poly, 1)
        areas.append(tmp.sum())
    mask = np.zeros((height, width), dtype=np.uint8)
    for k in np.argsort(areas)[::-1]:
        value = 255 if "ignore" in shapes[k]["label"].lower() else 1
        cv2.polylines(mask, polys[k], True, value, 1)
        cv2.fillPoly(mask, polys[k], value)
    return mask, texts


def read_reasonseg_folder(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Reference masks of a ReasonSeg split folder (``<name>.jpg`` + ``<name>.json``), one row per image.

    The mask size is the image's as ``cv2.imread`` loads it (what LISA uses). Rows:
    ``{"id": name, "sentence": first text, "segmentation": Rle (label 1), "ignore": Rle (label 255) | None}``.

    Raises:
        DataError: No images, an image without its JSON, or an unreadable file.
    """
    import cv2

    folder = Path(folder)
    images = sorted(folder.glob("*.jpg"))
    if not images:
        raise DataError(f"{folder}: no ReasonSeg .jpg images")
    rows = []
    for image_path in images:
        json_path = image_path.with_suffix(".json")
        if not json_path.is_file():
            raise DataError(f"{json_path}: annotation of {image_path.name} not found")
        img = cv2.imread(str(image_path))
        if img is None:
            raise DataError(f"{image_path}: cannot read image")
        mask, texts = reasonseg_mask(json_path, *img.shape[:2])
        rows.append(
            {
                "id": image_path.stem,
                "sentence": texts[0] if texts else "",
                "segmentation": encode(mask == 1),
                "ignore": encode(mask == 255) if (mask == 255).any() else None,
            }
        )
    return rows


def pair_masks(
    predictions: str | os.PathLike[str],
    references: str | os.PathLike[str],
    reference_rows: list[dict[str, Any]] | None = None,
) -> list[MaskPair]:
    """Align predictions with references; every reference id needs one prediction of the same mask size.

    Args:
        predictions: Mask-list file of predictions.
        references: Mask-list file of references (read unless ``reference_rows`` is given; then only named in errors).
        reference_rows: Already-read reference rows (from a release folder), ``{"id", "segmentation", ["ignore"]}``.

    Raises:
        DataError: Missing or extra ids, or a prediction whose size differs from its reference.
    """
    predictions, references = Path(predictions), Path(references)
    if reference_rows is None:
        refs = read_mask_list(references, allow_ignore=True)
    else:
        refs = {r["id"]: {"segmentation": r["segmentation"], "ignore": r.get("ignore")} for r in reference_rows}
    preds = read_mask_list(predictions)
    missing = [i for i in refs if i not in preds]
    if missing:
        as_text = {str(k) for k in preds}
        hint = " (the ids differ only in type: string vs integer)" if all(str(i) in as_text for i in missing) else ""
        raise DataError(
            f"{predictions}: missing masks for {len(missing)} of {len(refs)} ids of {references}{hint}: "
            f"{preview(missing)}"
        )
    extra = [i for i in preds if i not in refs]
    if extra:
        raise DataError(f"{predictions}: {len(extra)} ids are not in {references}: {preview(extra)}")
    pairs = []
    for i, ref in refs.items():
        p, r, g = preds[i]["segmentation"], ref["segmentation"], ref["ignore"]
        if p["size"] != r["size"] or (g is not None and g["size"] != r["size"]):
            raise DataError(
                f"{predictions}: id {i!r} mask is {p['size'][0]}x{p['size'][1]} but the reference in {references} "
                f"is {r['size'][0]}x{r['size'][1]}"
            )
        pairs.append(MaskPair(i, p, r, g))
    return pairs
