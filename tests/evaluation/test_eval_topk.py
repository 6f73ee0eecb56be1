"""Top-k correctness: rank rule and tie rule."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.metrics.classification import topk_accuracy, topk_correct


def test_top1_counts_only_the_highest_score() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    assert topk_correct(scores, np.array([1, 1]), 1).tolist() == [True, False]


def test_top5_counts_label_ranked_fifth() -> None:
    scores = np.array([[9.0, 8.0, 7.0, 6.0, 0.0, 0.0, 5.0, 0.0]])  # class 6 is 5th
    assert topk_correct(scores, np.array([6]), 5).tolist() == [True]
    assert topk_correct(scores, np.array([6]), 4).tolist() == [False]


def test_top5_misses_label_ranked_sixth() -> None:
    scores = np.array([[9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 0.0]])
    assert topk_correct(scores, np.array([5]), 5).tolist() == [False]


def test_tied_scores_rank_the_lower_class_index_first() -> None:
    scores = np.zeros((1, 8))
    assert topk_correct(scores, np.array([0]), 1).tolist() == [True]
    assert topk_correct(scores, np.array([1]), 1).tolist() == [False]
    # Six-way tie straddling the top-5 boundary: classes 0..4 are in, class 5 is out.
    assert topk_correct(scores, np.array([4]), 5).tolist() == [True]
    assert topk_correct(scores, np.array([5]), 5).tolist() == [False]


def test_tie_below_a_higher_score_keeps_index_order() -> None:
    scores = np.array([[1.0, 1.0, 3.0]])  # order: 2, 0, 1
    assert topk_correct(scores, np.array([0]), 2).tolist() == [True]
    assert topk_correct(scores, np.array([1]), 2).tolist() == [False]


def test_topk_accuracy_is_a_percentage() -> None:
    scores = np.eye(4)
    assert topk_accuracy(scores, np.array([0, 1, 2, 0]), 1) == pytest.approx(75.0)


def test_labels_outside_the_score_vector_are_rejected() -> None:
    with pytest.raises(ValueError, match="labels must lie"):
        topk_correct(np.zeros((1, 3)), np.array([3]), 1)
