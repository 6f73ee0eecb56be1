"""Readers of the official multiple-choice reference files (SEED-Bench-1, MMBench, MMMU) and of answer files.

Predictions of all three: JSON lines, one per question, with the question's id under ``"question_id"``, ``"index"`` or
``"id"`` (exactly one of them) and the model's raw output under ``"prediction"`` (or ``"text"``, LLaVA's answer-file
field). Ids are compared as strings (``101669`` and ``"101669"`` are the same question); MMBench indices as integers.
"""

from __future__ import annotations

import ast
import os
import string
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.readers import preview
from setok.io import DataError, read_json, read_jsonl

PathLike = str | os.PathLike[str]
ID_FIELDS = ("question_id", "index", "id")
TEXT_FIELDS = ("prediction", "text")


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _no_duplicates(path: Path, ids: list[Any], what: str) -> None:
    dups = [i for i, c in Counter(ids).items() if c > 1]
    if dups:
        raise DataError(f"{path}: {len(dups)} duplicate {what}: {preview(dups)}")


def read_predictions(path: PathLike) -> dict[str, str]:
    """Question id (as a string) to raw model output, in file order.

    Raises:
        DataError: Missing file, a row that is not an object, no or several id fields, a non-string output, or
            duplicate ids.
    """
    path = Path(path)
    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path}: no rows")
    out: list[tuple[str, str]] = []
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {i} is not a JSON object")
        keys = [k for k in ID_FIELDS if k in row]
        if len(keys) != 1:
            raise DataError(f"{path}: row {i} needs exactly one of {', '.join(ID_FIELDS)}, has {keys or 'none'}")
        qid = row[keys[0]]
        if not _is_id(qid):
            raise DataError(f"{path}: row {i} has an id that is not a string or integer: {qid!r}")
        field = next((k for k in TEXT_FIELDS if k in row), None)
        if field is None:
            raise DataError(f"{path}: row {i} lacks 'prediction' (or 'text')")
        if not isinstance(row[field], str):
            raise DataError(f"{path}: row {i} has a {field!r} that is not a string")
        out.append((str(qid), row[field]))
    _no_duplicates(path, [q for q, _ in out], "ids")
    return dict(out)


def align(
    predictions: dict[str, str],
    ids: list[str],
    pred_path: PathLike,
    ref_path: PathLike,
    also_known: Collection[str] = (),
) -> list[str]:
    """Predictions in reference order; every id needs one, ids outside the references (and ``also_known``) are errors.

    Args:
        predictions: From :func:`read_predictions`.
        ids: Reference ids to score, in order.
        pred_path: Predictions path (for messages).
        ref_path: References path (for messages).
        also_known: Reference ids not scored (filtered out) whose predictions are ignored rather than rejected.
    """
    missing = [i for i in ids if i not in predictions]
    if missing:
        raise DataError(
            f"{pred_path}: missing predictions for {len(missing)} of {len(ids)} ids of {ref_path}: {preview(missing)}"
        )
    known = set(ids) | set(also_known)
    extra = [i for i in predictions if i not in known]
    if extra:
        raise DataError(f"{pred_path}: {len(extra)} ids are not in {ref_path}: {preview(extra)}")
    return [predictions[i] for i in ids]


# ----------------------------------------------------------------------------------------------------------- SEED


@dataclass(frozen=True)
class SeedQuestion:
    """One SEED-Bench-1 question: id, answer letter, evaluation dimension and data type."""

    id: str
    answer: str
    type_id: int
    type_name: str
    data_type: str | None


def read_seed(path: PathLike) -> list[SeedQuestion]:
    """Read ``SEED-Bench.json``: ``{"questions": [...], "question_type": {name: id}}`` (or a bare question list).

    Raises:
        DataError: Missing/malformed file, a question lacking ``question_id``/``answer``/``question_type_id``, an
            answer other than A-D, or duplicate ids.
    """
    path = Path(path)
    data = read_json(path)
    questions = data.get("questions") if isinstance(data, dict) else data
    if not isinstance(questions, list) or not questions:
        raise DataError(f"{path}: expected {{'questions': [...]}} with at least one question")
    names = data.get("question_type", {}) if isinstance(data, dict) else {}
    id_to_name = {v: k for k, v in names.items()} if isinstance(names, dict) else {}
    out = []
    for i, q in enumerate(questions, 1):
        if not isinstance(q, dict) or any(k not in q for k in ("question_id", "answer", "question_type_id")):
            raise DataError(f"{path}: question {i} is not an object with question_id, answer and question_type_id")
        if q["answer"] not in ("A", "B", "C", "D"):
            raise DataError(f"{path}: question {q['question_id']} has answer {q['answer']!r}, not A-D")
        type_id = q["question_type_id"]
        if not isinstance(type_id, int) or isinstance(type_id, bool):
            raise DataError(f"{path}: question {q['question_id']} has a non-integer question_type_id {type_id!r}")
        data_type = q.get("data_type")
        out.append(SeedQuestion(str(q["question_id"]), q["answer"], type_id, id_to_name.get(type_id, f"dim{type_id}"),
                                None if data_type is None else str(data_type)))
    _no_duplicates(path, [q.id for q in out], "question_ids")
    return out


# -------------------------------------------------------------------------------------------------------- MMBench


