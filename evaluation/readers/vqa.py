"""Readers of the official VQAv2 / OK-VQA and VizWiz-VQA release formats, and of their prediction files.

VQAv2 and OK-VQA (``--annotations``, e.g. ``v2_mscoco_val2014_annotations.json``, OK-VQA's
``mscoco_val2014_annotations.json``)::

    {"annotations": [{"question_id": 1, "image_id": 9, "question_type": "what", "answer_type": "other",
                      "multiple_choice_answer": "dog",
                      "answers": [{"answer": "dog", "answer_confidence": "yes", "answer_id": 1}, ...]}, ...]}

optional ``--questions`` (``v2_OpenEnded_mscoco_val2014_questions.json``): ``{"questions": [{"question_id", "image_id",
"question"}, ...]}``; predictions (the EvalAI upload format): ``[{"question_id": 1, "answer": "dog"}, ...]``.

VizWiz (``--annotations``, ``val.json``)::

    [{"image": "VizWiz_val_00000000.jpg", "question": "...", "answer_type": "other", "answerable": 1,
      "answers": [{"answer": "basil leaves", "answer_confidence": "yes"}, ...]}, ...]

predictions: ``[{"image": "VizWiz_val_00000000.jpg", "answer": "basil"}, ...]``.

Every reference needs exactly one prediction (as ``vqa.py`` ``loadRes`` asserts for VQA): missing, extra and
duplicate ids are errors, each reported in one line naming the file.

Speed: the VQAv2 val annotations are 200 MB of JSON with 2.1M answer objects. :func:`read_vqa` first decodes the
three files straight into msgspec structs of the fields it uses (the other fields are skipped, not built), which
takes a fraction of a generic parse. The official layout (10 humans numbered ``answer_id`` 1..10) is checked during
that decoding; other ``answer_id`` numberings are decoded again with any number of humans and checked to be distinct
integers per question. Any file that these typed passes do not accept as well-formed, and any question whose
``answer_id`` values are not distinct integers, sends the whole read through the generic path below, which gives the
same data and words every error. The fast path only ever returns what the generic path would.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from itertools import chain, repeat
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

from evaluation.metrics.vqa import HumanAnswers
from evaluation.readers import preview
from setok.io import DataError, read_json, read_json_typed

SampleId = str | int


@dataclass(frozen=True)
class VqaData:
    """Predictions aligned to the annotations' order.

    Attributes:
        ids: Question ids (VQA) or image names (VizWiz), in annotation-file order.
        answer_types: The official ``answer_type`` of each question.
        predictions: The raw predicted answer of each question.
        answers: The human answers of each question, as stored (flat, with a count per question).
        identity: Per question, one string per human answer encoding its other fields (for vqaEval.py's
            whole-dict comparison), or ``None`` where the ``answer_id`` values are distinct (plain leave-one-out).
    """

    ids: list[SampleId]
    answer_types: list[str]
    predictions: list[str]
    answers: HumanAnswers
    identity: list[list[str] | None]


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _records(path: Path, data: Any, key: str | None, what: str) -> list[Any]:
    """The list of records: ``data[key]`` (VQA files) or ``data`` itself (``key=None``)."""
    if key is not None:
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DataError(f"{path}: expected a JSON object with a {key!r} list ({what})")
        data = data[key]
    elif not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array ({what})")
    if not data:
        raise DataError(f"{path}: no records")
    return data


def _first_bad_record(path: Path, records: list[Any], id_key: str, fields: tuple[str, ...]) -> DataError:
    """The error for the first record that is not an object with ``id_key`` (string or integer) and ``fields``."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            return DataError(f"{path}: record {i} is not a JSON object")
        missing = [k for k in (id_key, *fields) if k not in rec]
        if missing:
            return DataError(f"{path}: record {i} lacks {' and '.join(map(repr, missing))}")
        if not _is_id(rec[id_key]):
            return DataError(f"{path}: record {i} has a {id_key!r} that is not a string or integer: {rec[id_key]!r}")
    return DataError(f"{path}: malformed records")


def _check_ids(path: Path, records: list[Any], id_key: str, fields: tuple[str, ...]) -> list[SampleId]:
    """Ids of ``records`` in order, after checking each is an object with ``id_key`` and ``fields`` (no duplicates).

    The common, well-formed case runs at C speed (``map``/``set``); the slow scan only runs to name a bad record.
    """
    try:
        ids = [rec[id_key] for rec in records]  # a non-object record raises here
    except (TypeError, KeyError):
        raise _first_bad_record(path, records, id_key, fields) from None
    if not set(map(type, ids)) <= {int, str} or not all(key in rec for key in fields for rec in records):
        raise _first_bad_record(path, records, id_key, fields)
    if len(set(ids)) != len(ids):
        dups = [i for i, c in Counter(ids).items() if c > 1]
        raise DataError(f"{path}: {len(dups)} duplicate {id_key} values: {preview(dups)}")
    return ids


def _identity(answers: list[dict[str, Any]]) -> list[str]:
    """Each answer's fields other than ``answer``, as canonical JSON (what vqaEval.py's dict comparison sees)."""
    return [json.dumps({k: v for k, v in a.items() if k != "answer"}, sort_keys=True, default=str) for a in answers]


