"""POPE inputs: the official split files (``coco_pope_<split>.json``, JSON lines
``{"question_id", "image", "text", "label"}``) and the COCO val2014 folder their ``image`` names point into.

Question ids restart at 1 in every split, so a query id is ``(split, question_id)``, the key ``write_pope`` takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.readers.pope import QUESTION_FIELDS, resolve_annotations
from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.tasks.vqa import SHORT_ANSWER
from evaluation.writers import write_pope
from evaluation.writers._common import atomic_dir
from setok.io import DataError, read_jsonl, write_jsonl


class PopeTask(BenchmarkTask):
    """POPE: one ``answer`` query per question of every split (splits in name order, rows in file order)."""

    def __init__(self, name: str, *, annotations: Path, images: Path, limit: int | None = None) -> None:
        """Args: name: ``pope``. annotations: Folder (or one file) of official split files. images: COCO val2014.
        limit: First N questions over the splits in name order."""
        super().__init__(name, limit=limit)
        self.annotations, self.images = Path(annotations), Path(images)
        self._files: dict[str, Path] = {}
        self._rows: dict[tuple[str, Any], dict[str, Any]] = {}

    def load(self) -> list[Query]:
        self._files = dict(sorted(resolve_annotations(self.annotations).items()))
        queries = []
        for split, path in self._files.items():
            for i, row in enumerate(read_jsonl(path), 1):
                if not isinstance(row, dict) or any(k not in row for k in QUESTION_FIELDS):
                    raise DataError(f"{path}: row {i} lacks 'question_id', 'image' or 'text'")
                key = (split, row["question_id"])
                self._rows[key] = row
                queries.append(Query(id=key, kind="answer", prompt=row["text"] + SHORT_ANSWER,
                                     image=self.images / row["image"]))
        return queries

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def subset_paths(self, folder: Path) -> dict[str, Path]:
        return {"annotations": folder / "pope"}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        target = self.subset_paths(folder)["annotations"]
        with atomic_dir(target, overwrite=True) as tmp:
            for split, path in self._files.items():
                rows = [self._rows[q.id] for q in kept if q.id[0] == split]
                if rows:
                    write_jsonl(tmp / path.name, rows)
        return {"annotations": target}

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_pope(outputs, references["annotations"], out, overwrite=True)
