"""COCO text-to-image inputs (``coco_fid``): one caption per reference image, from the COCO captions JSON.

``inputs`` is a COCO captions file (``captions_val2014.json``: ``{"images": [{"id", "file_name"}], "annotations":
[{"image_id", "caption"}]}``). When the references (``annotations``) are an image folder (COCO-30K: the val2014
images of the sampled captions), the prompts are the captions of exactly those images, found by the trailing
number of each file name (``COCO_val2014_000000000042.jpg`` -> 42), in folder order; otherwise (``.npz``
statistics) every image of the captions file. Each image is prompted with its FIRST caption in file order.

Query id = the COCO image id; the generated image is written as ``<id>.png`` (FID ignores names).
``limit`` generates for the first N images only and scores them against the full reference set (FID compares
distributions, so no subset reference is written).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.features.images import list_images
from evaluation.readers import preview
from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.writers import write_generated_images
from setok.io import DataError, read_json

# The prompt of a text-to-image query is the caption itself (SeTok Sec. 3: COCO captions as generation prompts).
TRAILING_ID = re.compile(r"(\d+)$")


def first_captions(path: Path) -> tuple[list[int], dict[int, str]]:
    """``(image ids in "images" order, image id -> its first caption in file order)`` of a COCO captions JSON.

    Raises:
        DataError: Not a COCO captions file (one line naming it).
    """
    data = read_json(path)
    images = data.get("images") if isinstance(data, dict) else None
    anns = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(images, list) or not isinstance(anns, list):
        raise DataError(f"{path}: expected COCO captions with 'images' and 'annotations' lists")
    captions: dict[int, str] = {}
    for i, a in enumerate(anns):
        if not isinstance(a, dict) or not isinstance(a.get("caption"), str) or "image_id" not in a:
            raise DataError(f"{path}: annotations[{i}] lacks an 'image_id' or a string 'caption'")
        captions.setdefault(a["image_id"], a["caption"].strip())
    ids = [im.get("id") for im in images if isinstance(im, dict)]
    return ids, captions


class CocoGenerationTask(BenchmarkTask):
    """COCO-30K FID: one ``generate`` query per reference image, prompted by its first caption."""

    def __init__(self, name: str, *, captions: Path, references: Path, limit: int | None = None) -> None:
        """Args: name: ``coco_fid``. captions: COCO captions JSON (``inputs``). references: The reference image
        folder or ``.npz`` (``annotations``). limit: Generate for the first N images."""
        super().__init__(name, limit=limit)
        self.captions, self.reference = Path(captions), Path(references)

    def _reference_ids(self) -> list[int] | None:
        """Image ids of the reference folder's files (``None`` for statistics files)."""
        if not self.reference.is_dir():
            return None
        ids = []
        for f in list_images(self.reference):
            m = TRAILING_ID.search(f.stem)
            if m is None:
                raise DataError(f"{f}: reference file name holds no COCO image id")
            ids.append(int(m.group(1)))
        return ids

    def load(self) -> list[Query]:
        all_ids, captions = first_captions(self.captions)
        ids = self._reference_ids() or all_ids
        missing = [i for i in ids if i not in captions]
        if missing:
            raise DataError(f"{self.captions}: no caption for {len(missing)} reference images: {preview(missing)}")
        return [Query(id=i, kind="generate", prompt=captions[i], image=None) for i in ids]

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.reference}

    def references(self, out: Path) -> dict[str, Path]:
        return self.configured_references()  # FID of the generated subset against the full reference set

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        return self.configured_references()

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        ids = [str(q.id) for q in self.select(self.all_queries())]
        named = {str(k): v for k, v in outputs.items()}
        if len(named) != len(outputs):
            raise DataError(f"{out}: the model output gives an image id twice (as integer and as string)")
        return write_generated_images(named, out, ids=ids, overwrite=True)
