"""POPE yes/no answer parsing and binary metrics (positive class = "yes"), as the official POPE ``evaluate.py``.

Rules reproduced from AoiDragon/POPE ``evaluate.py`` (identical in haotian-liu/LLaVA ``llava/eval/eval_pope.py``):

* answer parsing: keep the text before the first ``"."`` (if any), delete every ``","``, split on single spaces;
  the answer is "no" iff one of the words is exactly ``"No"``, ``"not"`` or ``"no"``, otherwise "yes". So an answer
  that says neither (``"I cannot tell"``) counts as "yes", and so do ``"NO"`` and ``"No!"`` (no other punctuation is
  removed and the match is case-sensitive);
* precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R), accuracy = (TP + TN) / N and
  yes-ratio = (predicted "yes") / N, i.e. the yes-ratio counts the model's answers, not the references.

The official script divides by zero when a denominator is empty (e.g. no "yes" prediction at all); here such a
precision, recall or F1 is 0, the convention lmms-eval's ``pope_aggregate_*`` uses.
"""

from __future__ import annotations

import numpy as np

NO_WORDS = frozenset({"No", "not", "no"})
METRICS = ("accuracy", "precision", "recall", "f1", "yes_ratio")


def parse_pope_answer(text: str) -> str:
    """Map a free-form answer to ``"yes"`` or ``"no"`` by the official POPE rule (see the module docstring).

    Args:
        text: The model's answer.

    Returns:
        ``"no"`` if the first sentence contains the word ``No``, ``not`` or ``no``; ``"yes"`` otherwise.
    """
    first_sentence = text.split(".", 1)[0]
    words = first_sentence.replace(",", "").split(" ")
    return "no" if NO_WORDS.intersection(words) else "yes"


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise, 0 where ``den == 0``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


CELLS = ("tp", "fp", "fn", "tn")  # the confusion cells, in the order of :func:`confusion_cells`


def confusion_cells(pred_yes: np.ndarray, label_yes: np.ndarray) -> np.ndarray:
    """``(n,)`` int64 cell of each question in :data:`CELLS` order: 0 TP, 1 FP, 2 FN, 3 TN."""
    p, y = np.asarray(pred_yes, dtype=bool), np.asarray(label_yes, dtype=bool)
    return 2 * (~p).astype(np.int64) + (~y).astype(np.int64)


def pope_metrics_from_cells(cells: np.ndarray) -> dict[str, np.ndarray]:
    """POPE metrics (percent) from confusion counts, vectorised over resamples.

    Args:
        cells: ``(b, 4)`` counts of TP, FP, FN, TN (:data:`CELLS`) per resample.

    Returns:
        Metric name (:data:`METRICS`) to ``(b,)`` float64 values in percent.
    """
    c = np.asarray(cells)
    tp, fp, fn, tn = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    n = tp + fp + fn + tn
    precision = _safe_ratio(tp, tp + fp)
    recall = _safe_ratio(tp, tp + fn)
    f1 = _safe_ratio(2 * precision * recall, precision + recall)
    return {
        "accuracy": 100.0 * (tp + tn) / n,
        "precision": 100.0 * precision,
        "recall": 100.0 * recall,
        "f1": 100.0 * f1,
        "yes_ratio": 100.0 * (tp + fp) / n,
    }


def pope_metrics_on(pred_yes: np.ndarray, label_yes: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """POPE metrics (percent) of the resamples ``idx`` of one split, vectorised over resamples.

    Args:
        pred_yes: ``(n,)`` bool, the parsed answer is "yes".
        label_yes: ``(n,)`` bool, the reference label is "yes".
        idx: ``(b, n)`` int sample indices, one resample per row (``np.arange(n)[None]`` for the point estimate).

    Returns:
        Metric name (:data:`METRICS`) to ``(b,)`` float64 values in percent.
    """
    p = np.asarray(pred_yes, dtype=bool)[idx]
    y = np.asarray(label_yes, dtype=bool)[idx]
    cells = np.stack([(p & y).sum(axis=1), (p & ~y).sum(axis=1), (~p & y).sum(axis=1), (~p & ~y).sum(axis=1)], axis=1)
    return pope_metrics_from_cells(cells)


def pope_metrics(pred_yes: np.ndarray, label_yes: np.ndarray) -> dict[str, float]:
    """POPE accuracy, precision, recall, F1 and yes-ratio of one split, in percent.

    Args:
        pred_yes: ``(n,)`` bool, the parsed answer is "yes" (see :func:`parse_pope_answer`).
        label_yes: ``(n,)`` bool, the reference label is "yes".

    Returns:
        Metric name (:data:`METRICS`) to value.
    """
    n = len(pred_yes)
    if n == 0 or len(label_yes) != n:
        raise ValueError(f"need equal, non-zero lengths, got {n} and {len(label_yes)}")
    values = pope_metrics_on(pred_yes, label_yes, np.arange(n)[None])
    return {k: float(v[0]) for k, v in values.items()}
