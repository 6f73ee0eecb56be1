"""Top-k classification accuracy."""

from __future__ import annotations

import numpy as np


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per-sample top-k correctness.

    Sample ``i`` is correct iff ``labels[i]`` is among ``np.argsort(-scores[i], kind="stable")[:k]``; tied scores are
    therefore ranked by class index, the lower index first (so a tie at the k-th place goes to the lower class index).

    Args:
        scores: ``(n, num_classes)`` class scores (logits or probabilities; only their order matters).
        labels: ``(n,)`` integer class indices in ``[0, num_classes)``.
        k: Number of top-ranked classes that count (``k >= num_classes`` makes every sample correct).

    Returns:
        ``(n,)`` boolean array.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or labels.shape != (scores.shape[0],):
        raise ValueError(
            f"need scores (n, C) and labels (n,), got {scores.shape} and {labels.shape}"
        )
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]})")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (top == labels[:, None]).any(axis=1)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Top-k accuracy in percent (see :func:`topk_correct` for the tie rule)."""
    correct = topk_correct(scores, labels, k)
    return float(100.0 * correct.mean()) if correct.size else float("nan")
