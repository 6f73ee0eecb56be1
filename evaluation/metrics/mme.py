"""MME answer parsing and scores, as the official ``eval_tool/calculation.py`` (also lmms-eval ``tasks/mme/utils.py``).

Rules reproduced from the MME ``eval_tool/calculation.py`` (``calculate_metrics.parse_pred_ans`` and
``process_result``):

* the prediction (4th tab field, lowercased, nothing stripped) is "yes" or "no" if it equals that word, otherwise
  "yes" if its first 4 characters contain ``"yes"``, else "no" if they contain ``"no"``, else "other". So
  ``"Yes, it is"`` -> yes, ``"not really"`` -> no (``"not "`` contains "no"), ``" yes"`` -> yes but ``"  yes"`` ->
  other (the prefix is ``"  ye"``), and ``"y"`` -> other;
* a question is right iff the parsed prediction equals the lowercased reference; "other" is always wrong;
* per subtask, acc = % of questions right and acc+ = % of images with BOTH questions right; the subtask score is
  acc + acc+ (0..200 points); perception and cognition are sums of their subtasks' scores.

Since every image has exactly two questions, a subtask score is the mean over images of per-image points
``50 * (questions right) + 100 * (both right)``: 0, 50 or 200. That makes it a mean-type statistic.

lmms-eval's ``parse_pred_ans`` differs from the official one: it strips whitespace, removes every ``"."`` and maps a
single ``"y"``/``"n"`` to yes/no, so e.g. ``"y"`` or ``"  yes"`` is right there and wrong here.
"""

from __future__ import annotations

import numpy as np

PERCEPTION = (
    "existence",
    "count",
    "position",
    "color",
    "posters",
    "celebrity",
    "scene",
    "landmark",
    "artwork",
    "OCR",
)
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation", "code_reasoning")
SUBTASKS = PERCEPTION + COGNITION
GROUPS = {"perception": PERCEPTION, "cognition": COGNITION}


def parse_mme_answer(prediction: str) -> str:
    """The official MME parse of a prediction: ``"yes"``, ``"no"`` or ``"other"`` (see the module docstring).

    Args:
        prediction: The model's answer, without the line terminator.

    Returns:
        ``"yes"``, ``"no"`` or ``"other"``.
    """
    text = prediction.lower()
    if text in ("yes", "no"):
        return text
    head = text[:4]
    if "yes" in head:
        return "yes"
    if "no" in head:
        return "no"
    return "other"


def image_points(correct: np.ndarray) -> np.ndarray:
    """Per-image MME points: ``50 * (questions right) + 100 * (both right)``.

    Args:
        correct: ``(n_images, 2)`` bool, question ``j`` of image ``i`` answered right.

    Returns:
        ``(n_images,)`` float64 in {0, 50, 200}; their mean is the subtask's acc + acc+.
    """
    c = np.asarray(correct, dtype=bool)
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"need (n_images, 2) correctness, got shape {c.shape}")
    return 50.0 * c.sum(axis=1) + 100.0 * c.all(axis=1)


def subtask_score(correct: np.ndarray) -> tuple[float, float, float]:
    """acc, acc+ and their sum (the subtask score) in percent / points.

    Args:
        correct: ``(n_images, 2)`` bool correctness of the two questions of each image.

    Returns:
        ``(acc, acc_plus, score)``: % of questions right, % of images with both right, and ``acc + acc_plus``.
    """
    c = np.asarray(correct, dtype=bool)
    if c.ndim != 2 or c.shape[1] != 2 or c.shape[0] == 0:
        raise ValueError(f"need non-empty (n_images, 2) correctness, got shape {c.shape}")
    acc = 100.0 * float(c.mean())
    acc_plus = 100.0 * float(c.all(axis=1).mean())
    return acc, acc_plus, acc + acc_plus
