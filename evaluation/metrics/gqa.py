"""GQA accuracy: LLaVA's prediction conversion, then the official exact match over balanced questions.

Rules reproduced (hand-written: a string comparison needs no library):

* ``llava_gqa_prediction``: LLaVA ``scripts/convert_gqa_for_eval.py`` turns a model answer into a prediction with
  ``text.rstrip('.').lower()``: every trailing period goes ("Yes..." -> "yes"), nothing else (no whitespace strip, so
  "yes. " stays "yes. "; inner punctuation stays).
* ``gqa_correct``: GQA ``eval.py`` (v1.2, https://cs.stanford.edu/people/dorarad/gqa/evaluate.html):
  ``correct = (predicted == gold)``, exact string equality against the question's ``answer``, scored only for
  questions with ``isBalanced``; per structural type (``types.structural``: verify, query, choose, logical, compare),
  semantic type (``types.semantic``: attr, cat, global, obj, rel) and ``open`` (structural == "query") vs ``binary``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def llava_gqa_prediction(text: str) -> str:
    """LLaVA's ``convert_gqa_for_eval.py``: strip trailing periods, then lower-case ("Yes." -> "yes")."""
    return text.rstrip(".").lower()


def gqa_correct(predictions: Sequence[str], answers: Sequence[str], *, convert: bool = True) -> np.ndarray:
    """Per-question exact match (GQA ``eval.py``).

    Args:
        predictions: One predicted answer per question.
        answers: The gold ``answer`` of each question (compared as stored).
        convert: Apply :func:`llava_gqa_prediction` to the predictions first.

    Returns:
        ``(n,)`` bool array.

    Raises:
        ValueError: Lengths differ.
    """
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answers")
    preds = [llava_gqa_prediction(p) for p in predictions] if convert else list(predictions)
    return np.fromiter((p == a for p, a in zip(preds, answers)), dtype=bool, count=len(preds))


def gqa_answer_kind(structural: str) -> str:
    """``"open"`` for structural type ``query``, else ``"binary"`` (GQA ``eval.py``)."""
    return "open" if structural == "query" else "binary"
