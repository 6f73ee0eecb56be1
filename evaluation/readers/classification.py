"""Readers for classification benchmarks (ImageNet-style): reference labels and per-class prediction scores.

References: JSON lines ``{"id": <str|int>, "label": <int class index>}``.
Predictions: JSON lines ``{"id": <str|int>, "scores": [<float>, ...]}`` with one score per class.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.readers import preview
from setok.io import DataError, read_jsonl

SampleId = str | int


@dataclass(frozen=True)
class ClassificationData:
    """Predictions aligned to the references' order.

    Attributes:
        ids: Sample ids in reference-file order.
        scores: ``(n, num_classes)`` float64 scores, row ``i`` for ``ids[i]``.
        labels: ``(n,)`` int64 class indices.
    """

    ids: list[SampleId]
    scores: np.ndarray
    labels: np.ndarray


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, int) and not isinstance(value, bool)
    )


def _rows_by_id(
    path: Path, rows: list[dict[str, Any]], field: str
) -> dict[SampleId, Any]:
    """Map id to ``row[field]``, rejecting non-objects, missing keys and duplicate ids (all named in one line)."""
    if not rows:
        raise DataError(f"{path}: no rows")
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: row {i} is not a JSON object")
        missing = [k for k in ("id", field) if k not in row]
        if missing:
            raise DataError(
                f"{path}: row {i} lacks {' and '.join(repr(k) for k in missing)}"
            )
        if not _is_id(row["id"]):
            raise DataError(
                f"{path}: row {i} has an id that is not a string or integer: {row['id']!r}"
            )
    dups = [i for i, c in Counter(r["id"] for r in rows).items() if c > 1]
    if dups:
        raise DataError(f"{path}: {len(dups)} duplicate ids: {preview(dups)}")
    return {r["id"]: r[field] for r in rows}


def read_labels(path: str | os.PathLike[str]) -> dict[SampleId, int]:
    """Read reference labels ``{"id", "label"}`` in file order.

    Raises:
        DataError: Missing file, malformed row, duplicate id, or a label that is not a non-negative integer.
    """
    path = Path(path)
    labels = _rows_by_id(path, read_jsonl(path), "label")
    bad = [
        i
        for i, y in labels.items()
        if not (isinstance(y, int) and not isinstance(y, bool) and y >= 0)
    ]
    if bad:
        raise DataError(
            f"{path}: label is not a non-negative integer for ids {preview(bad)}"
        )
    return labels


def read_scores(
    path: str | os.PathLike[str], num_classes: int | None = None
) -> dict[SampleId, np.ndarray]:
    """Read prediction scores ``{"id", "scores"}`` in file order.

    Args:
        path: Predictions JSONL.
        num_classes: Required vector length; ``None`` takes the first row's length.

    Raises:
        DataError: Missing file, malformed row, duplicate id, non-numeric or non-finite scores, or vectors of the
            wrong length.
    """
    path = Path(path)
    raw = _rows_by_id(path, read_jsonl(path), "scores")
    arrays: dict[SampleId, np.ndarray] = {}
    not_numeric = []
    for i, s in raw.items():
        a = np.asarray(s) if isinstance(s, list) else np.empty(0)
        if (
            a.ndim != 1 or a.size == 0 or a.dtype.kind not in "iuf"
        ):  # strings, null, nesting, bools-only rows
            not_numeric.append(i)
        else:
            arrays[i] = a.astype(np.float64, copy=False)
    if not_numeric:
        raise DataError(
            f"{path}: 'scores' is not a non-empty list of numbers for ids {preview(not_numeric)}"
        )
    expected = (
        num_classes if num_classes is not None else next(iter(arrays.values())).size
    )
    origin = "--num-classes" if num_classes is not None else "the first row's length"
    wrong = [i for i, a in arrays.items() if a.size != expected]
    if wrong:
        lengths = sorted({arrays[i].size for i in wrong})
        raise DataError(
            f"{path}: scores must have {expected} entries ({origin}) but have {', '.join(map(str, lengths))} "
            f"for ids {preview(wrong)}"
        )
    non_finite = [i for i, a in arrays.items() if not np.isfinite(a).all()]
    if non_finite:
        raise DataError(
            f"{path}: scores contain NaN or infinity for ids {preview(non_finite)}"
        )
    return arrays


def read_classification(
    predictions: str | os.PathLike[str],
    references: str | os.PathLike[str],
    num_classes: int | None = None,
) -> ClassificationData:
    """Read and align predictions with references; every reference id needs exactly one prediction.

    Args:
        predictions: Predictions JSONL (``{"id", "scores"}``).
        references: References JSONL (``{"id", "label"}``).
        num_classes: Required score-vector length (default: the first prediction's length).

    Returns:
        Arrays in reference order.

    Raises:
        DataError: Any malformed file, ids missing from or extra in the predictions, or a label outside the score
            vector.
    """
    predictions, references = Path(predictions), Path(references)
    labels = read_labels(references)
    scores = read_scores(predictions, num_classes)
    missing = [i for i in labels if i not in scores]
    if missing:
        raise DataError(
            f"{predictions}: missing predictions for {len(missing)} ids of {references}: {preview(missing)}"
        )
    extra = [i for i in scores if i not in labels]
    if extra:
        raise DataError(
            f"{predictions}: {len(extra)} ids are not in {references}: {preview(extra)}"
        )
    ids = list(labels)
    n_classes = len(next(iter(scores.values())))
    out_of_range = [i for i in ids if labels[i] >= n_classes]
    if out_of_range:
        raise DataError(
            f"{references}: labels must be < {n_classes} (the score-vector length) for ids {preview(out_of_range)}"
        )
    return ClassificationData(
        ids=ids,
        scores=np.stack([scores[i] for i in ids]),
        labels=np.array([labels[i] for i in ids], dtype=np.int64),
    )
