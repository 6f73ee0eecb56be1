"""Captioning inputs (Flickr30K): one caption query per scored image of the reference file.

Either reference layout the ``cider`` scorer reads: a Karpathy split file (``dataset_flickr30k.json``:
``{"images": [{"filename", ["filepath"], "split", "sentences", ["cocoid"]}]}``, the images of ``split``) with the
image folder (``flickr30k-images/<filename>``, or ``<filepath>/<filename>`` when given), or COCO captions
(``{"images": [{"id", "file_name"}], "annotations": [...]}``). Image ids are those of
:func:`evaluation.readers.caption.read_caption_references`, the keys ``write_captions`` takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.readers.caption import read_caption_references
from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.writers import write_captions
from setok.io import DataError, read_json, write_json

# lmms-eval's flickr30k task prompt (lmms_eval/tasks/flickr30k/flickr30k_test.yaml, also its coco_cap prompt),
# LLaVA-1.5's short-caption instruction.
CAPTION_PROMPT = "Provide a one-sentence caption for the provided image."
CAPTION_MAX_NEW_TOKENS = 64  # ours: one sentence


class CaptionTask(BenchmarkTask):
    """Flickr30K (or any Karpathy / COCO caption reference): one ``caption`` query per scored image."""

    def __init__(self, name: str, *, annotations: Path, images: Path, split: str = "test",
                 limit: int | None = None) -> None:
        """Args: name: ``flickr30k``. annotations: Reference JSON. images: Image folder. split: Karpathy split.
        limit: First N images."""
        super().__init__(name, limit=limit)
        self.annotations, self.images, self.split = Path(annotations), Path(images), split
        self._data: dict[str, Any] = {}
        self._coco = False

    def _files(self, data: dict[str, Any]) -> list[str]:
        """Relative image paths of the scored images, in reference order."""
        images = data.get("images")
        if self._coco:
            files = [im.get("file_name") for im in images]
        else:
            files = []
            for im in images:
                if im.get("split") == self.split:
                    name = im.get("filename")
                    files.append(f"{im['filepath']}/{name}" if im.get("filepath") and isinstance(name, str)
                                 else name)
        bad = [i for i, f in enumerate(files) if not isinstance(f, str) or not f]
        if bad:
            field = "file_name" if self._coco else "filename"
            raise DataError(f"{self.annotations}: scored images {bad[:3]} lack a {field!r}")
        return files

    def load(self) -> list[Query]:
        ids = list(read_caption_references(self.annotations, self.split))  # validates the file
        self._data = read_json(self.annotations)
        self._coco = "annotations" in self._data
        files = self._files(self._data)
        if len(files) != len(ids):
            raise DataError(f"{self.annotations}: {len(ids)} scored images but {len(files)} file names")
        return [Query(id=i, kind="caption", prompt=CAPTION_PROMPT, image=self.images / f,
                      max_new_tokens=CAPTION_MAX_NEW_TOKENS) for i, f in zip(ids, files)]

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        position = {i: k for k, i in enumerate(read_caption_references(self.annotations, self.split))}
        keep = {position[q.id] for q in kept}  # positions among the scored images
        if self._coco:
            images = [im for k, im in enumerate(self._data["images"]) if k in keep]
            chosen = {im["id"] for im in images}
            subset = {**self._data, "images": images,
                      "annotations": [a for a in self._data["annotations"] if a.get("image_id") in chosen]}
        else:
            scored = [im for im in self._data["images"] if im.get("split") == self.split]
            subset = {**self._data, "images": [im for k, im in enumerate(scored) if k in keep]}
        paths = self.subset_paths(folder)
        write_json(paths["annotations"], subset)
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_captions(outputs, references["annotations"], out, split=self.split)
