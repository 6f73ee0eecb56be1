"""Short-answer VQA inputs: VQAv2 and OK-VQA (official questions + COCO images), VizWiz-VQA, GQA.

Layouts read:

* VQAv2 / OK-VQA: questions ``{"data_subtype": "val2014", "questions": [{"question_id", "image_id", "question"}]}``
  (``v2_OpenEnded_mscoco_val2014_questions.json`` / ``OpenEnded_mscoco_val2014_questions.json``), annotations
  ``{"annotations": [{"question_id", ...}]}`` and the COCO folder of ``COCO_<data_subtype>_<12-digit image_id>.jpg``.
* VizWiz: ``val.json``, ``[{"image": "VizWiz_val_00000000.jpg", "question", "answers", ...}]`` + the ``val/`` folder.
* GQA: ``testdev_balanced_questions.json``, ``{questionId: {"imageId", "question", "isBalanced", ...}}`` +
  ``images/<imageId>.jpg``; only balanced questions are asked (the only ones GQA ``eval.py`` scores).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.tasks.base import BenchmarkTask, Query
from evaluation.writers import write_gqa, write_vizwiz, write_vqa
from setok.io import DataError, read_json, write_json

# LLaVA-1.5 short-answer prompt (haotian-liu/LLaVA, playground/data/eval/*/llava_*.jsonl question files, used by
# scripts/v1_5/eval/{vqav2,gqa,pope}.sh; lmms-eval keeps it as the post_prompt of vqav2/gqa/pope). OK-VQA gets it
# too, as LLaVA-665K trains OK-VQA (lmms-eval's ok_vqa post_prompt is the VizWiz one, 'Unanswerable' line first).
SHORT_ANSWER = "\nAnswer the question using a single word or phrase."
# LLaVA-1.5 VizWiz prompt (playground/data/eval/vizwiz/llava_test.jsonl; lmms-eval vizwiz_vqa post_prompt).
VIZWIZ_SUFFIX = (
    "\nWhen the provided information is insufficient, respond with 'Unanswerable'."
    "\nAnswer the question using a single word or phrase."
)


def _records(path: Path, data: Any, key: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """``data[key]`` (or ``data`` itself when ``key`` is empty), each record an object holding ``fields``."""
    records = data.get(key) if key and isinstance(data, dict) else data
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty list of records{f' under {key!r}' if key else ''}")
    for i, r in enumerate(records):
        if not isinstance(r, dict) or any(f not in r for f in fields):
            raise DataError(f"{path}: record {i} is not an object with {', '.join(map(repr, fields))}")
    return records


class VqaTask(BenchmarkTask):
    """VQAv2 / OK-VQA: one ``answer`` query per official question, id ``question_id``."""

    def __init__(self, name: str, *, questions: Path, annotations: Path | None, images: Path,
                 limit: int | None = None) -> None:
        """Args: name: ``vqav2`` or ``okvqa``. questions / annotations: the official JSONs (annotations may be
        ``None`` for the unannotated test-dev split). images: The COCO image folder. limit: First N questions."""
        super().__init__(name, limit=limit)
        self.questions, self.annotations, self.images = Path(questions), annotations, Path(images)
        self._data: dict[str, Any] = {}

    def load(self) -> list[Query]:
        data = read_json(self.questions)
        records = _records(self.questions, data, "questions", ("question_id", "image_id", "question"))
        self._data["questions"] = data
        subtype = data.get("data_subtype", "val2014") if isinstance(data, dict) else "val2014"
        if self.annotations is not None:
            ann = read_json(self.annotations)
            ann_ids = {r["question_id"] for r in _records(Path(self.annotations), ann, "annotations",
                                                          ("question_id",))}
            unannotated = [r["question_id"] for r in records if r["question_id"] not in ann_ids]
            if unannotated or len(ann_ids) != len(records):
                raise DataError(f"{self.questions}: question ids differ from {self.annotations} "
                                f"({len(unannotated)} asked but not annotated, e.g. {unannotated[:3]})")
            self._data["annotations"] = ann
        return [
            Query(id=r["question_id"], kind="answer", prompt=r["question"] + SHORT_ANSWER,
                  image=self.images / f"COCO_{subtype}_{int(r['image_id']):012d}.jpg")
            for r in records
        ]

    def configured_references(self) -> dict[str, Path]:
        refs = {"questions": self.questions}
        if self.annotations is not None:
            refs["annotations"] = Path(self.annotations)
        return refs

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        ids = {q.id for q in kept}
        paths = self.subset_paths(folder)
        for key, path in paths.items():  # "questions" and "annotations": the file's list under the same key
            data = self._data[key]
            write_json(path, {**data, key: [r for r in data[key] if r["question_id"] in ids]})
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_vqa(outputs, references.get("annotations", references["questions"]), out)


class VizWizTask(BenchmarkTask):
    """VizWiz-VQA: one ``answer`` query per image of ``val.json``, id = the image file name."""

    def __init__(self, name: str, *, annotations: Path, images: Path, limit: int | None = None) -> None:
        """Args: name: ``vizwiz``. annotations: Official ``val.json``. images: Its image folder. limit: First N."""
        super().__init__(name, limit=limit)
        self.annotations, self.images = Path(annotations), Path(images)
        self._records: list[dict[str, Any]] = []

    def load(self) -> list[Query]:
        self._records = _records(self.annotations, read_json(self.annotations), "", ("image", "question"))
        return [Query(id=r["image"], kind="answer", prompt=r["question"] + VIZWIZ_SUFFIX,
                      image=self.images / r["image"]) for r in self._records]

    def configured_references(self) -> dict[str, Path]:
        return {"annotations": self.annotations}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        ids = {q.id for q in kept}
        paths = self.subset_paths(folder)
        write_json(paths["annotations"], [r for r in self._records if r["image"] in ids])
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_vizwiz(outputs, references["annotations"], out)


class GqaTask(BenchmarkTask):
    """GQA: one ``answer`` query per balanced question, id = the ``questionId`` string."""

    def __init__(self, name: str, *, questions: Path, images: Path, limit: int | None = None) -> None:
        """Args: name: ``gqa``. questions: Official ``*_balanced_questions.json``. images: ``images/``. limit."""
        super().__init__(name, limit=limit)
        self.questions, self.images = Path(questions), Path(images)
        self._data: dict[str, Any] = {}

    def load(self) -> list[Query]:
        data = read_json(self.questions)
        if not isinstance(data, dict) or not data:
            raise DataError(f"{self.questions}: expected the official GQA questions object {{questionId: question}}")
        bad = [k for k, v in data.items() if not (isinstance(v, dict) and "imageId" in v and "question" in v)]
        if bad:
            raise DataError(f"{self.questions}: questions {bad[:3]} lack 'imageId' or 'question'")
        self._data = data
        return [Query(id=k, kind="answer", prompt=v["question"] + SHORT_ANSWER,
                      image=self.images / f"{v['imageId']}.jpg")
                for k, v in data.items() if v.get("isBalanced")]

    def configured_references(self) -> dict[str, Path]:
        return {"questions": self.questions}

    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        paths = self.subset_paths(folder)
        write_json(paths["questions"], {q.id: self._data[q.id] for q in kept})
        return paths

    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        return write_gqa(outputs, references["questions"], out)
