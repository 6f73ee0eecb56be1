"""MM-Vet inputs: the official ``mm-vet.json`` (``{"v1_0": {"imagename", "question", "answer", "capability"}}``)
and its ``images/`` folder; query id = the ``v1_<n>`` key, answered in free form."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.writers import write_mmvet
from setok.io import DataError, read_json, write_json

# LLaVA-1.5 asks MM-Vet's questions as given (playground/data/eval/mm-vet/llava-mm-vet.jsonl) and lets the model
# answer at length: 1024 new tokens, as LLaVA's model_vqa.py and lmms-eval's mmvet task allow.
MMVET_MAX_NEW_TOKENS = 1024


class MmvetTask(BenchmarkTask):
    """MM-Vet: one free-form ``answer`` query per entry of ``mm-vet.json``."""

    def __init__(self, name: str, *, annotations: Path, images: Path, limit: int | None = None) -> None:
        """Args: name: ``mmvet``. annotations: ``mm-vet.json``. images: Its image folder. limit: First N entries."""
        super().__init__(name, limit=limit)
        self.annotations, self.images = Path(annotations), Path(images)
        self._data: dict[str, Any] = {}

    def load(self) -> list[Query]:
        data = read_json(self.annotations)
        if not isinstance(data, dict) or not data:
            raise DataError(f"{self.annotations}: expected mm-vet.json, a non-empty object of id -> question entry")
        bad = [k for k, v in data.items() if not (isinstance(v, dict) and isinstance(v.get("question"), str)
                                                  and isinstance(v.get("imagename"), str))]
        if bad:
            raise DataError(f"{self.annotations}: entries {bad[:3]} lack 'question' or 'imagename' strings")
        self._data = data
        return [Query(id=k, kind="answer", prompt=v["question"], image=self.images / v["imagename"],
                      max_new_tokens=MMVET_MAX_NEW_TOKENS) for k, v in data.items()]

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        paths = self.subset_paths(folder)
        write_json(paths["annotations"], {q.id: self._data[q.id] for q in kept})
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_mmvet(outputs, references["annotations"], out)
