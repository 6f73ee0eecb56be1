"""Readers of the official POPE files and of per-split answer files.

References: the official POPE question files
(AoiDragon/POPE ``output/coco/coco_pope_{adversarial,popular,random}.json``), JSON lines
``{"question_id", "image", "text", "label"}`` with ``label`` ``"yes"`` or ``"no"``. Question ids restart at 1 in every
split file, so predictions are kept apart per split (see :func:`read_pope`).

Predictions: JSON lines ``{"question_id", "text"}`` (LLaVA's answer-file fields), optionally with ``"category"`` naming
the split (LLaVA's ``llava_pope_test.jsonl`` field).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.readers import preview
from setok.io import DataError, read_jsonl

PathLike = str | os.PathLike[str]
QuestionId = str | int
OFFICIAL_SPLITS = ("adversarial", "popular", "random")
QUESTION_FIELDS = ("question_id", "image", "text")  # what the model is asked; the references add "label"


@dataclass(frozen=True)
class PopeSplit:
    """One POPE split with its predictions aligned to the reference order.

    Attributes:
        name: Split name (``"adversarial"``, ``"popular"``, ``"random"``, ...).
        ids: Question ids in reference-file order.
        labels: Reference labels, ``"yes"`` or ``"no"``.
        answers: The model's raw answers, same order.
    """

    name: str
    ids: list[QuestionId]
    labels: list[str]
    answers: list[str]


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _checked_rows(path: Path, rows: list[Any], fields: Sequence[str]) -> list[dict[str, Any]]:
    """Reject non-objects, missing fields, bad ids and duplicate ids (one line naming ``path``)."""
    if not rows:
        raise DataError(f"{path}: no rows")
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {i} is not a JSON object")
        missing = [k for k in fields if k not in row]
        if missing:
            raise DataError(f"{path}: row {i} lacks {' and '.join(repr(k) for k in missing)}")
        if not _is_id(row["question_id"]):
            raise DataError(f"{path}: row {i} has a question_id that is not a string or integer")
    return rows


def _no_duplicates(where: str | Path, ids: list[QuestionId]) -> None:
    dups = [i for i, c in Counter(ids).items() if c > 1]
    if dups:
        raise DataError(f"{where}: {len(dups)} duplicate question_ids: {preview(dups)}")


def split_name(path: Path) -> str:
    """``coco_pope_adversarial.json`` -> ``"adversarial"``: the file stem after its last underscore."""
    return path.stem.rsplit("_", 1)[-1]


def is_split_file(path: Path) -> bool:
    """Whether ``path`` is named as an official split file: ``*_pope_<split>.json`` (or ``.jsonl``)."""
    return "_pope_" in path.name and path.suffix in (".json", ".jsonl")


def resolve_annotations(annotations: PathLike | Sequence[PathLike]) -> dict[str, Path]:
    """Split name to reference file, from one file, several files, or a folder of ``*_pope_<split>.json`` files.

    Raises:
        DataError: A path does not exist, a folder holds no POPE file, or two files give the same split name.
    """
    given = [annotations] if isinstance(annotations, (str, os.PathLike)) else list(annotations)
    files: list[Path] = []
    for entry in map(Path, given):
        if entry.is_dir():
            found = sorted(p for p in entry.iterdir() if p.is_file() and is_split_file(p))
            if not found:
                raise DataError(f"{entry}: folder holds no POPE file named *_pope_<split>.json")
            files.extend(found)
        elif entry.is_file():
            files.append(entry)
        else:
            raise DataError(f"{entry}: file not found")
    names = [split_name(p) for p in files]
    clash = sorted(n for n, c in Counter(names).items() if c > 1)
    if clash:
        raise DataError(f"{files[names.index(clash[0])]}: several reference files give split {clash[0]!r}")
    return dict(zip(names, files))


def read_pope_references(path: Path) -> tuple[list[QuestionId], list[str]]:
    """Question ids and labels of one official POPE file, in file order.

    Raises:
        DataError: Missing file, malformed row, duplicate id, or a label other than ``"yes"``/``"no"``.
    """
    rows = _checked_rows(path, read_jsonl(path), ("question_id", "label"))
    ids = [r["question_id"] for r in rows]
    _no_duplicates(path, ids)
    bad = [r["question_id"] for r in rows if r["label"] not in ("yes", "no")]
    if bad:
        raise DataError(f"{path}: label must be 'yes' or 'no' for question_ids {preview(bad)}")
    return ids, [r["label"] for r in rows]


def _prediction_groups(predictions: Path, splits: Sequence[str]) -> dict[str, tuple[Path, list[dict[str, Any]]]]:
    """Split name to (file, rows) of the predictions: a folder of ``<split>.jsonl`` or one file."""
    if predictions.is_dir():
        missing = [s for s in splits if not (predictions / f"{s}.jsonl").is_file()]
        if missing:
            raise DataError(f"{predictions}: no prediction file for splits {preview(missing)} (expected <split>.jsonl)")
        out = {}
        for s in splits:
            path = predictions / f"{s}.jsonl"
            out[s] = (path, _checked_rows(path, read_jsonl(path), ("question_id", "text")))
        return out
    rows = _checked_rows(predictions, read_jsonl(predictions), ("question_id", "text"))
    if not any("category" in r for r in rows):
        if len(splits) != 1:
            raise DataError(
                f"{predictions}: {len(splits)} splits are scored but rows have no 'category'; give a folder of "
                f"<split>.jsonl files or a 'category' per row"
            )
        return {splits[0]: (predictions, rows)}
    no_cat = [i for i, r in enumerate(rows, 1) if "category" not in r]
    if no_cat:
        raise DataError(f"{predictions}: rows {preview(no_cat)} lack 'category' while other rows have one")
    unknown = sorted({str(r["category"]) for r in rows} - set(splits))
    if unknown:
        raise DataError(f"{predictions}: categories {preview(unknown)} are not among the scored splits {list(splits)}")
    return {s: (predictions, [r for r in rows if r["category"] == s]) for s in splits}


def read_pope(predictions: PathLike, annotations: PathLike | Sequence[PathLike]) -> list[PopeSplit]:
    """Read references and predictions and align them per split (sorted by split name).

    Args:
        predictions: A JSONL file (one split, or rows with ``"category"``) or a folder of ``<split>.jsonl``.
        annotations: A reference file, several, or a folder of ``*_pope_<split>.json`` files.

    Returns:
        One :class:`PopeSplit` per reference file.

    Raises:
        DataError: Any malformed file, duplicate ids, or predictions missing or extra for a split.
    """
    predictions = Path(predictions)
    refs = resolve_annotations(annotations)
    groups = _prediction_groups(predictions, sorted(refs))
    out = []
    for name in sorted(refs):
        ids, labels = read_pope_references(refs[name])
        path, rows = groups[name]
        where = f"{path} (split {name})" if path == predictions and len(refs) > 1 else str(path)
        _no_duplicates(where, [r["question_id"] for r in rows])
        answers = {r["question_id"]: r["text"] for r in rows}
        not_text = [i for i, t in answers.items() if not isinstance(t, str)]
        if not_text:
            raise DataError(f"{where}: 'text' is not a string for question_ids {preview(not_text)}")
        missing = [i for i in ids if i not in answers]
        if missing:
            raise DataError(
                f"{where}: missing predictions for {len(missing)} of {len(ids)} question_ids of {refs[name]}: "
                f"{preview(missing)}"
            )
        known = set(ids)
        extra = [i for i in answers if i not in known]
        if extra:
            raise DataError(f"{where}: {len(extra)} question_ids are not in {refs[name]}: {preview(extra)}")
        out.append(PopeSplit(name=name, ids=ids, labels=labels, answers=[answers[i] for i in ids]))
    return out
