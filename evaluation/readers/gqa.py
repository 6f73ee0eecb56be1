"""Reader of the official GQA questions (``*_balanced_questions.json``) and GQA-format predictions.

Questions (``--questions``, e.g. ``testdev_balanced_questions.json``), a JSON object keyed by question id::

    {"20968497": {"imageId": "n15740", "question": "...", "answer": "yes", "isBalanced": true,
                  "types": {"structural": "verify", "semantic": "attr", "detailed": "existAttrC"}, ...}, ...}

Predictions (what LLaVA's ``scripts/convert_gqa_for_eval.py`` writes and GQA ``eval.py`` reads), a JSON array::

    [{"questionId": "20968497", "prediction": "yes"}, ...]

Every balanced question needs exactly one prediction (GQA ``eval.py`` raises on a missing one). Predictions for
questions of the file that are not balanced are allowed and ignored, as in ``eval.py``; predictions for ids the file
does not have, duplicate ids and non-string predictions are errors.

Speed: each question of the official file carries its semantic program, annotations and entailed ids (about 1 KB);
:func:`read_gqa` first decodes both files into msgspec structs of the few fields it uses, skipping the rest unbuilt.
A file this typed pass does not accept, or data it would have to reject, sends the read through the generic path,
which returns the same data and words every error.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from evaluation.readers import preview
from setok.io import DataError, read_json, read_json_typed


@dataclass(frozen=True)
class GqaData:
    """Balanced questions in file order, with their predictions.

    Attributes:
        ids: Question ids (strings, as in the file).
        answers: Gold answers.
        predictions: Predictions as stored (before LLaVA's conversion).
        structural: ``types.structural`` of each question.
        semantic: ``types.semantic`` of each question.
    """

    ids: list[str]
    answers: list[str]
    predictions: list[str]
    structural: list[str]
    semantic: list[str]


def _balanced(path: Path) -> tuple[dict[str, Any], list[str]]:
    """All questions by id, and the ids of the balanced ones in file order (validated)."""
    questions = read_json(path)
    if not isinstance(questions, dict) or not questions:
        raise DataError(f"{path}: expected a non-empty JSON object {{questionId: question}} (official GQA questions)")
    balanced = []
    for qid, q in questions.items():
        if not isinstance(q, dict) or "isBalanced" not in q:
            raise DataError(f"{path}: question {qid} is not an object with 'isBalanced'")
        if not q["isBalanced"]:
            continue
        if not isinstance(q.get("answer"), str):
            raise DataError(f"{path}: balanced question {qid} has no string 'answer'")
        types = q.get("types")
        if not (isinstance(types, dict) and isinstance(types.get("structural"), str)
                and isinstance(types.get("semantic"), str)):
            raise DataError(f"{path}: balanced question {qid} lacks 'types' with string 'structural' and 'semantic'")
        balanced.append(qid)
    if not balanced:
        raise DataError(f"{path}: no question has isBalanced true")
    return questions, balanced


class _Types(msgspec.Struct, gc=False):
    structural: str
    semantic: str


class _Question(msgspec.Struct, gc=False):
    isBalanced: bool  # noqa: N815  (the official field name)
    answer: str | None = None
    types: _Types | None = None


class _Prediction(msgspec.Struct, gc=False):
    questionId: int | str  # noqa: N815
    prediction: str


def _read_gqa_typed(predictions: Path, questions: Path) -> GqaData | None:
    """The fast path of :func:`read_gqa` (module docstring): its result, or ``None`` to take the generic path."""
    by_qid = read_json_typed(questions, dict[str, _Question])
    if not by_qid:
        return None
    balanced = [qid for qid, q in by_qid.items() if q.isBalanced]
    chosen = [by_qid[q] for q in balanced]
    if not balanced or any(q.answer is None or q.types is None for q in chosen):
        return None
    records = read_json_typed(predictions, list[_Prediction])
    if not records:
        return None
    preds = {str(r.questionId): r.prediction for r in records}
    if len(preds) != len(records) or not all(map(by_qid.__contains__, preds)) or not all(map(preds.__contains__,
                                                                                              balanced)):
        return None
    return GqaData(
        ids=balanced,
        answers=[q.answer for q in chosen],
        predictions=[preds[q] for q in balanced],
        structural=[q.types.structural for q in chosen],
        semantic=[q.types.semantic for q in chosen],
    )


def read_gqa(predictions: str | os.PathLike[str], questions: str | os.PathLike[str]) -> GqaData:
    """Read official GQA questions and ``[{"questionId", "prediction"}]`` predictions, aligned.

    Raises:
        DataError: A malformed file, a balanced question without prediction, an unknown or duplicate id.
    """
    predictions, questions = Path(predictions), Path(questions)
    fast = _read_gqa_typed(predictions, questions)
    if fast is not None:
        return fast
    by_qid, balanced = _balanced(questions)
    records = read_json(predictions)
    if not isinstance(records, list) or not records:
        raise DataError(f'{predictions}: expected a non-empty JSON array [{{"questionId", "prediction"}}, ...]')
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "questionId" not in rec or "prediction" not in rec:
            raise DataError(f"{predictions}: record {i} is not an object with 'questionId' and 'prediction'")
    ids = [str(rec["questionId"]) for rec in records]  # ids are strings in the questions file; eval.py keys by them
    dups = [i for i, c in Counter(ids).items() if c > 1]
    if dups:
        raise DataError(f"{predictions}: {len(dups)} duplicate questionId values: {preview(dups)}")
    unknown = [i for i in ids if i not in by_qid]
    if unknown:
        raise DataError(f"{predictions}: {len(unknown)} questionId values are not in {questions}: {preview(unknown)}")
    preds = {i: rec["prediction"] for i, rec in zip(ids, records)}
    bad = [i for i, p in preds.items() if not isinstance(p, str)]
    if bad:
        raise DataError(f"{predictions}: 'prediction' is not a string for questionId {preview(bad)}")
    missing = [q for q in balanced if q not in preds]
    if missing:
        raise DataError(
            f"{predictions}: predictions cover {len(balanced) - len(missing)} of {len(balanced)} balanced questions "
            f"of {questions}; missing questionId {preview(missing)}"
        )
    return GqaData(
        ids=balanced,
        answers=[by_qid[q]["answer"] for q in balanced],
        predictions=[preds[q] for q in balanced],
        structural=[by_qid[q]["types"]["structural"] for q in balanced],
        semantic=[by_qid[q]["types"]["semantic"] for q in balanced],
    )