def _bad_answers(path: Path, id_key: str, ids: list[SampleId], records: list[Any]) -> DataError:
    """The error for the first record whose ``answers`` or ``answer_type`` is malformed."""
    for sid, rec in zip(ids, records):
        ans = rec["answers"]
        if not isinstance(ans, list) or not ans:
            return DataError(f"{path}: {id_key} {sid!r} has no human answers ('answers' must be a non-empty list)")
        if not all(isinstance(a, dict) and isinstance(a.get("answer"), str) for a in ans):
            return DataError(f"{path}: {id_key} {sid!r} has an answer that is not an object with a string 'answer'")
        if not isinstance(rec["answer_type"], str):
            return DataError(f"{path}: {id_key} {sid!r} has a non-string answer_type {rec['answer_type']!r}")
    return DataError(f"{path}: malformed answers")


def _references(path: Path, records: list[Any], id_key: str) -> tuple[list[SampleId], list[str], HumanAnswers,
                                                                        list[list[str] | None]]:
    """``(ids, answer_types, answers, identity)`` of annotation records, validated.

    ``identity[q]`` is ``None`` when question ``q``'s ``answer_id`` values are present and distinct (plain
    leave-one-out), else its answers' other fields (see :func:`_identity`).
    """
    ids = _check_ids(path, records, id_key, ("answers", "answer_type"))
    try:
        lists = [rec["answers"] for rec in records]
        answers = [[a["answer"] for a in ans] for ans in lists]
        types = [rec["answer_type"] for rec in records]
    except (TypeError, KeyError):
        raise _bad_answers(path, id_key, ids, records) from None
    flat_types = set(map(type, (s for a in answers for s in a)))
    if flat_types - {str} or not all(answers) or set(map(type, types)) - {str}:
        raise _bad_answers(path, id_key, ids, records)
    identity: list[list[str] | None] = []
    for ans in lists:
        try:
            aids = set(map(dict.get, ans, repeat("answer_id")))
            distinct = None not in aids and len(aids) == len(ans)
        except TypeError:  # an unhashable answer_id
            distinct = False
        identity.append(None if distinct else _identity(ans))
    return ids, types, HumanAnswers.from_lists(answers), identity


def _predictions(path: Path, id_key: str, references: Path, ref_ids: list[SampleId]) -> list[str]:
    """Predicted answers aligned to ``ref_ids``; missing, extra or duplicate ids and non-string answers are errors."""
    records = _records(path, read_json(path), None, f'[{{"{id_key}", "answer"}}, ...]')
    ids = _check_ids(path, records, id_key, ("answer",))
    by_id = {rec[id_key]: rec["answer"] for rec in records}
    if set(map(type, by_id.values())) - {str}:
        bad = [i for i, a in by_id.items() if not isinstance(a, str)]
        raise DataError(f"{path}: 'answer' is not a string for {id_key} {preview(bad)}")
    missing = [i for i in ref_ids if i not in by_id]
    if missing:
        raise DataError(
            f"{path}: predictions cover {len(ref_ids) - len(missing)} of {len(ref_ids)} questions of {references}; "
            f"missing {id_key} {preview(missing)}"
        )
    if len(ids) != len(ref_ids):
        known = set(ref_ids)
        extra = [i for i in ids if i not in known]
        raise DataError(f"{path}: {len(extra)} {id_key} values are not in {references}: {preview(extra)}")
    return [by_id[i] for i in ref_ids]


class _Answer(msgspec.Struct, gc=False):
    answer: str
    answer_id: int


class _Annotation(msgspec.Struct, gc=False):
    question_id: int | str
    answer_type: str
    answers: list[_Answer]


class _Annotations(msgspec.Struct, gc=False):
    annotations: list[_Annotation]


# The official layout, checked while decoding: exactly 10 humans per question numbered answer_id 1..10 in order
# (VQAv2, OK-VQA). Human k is a struct whose answer_id must be the literal k, so these ids need no check afterwards.
OFFICIAL_HUMANS = 10
_NumberedAnswers = tuple.__class_getitem__(tuple(
    msgspec.defstruct(f"_Answer{k}", [("answer", str), ("answer_id", Literal[k])], gc=False)  # type: ignore[valid-type]
    for k in range(1, OFFICIAL_HUMANS + 1)
))


class _NumberedAnnotation(msgspec.Struct, gc=False):
    question_id: int | str
    answer_type: str
    answers: _NumberedAnswers  # type: ignore[valid-type]


class _NumberedAnnotations(msgspec.Struct, gc=False):
    annotations: list[_NumberedAnnotation]


class _Question(msgspec.Struct, gc=False):
    question_id: int | str


class _Questions(msgspec.Struct, gc=False):
    questions: list[_Question]


class _Prediction(msgspec.Struct, gc=False):
    question_id: int | str
    answer: str


