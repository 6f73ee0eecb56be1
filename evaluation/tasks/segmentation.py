"""Referring-segmentation inputs: RefCOCO+/RefCOCOg release folders and ReasonSeg split folders.

The samples are the scorer's own reference rows (``reference_rows`` of the registered benchmark), so the ids match
by construction:

* RefCOCO+/RefCOCOg (``lichengunc/refer`` layout: ``refs(unc|umd).p`` + ``instances.json``): one query per sentence
  of every ref in ``split`` (id ``sent_id``), on ``COCO_train2014_<12-digit image_id>.jpg`` of the COCO train2014
  folder (``images``), as LISA's ``ValDataset`` reads them.
* ReasonSeg (``ReasonSeg/val``: ``<name>.jpg`` + labelme ``<name>.json``): one query per image (id ``<name>``), on
  the first of its ``text`` queries, as LISA's ``ValDataset``; images come from the same folder unless ``images``
  names another.
The predicted mask is a bool ``(H, W)`` array at the input image's size (the reference mask's size).
``limit`` writes the kept reference masks as a mask list ``<name>_masks.json`` (the format the scorer also reads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation import registry
from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.writers import write_masks
from setok.io import DataError, write_json

# Referring expressions are asked with the instruction wording of the brief's convention (ours; LISA asks
# "Can you segment the {sent} in this image?"): "Please segment the {expression}."
REFER_PROMPT = "Please segment the {expression}."


class ReferTask(BenchmarkTask):
    """RefCOCO+/RefCOCOg: one ``segment`` query per sentence of the split."""

    def __init__(self, name: str, *, annotations: Path, images: Path | None, split: str | None = None,
                 split_by: str | None = None, limit: int | None = None) -> None:
        """Args: name: ``refcoco+``, ``refcocog`` (or ``refcoco``, ``reasonseg``). annotations: Release / split folder.
        images: Image folder. split / split_by: Release split and refs file (default: the scorer's). limit: First N.
        """
        super().__init__(name, limit=limit)
        bench = registry.get(name)
        if not hasattr(bench, "reference_rows"):
            raise DataError(f"{annotations}: {name} is not a segmentation benchmark")
        self.bench = bench
        self.annotations = Path(annotations)
        self.images = None if images is None else Path(images)
        self.split = split or bench.default_split
        self.split_by = split_by or bench.default_split_by
        self._rows: dict[Any, dict[str, Any]] = {}

    def image_path(self, row: dict[str, Any]) -> Path:
        """The input image of a reference row."""
        if self.images is None:
            raise DataError(f"benchmarks.{self.name}.images: not set (the COCO train2014 folder)")
        return self.images / f"COCO_train2014_{int(row['image_id']):012d}.jpg"

    def prompt(self, row: dict[str, Any]) -> str:
        """The user text of a reference row."""
        return REFER_PROMPT.format(expression=str(row["sentence"]).strip())

    def load(self) -> list[Query]:
        if not self.annotations.is_dir():
            raise DataError(f"{self.annotations}: {self.name} inputs need the release folder, not a mask list")
        rows = self.bench.reference_rows(self.annotations, self.split, self.split_by)
        self._rows = {r["id"]: r for r in rows}
        return [Query(id=r["id"], kind="segment", prompt=self.prompt(r), image=self.image_path(r)) for r in rows]

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def subset_paths(self, folder: Path) -> dict[str, Path]:
        return {"annotations": folder / f"{self.name}_masks.json"}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        paths = self.subset_paths(folder)
        rows = []
        for q in kept:
            r = self._rows[q.id]
            rows.append({"id": q.id, "segmentation": r["segmentation"],
                         **({"ignore": r["ignore"]} if r.get("ignore") is not None else {})})
        write_json(paths["annotations"], rows)
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_masks(outputs, references["annotations"], out, benchmark=self.name, split=self.split,
                           split_by=self.split_by)


def _labelme(path: Path) -> dict[str, Any]:
    """A ReasonSeg labelme JSON (UTF-8, else cp1252 as LISA retries)."""
    raw = path.read_bytes() if path.is_file() else None
    if raw is None:
        raise DataError(f"{path}: file not found")
    for encoding in ("utf-8", "cp1252"):
        try:
            data = json.loads(raw.decode(encoding))
            return data if isinstance(data, dict) else {}
        except UnicodeDecodeError:
            continue
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    raise DataError(f"{path}: neither UTF-8 nor cp1252 text")


# LISA's ReasonSeg validation prompt for a sentence query (model/llava ValDataset: "{sentence} Please output
# segmentation mask."); a phrase is asked as a referring expression.
REASON_PROMPT = "{sentence} Please output segmentation mask."


class ReasonSegTask(ReferTask):
    """ReasonSeg: one ``segment`` query per image; a sentence query with :data:`REASON_PROMPT` as LISA asks it, a
    phrase (``is_sentence`` false) with :data:`REFER_PROMPT` (LISA: "What is {phrase} in this image? Please output
    segmentation mask."; ours is the wording the model trains on for referring expressions)."""

    def image_path(self, row: dict[str, Any]) -> Path:
        return (self.images or self.annotations) / f"{row['id']}.jpg"

    def prompt(self, row: dict[str, Any]) -> str:
        text = str(row["sentence"]).strip()
        if not text:
            raise DataError(f"{self.annotations / (str(row['id']) + '.json')}: no query text")
        if _labelme(self.annotations / f"{row['id']}.json").get("is_sentence", True):
            return REASON_PROMPT.format(sentence=text)
        return REFER_PROMPT.format(expression=text)