@dataclass(frozen=True)
class MMBenchRow:
    """One row of an MMBench TSV: a question or one of its circular-shifted copies."""

    index: int
    answer: str
    choices: dict[str, str]
    category: str | None
    l2_category: str | None


def _cell(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)


def read_mmbench(path: PathLike) -> list[MMBenchRow]:
    """Read an official MMBench TSV (``index, question, hint, A, B, C, D, answer, category, l2-category, ...``).

    Read like VLMEvalKit's ``load`` (``pandas.read_csv(sep="\\t")`` with pandas' default missing-value strings, so an
    empty cell, ``nan`` or ``None`` is not an option); column names are lowercased except single capital letters.
    The ``image`` column is skipped.

    Raises:
        DataError: Missing/unparsable file, missing columns, a non-integer or duplicate index, an answer that is not
            one of the row's options, or a circular copy whose main question (``index % 1e6``) is absent.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, usecols=lambda c: str(c).lower() != "image")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"{path}: not a readable TSV ({why})") from None
    df.columns = [c if c in string.ascii_uppercase else str(c).lower() for c in df.columns]
    lacking = [c for c in ("index", "answer", "A", "B") if c not in df.columns]
    if lacking:
        raise DataError(f"{path}: missing columns {', '.join(lacking)}")
    letters = [c for c in string.ascii_uppercase if c in df.columns]
    rows = []
    for n, rec in enumerate(df.to_dict("records"), 2):
        raw = _cell(rec["index"])
        try:
            index = int(raw) if raw is not None else None
        except ValueError:
            index = None
        if index is None or index < 0:
            raise DataError(f"{path}: line {n} has index {raw!r}, not a non-negative integer")
        choices = {c: v for c in letters if (v := _cell(rec[c])) is not None}
        answer = _cell(rec["answer"])
        if answer not in choices:
            raise DataError(f"{path}: index {index} has answer {answer!r}, not one of its options {list(choices)}")
        rows.append(MMBenchRow(index, answer, choices, _cell(rec.get("category")), _cell(rec.get("l2-category"))))
    if not rows:
        raise DataError(f"{path}: no rows")
    _no_duplicates(path, [r.index for r in rows], "indices")
    mains = {r.index for r in rows if r.index < 1_000_000}
    orphans = [r.index for r in rows if r.index % 1_000_000 not in mains]
    if orphans:
        raise DataError(f"{path}: circular copies without their main question (index % 1e6): {preview(orphans)}")
    return rows


# ----------------------------------------------------------------------------------------------------------- MMMU


@dataclass(frozen=True)
class MmmuQuestion:
    """One MMMU question: id, ``"multiple-choice"`` or open, option texts, gold answer(s) and subject."""

    id: str
    question_type: str
    options: list[str]
    answer: str | list[str]
    subject: str


def _as_list(value: Any) -> Any:
    """HF MMMU stores lists as their Python repr (``"['a', 'b']"``); turn such a string into the list."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            return value
        if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
            return parsed
    return value


def read_mmmu(path: PathLike) -> list[MmmuQuestion]:
    """Read MMMU references: a JSON list (or JSON lines) of ``{"id", "question_type", "options", "answer"}`` rows.

    ``options`` is a list of strings or its Python repr (the HF dataset's form). An open question's answer may be a
    list of accepted answers or its repr (the official ``answer_dict_val.json`` keeps such answers as lists). The
    subject is the id without its split prefix and number (``validation_Art_Theory_12`` -> ``Art_Theory``).

    Raises:
        DataError: Missing/malformed file, missing fields, bad options or answers, ids not of the form
            ``<split>_<Subject>_<n>``, or duplicate ids.
    """
    path = Path(path)
    data = read_jsonl(path) if path.suffix == ".jsonl" else read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError(f"{path}: expected a non-empty JSON list (or JSON lines) of questions")
    out = []
    for i, q in enumerate(data, 1):
        if not isinstance(q, dict) or any(k not in q for k in ("id", "question_type", "answer")):
            raise DataError(f"{path}: row {i} is not an object with id, question_type and answer")
        qid = str(q["id"])
        parts = qid.split("_")
        if len(parts) < 3:
            raise DataError(f"{path}: id {qid!r} is not of the form <split>_<Subject>_<n>")
        answer = _as_list(q["answer"])
        if q["question_type"] == "multiple-choice":
            options = _as_list(q.get("options"))
            if not isinstance(options, list) or not options or not all(isinstance(o, str) for o in options):
                raise DataError(f"{path}: {qid} is multiple-choice but 'options' is not a non-empty list of strings")
            letters = [chr(ord("A") + k) for k in range(len(options))]
            golds = [answer] if isinstance(answer, str) else answer
            if not isinstance(golds, list) or not golds or any(g not in letters for g in golds):
                raise DataError(f"{path}: {qid} has answer {q['answer']!r}, not one of its letters {letters}")
        else:
            options = []
            is_list = isinstance(answer, list) and answer and all(isinstance(a, str) for a in answer)
            if not (isinstance(answer, str) or is_list):
                raise DataError(f"{path}: {qid} has an answer that is not a string or a list of strings")
        out.append(MmmuQuestion(qid, str(q["question_type"]), options, answer, "_".join(parts[1:-1])))
    _no_duplicates(path, [q.id for q in out], "ids")
    return out