def _distinct_per_question(aids: np.ndarray, counts: np.ndarray) -> bool:
    """Whether the ``answer_id`` values (flat, ``counts`` per question) are distinct within every question."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    position = np.arange(aids.size) - starts
    if np.array_equal(aids, position + 1):  # the official files number the humans 1..10
        return True
    question = np.repeat(np.arange(counts.size), counts)
    order = np.lexsort((aids, question))
    a, q = aids[order], question[order]
    return not bool(np.any((a[1:] == a[:-1]) & (q[1:] == q[:-1])))


def _read_vqa_typed(predictions: Path, annotations: Path, questions: Path | None) -> VqaData | None:
    """The fast path of :func:`read_vqa` (module docstring): its result, or ``None`` to take the generic path."""
    ann = read_json_typed(annotations, _NumberedAnnotations)
    numbered = ann is not None
    if not numbered:
        ann = read_json_typed(annotations, _Annotations)
    if ann is None or not ann.annotations:
        return None
    records = ann.annotations
    ids = list(map(attrgetter("question_id"), records))
    known = set(ids)
    if len(known) != len(ids):
        return None
    answer_lists = list(map(attrgetter("answers"), records))
    if numbered:
        counts = np.full(len(records), OFFICIAL_HUMANS, dtype=np.int64)
    else:
        counts = np.fromiter(map(len, answer_lists), dtype=np.int64, count=len(records))
        if counts.min() < 1:
            return None
        try:
            aids = np.fromiter(map(attrgetter("answer_id"), chain.from_iterable(answer_lists)), dtype=np.int64,
                               count=int(counts.sum()))
        except OverflowError:
            return None
        if not _distinct_per_question(aids, counts):
            return None
    if questions is not None:
        qs = read_json_typed(questions, _Questions)
        if qs is None or len(qs.questions) != len(ids) or set(map(attrgetter("question_id"), qs.questions)) != known:
            return None
    preds = read_json_typed(predictions, list[_Prediction])
    if preds is None:
        return None
    if list(map(attrgetter("question_id"), preds)) == ids:  # in annotation order, as the prediction writers keep it
        answers = list(map(attrgetter("answer"), preds))
    else:
        by_id = dict(zip(map(attrgetter("question_id"), preds), map(attrgetter("answer"), preds)))
        if len(by_id) != len(preds) or len(by_id) != len(ids) or not known.issuperset(by_id):
            return None
        answers = list(map(by_id.__getitem__, ids))
    return VqaData(
        ids=ids,
        answer_types=list(map(attrgetter("answer_type"), records)),
        predictions=answers,
        answers=HumanAnswers.from_flat(map(attrgetter("answer"), chain.from_iterable(answer_lists)), counts),
        identity=[None] * len(ids),
    )


def read_vqa(
    predictions: str | os.PathLike[str],
    annotations: str | os.PathLike[str],
    questions: str | os.PathLike[str] | None = None,
) -> VqaData:
    """Read official VQAv2 / OK-VQA annotations (and questions) with EvalAI-format predictions.

    Args:
        predictions: ``[{"question_id", "answer"}]`` JSON.
        annotations: ``{"annotations": [...]}`` JSON (module docstring).
        questions: Optional ``{"questions": [...]}`` JSON; its question ids must be those of ``annotations``.

    Returns:
        The aligned data, in annotation order.

    Raises:
        DataError: A malformed file, or ids that do not line up between the files.
    """
    predictions, annotations = Path(predictions), Path(annotations)
    questions = None if questions is None else Path(questions)
    fast = _read_vqa_typed(predictions, annotations, questions)
    if fast is not None:
        return fast
    records = _records(annotations, read_json(annotations), "annotations", "the official VQA annotations")
    ids, types, answers, identity = _references(annotations, records, "question_id")
    if questions is not None:
        qrecs = _records(questions, read_json(questions), "questions", "the official VQA questions")
        qids = _check_ids(questions, qrecs, "question_id", ())
        known = set(qids)
        unasked = [i for i in ids if i not in known]
        if unasked or len(qids) != len(ids):
            ann = set(ids)
            extra = [i for i in qids if i not in ann]
            raise DataError(
                f"{questions}: question ids differ from {annotations}: {len(unasked)} annotated but not asked "
                f"({preview(unasked)}), {len(extra)} asked but not annotated ({preview(extra)})"
            )
    preds = _predictions(predictions, "question_id", annotations, ids)
    return VqaData(ids=ids, answer_types=types, predictions=preds, answers=answers, identity=identity)


def read_vizwiz(predictions: str | os.PathLike[str], annotations: str | os.PathLike[str]) -> VqaData:
    """Read the official VizWiz-VQA annotations (``val.json``) with ``[{"image", "answer"}]`` predictions.

    Raises:
        DataError: A malformed file (e.g. the test split, which has no ``answers``), or images that do not line up.
    """
    predictions, annotations = Path(predictions), Path(annotations)
    records = _records(annotations, read_json(annotations), None, "the official VizWiz-VQA annotations")
    ids, types, answers, _ = _references(annotations, records, "image")
    preds = _predictions(predictions, "image", annotations, ids)
    return VqaData(ids=ids, answer_types=types, predictions=preds, answers=answers, identity=[None] * len(ids))
