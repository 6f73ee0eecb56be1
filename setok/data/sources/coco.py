"""COCO captions (captioning + text-to-image) and COCO instances (object masks for the mask decoder)."""
from __future__ import annotations

from pathlib import Path

from setok.data.multimodal import ImageRef, MultimodalSample, RegionMask, Turn
from setok.data.sources._common import check_images, require
from setok.io import DataError, read_json

SEGMENT_PROMPT = "Please segment the {}."
SEGMENT_ANSWER = ("Sure, it is ", ".")  # the object's tokens go between (evaluation.predict.mllm.SEGMENT_PREFIX)


def segment_sample(sid: str, image: Path, expression: str, region: RegionMask) -> MultimodalSample:
    """The referring-segmentation sample of one expression (COCO instances, RefCOCO)."""
    return MultimodalSample(sid, "segment", (
        Turn("user", (ImageRef(image), SEGMENT_PROMPT.format(expression))),
        Turn("assistant", (SEGMENT_ANSWER[0], ImageRef(image, region), SEGMENT_ANSWER[1])),
    ))


def _images(path: Path, data: dict, root: str | Path) -> dict[int, dict]:
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DataError(f"{path}: expected COCO JSON with 'images' and 'annotations'")
    return {im["id"]: {**im, "path": Path(root) / im["file_name"]} for im in data["images"]}


def read_coco_captions(annotations: str | Path, root: str | Path) -> list[MultimodalSample]:
    """Every caption gives a captioning sample and a text-to-image sample."""
    path = require(annotations, "COCO captions JSON")
    data = read_json(path)
    images = _images(path, data, root)
    out = []
    for a in data["annotations"]:
        im = images.get(a["image_id"])
        if im is None:
            raise DataError(f"{path}: caption {a.get('id')} refers to unknown image_id {a['image_id']}")
        ref, caption = ImageRef(im["path"]), a["caption"].strip()
        out.append(MultimodalSample(f"cap{a['id']}", "caption", (Turn("user", (ref,)), Turn("assistant", (caption,)))))
        out.append(MultimodalSample(f"gen{a['id']}", "generation",
                                    (Turn("user", (caption,)), Turn("assistant", (ref,)))))
    check_images([im["path"] for im in images.values()], path)
    return out


def read_coco_instances(annotations: str | Path, root: str | Path) -> list[MultimodalSample]:
    """One segmentation sample per non-crowd object, its category name as the expression."""
    path = require(annotations, "COCO instances JSON")
    data = read_json(path)
    images = _images(path, data, root)
    names = {c["id"]: c["name"] for c in data.get("categories", [])}
    out = []
    for a in data["annotations"]:
        if a.get("iscrowd", 0):
            continue
        im = images[a["image_id"]]
        region = RegionMask(a["segmentation"], int(im["height"]), int(im["width"]))
        out.append(segment_sample(f"obj{a['id']}", im["path"], names[a["category_id"]], region))
    check_images([im["path"] for im in images.values()], path)
    return out
