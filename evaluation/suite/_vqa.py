"""The VQA family: the official VQA accuracy (GT-Vision-Lab vqaEval.py) after LLaVA's EvalAI answer processing.

:class:`VqaBenchmark` is the base of :mod:`evaluation.suite.vqav2` and :mod:`evaluation.suite.okvqa`;
:func:`score_vqa_family` is shared with :mod:`evaluation.suite.vizwiz`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.metrics.vqa import Rule, accuracy_by_type, vqa_accuracy
from evaluation.readers.vqa import VqaData, read_vqa
from evaluation.registry import Benchmark, Metric, ScoreResult

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

VQA_QUESTIONS = "VQA questions JSON {'questions': [{'question_id', 'image_id', 'question'}]}"
VQA_ANNOTATIONS = "VQA annotations JSON {'annotations': [{'question_id', 'answers', 'answer_type'}]}"

VQA_RULES = """\
Scoring (GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py, current version): each prediction first
goes through LLaVA's EvalAIAnswerProcessor (llava/eval/m4c_evaluator.py, what convert_vqav2_for_submission.py applies
before upload): lower-case, delete ',' and '?', "'s" -> " 's", punctuation, number words -> digits, drop a/an/the,
contractions ("Two" -> "2", "a dog." -> "dog", "dont" -> "don't"). Then, as vqaEval.py: '\\n'/'\\t' -> ' ' and strip
on prediction and the 10 human answers; if the humans' answers are not all identical, both sides are normalised again
with vqaEval's processPunctuation + processDigitArticle (a unanimous question compares the stripped strings as they
are: "t-shirt" x10 never matches the processed "t shirt"). Per human i: min(1, #other humans equal to the
prediction / 3), "other" meaning a different answer dict (leave-one-out for distinct answer_id); the question scores
the mean over humans: 2 matching humans -> (8*2/3 + 2*1/3)/10 = 0.6, 3 -> 0.9, >= 4 -> 1."""


def score_vqa_family(
    data: VqaData, *, rule: Rule, evalai: bool, id_key: str, n_bootstrap: int, seed: int
) -> ScoreResult:
    """Score aligned VQA-style data: overall and per-answer-type accuracy in percent, one row per question.

    Args:
        data: Output of a reader in :mod:`evaluation.readers.vqa`.
        rule: ``"vqa"`` or ``"vizwiz"`` (see :func:`evaluation.metrics.vqa.vqa_accuracy`).
        evalai: Apply LLaVA's EvalAI answer processor to the predictions first.
        id_key: Name of the id field in the rows (``"question_id"`` or ``"image"``).
        n_bootstrap: Resamples for ``ci95`` (0: none).
        seed: Bootstrap seed.

    Returns:
        ``accuracy`` and ``accuracy_<answer type>`` with intervals; rows ``{id_key, "answer_type", "prediction",
        "matches", "accuracy"}`` (``prediction`` as compared, ``accuracy`` in [0, 1]).
    """
    scores = vqa_accuracy(
        data.predictions, data.answers, rule=rule, evalai=evalai,
        answer_identity=data.identity if rule == "vqa" else None,
    )
    metrics, ci95 = accuracy_by_type(scores.accuracy, data.answer_types, n_boot=n_bootstrap, seed=seed)
    rows = [  # tolist() gives Python ints and floats already
        {id_key: i, "answer_type": t, "prediction": p, "matches": m, "accuracy": a}
        for i, t, p, m, a in zip(
            data.ids, data.answer_types, scores.prediction, scores.matches.tolist(), scores.accuracy.tolist()
        )
    ]
    return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95)


def add_raw_predictions_flag(parser: argparse.ArgumentParser) -> None:
    """``--raw-predictions``: skip the EvalAI answer processor (score exactly what the official script would see)."""
    parser.add_argument(
        "--raw-predictions",
        action="store_true",
        help="do not pass predictions through LLaVA's EvalAIAnswerProcessor first",
    )


VQA_FAMILY_METRICS = (
    Metric("accuracy", higher_is_better=True, help="VQA accuracy over all questions, percent"),
    Metric("accuracy_yes_no", higher_is_better=True, help="VQA accuracy, answer_type 'yes/no', percent"),
    Metric("accuracy_number", higher_is_better=True, help="VQA accuracy, answer_type 'number', percent"),
    Metric("accuracy_other", higher_is_better=True, help="VQA accuracy, answer_type 'other', percent"),
)


class VqaBenchmark(Benchmark):
    """The VQA format and scorer that VQAv2 and OK-VQA share (official annotations and questions JSON, EvalAI upload
    predictions, vqaEval.py's accuracy); a subclass registers a dataset with its ``help`` and ``metrics``."""

    takes_questions = True

    missing_annotations = "the official annotations JSON"

    headline = "accuracy"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """Questions and (optional) annotations JSON in the VQA format, COCO ``val2014/`` (images)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.vqa import VqaTask

        return VqaTask(cls.name, questions=configured(cls.name, cfg, "questions"),
                       annotations=None if cfg.annotations is None else configured(cls.name, cfg, "annotations"),
                       images=configured(cls.name, cfg, "images", folder=True), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """Questions (+ annotations) in the VQA layout; the first question's ``COCO_<subtype>_<id>.jpg`` exists."""
        qpath = lay.path(spec, "questions")
        questions = lay.json(qpath, VQA_QUESTIONS, dict)
        lay.keys(qpath, questions, ("questions",), VQA_QUESTIONS)
        records = lay.records(qpath, questions["questions"], ("question_id", "image_id", "question"), VQA_QUESTIONS,
                              "questions")
        apath = lay.optional(spec, "annotations")
        if apath is not None:
            ann = lay.json(apath, VQA_ANNOTATIONS, dict)
            lay.keys(apath, ann, ("annotations",), VQA_ANNOTATIONS)
            lay.records(apath, ann["annotations"], ("question_id", "answers", "answer_type"), VQA_ANNOTATIONS,
                        "annotations")
        images = lay.folder(lay.path(spec, "images"), "COCO val2014 images")
        subtype = questions.get("data_subtype", "val2014")
        lay.sample(images / f"COCO_{subtype}_{int(records[0]['image_id']):012d}.jpg", "COCO val2014 images", images)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--raw-predictions``."""
        add_raw_predictions_flag(parser)

    def _score(
        self, predictions: Path, annotations: Path, *, questions: Path | None = None, n_bootstrap: int, seed: int,
        raw_predictions: bool = False, **opts: Any
    ) -> ScoreResult:
        data = read_vqa(predictions, annotations, questions)
        return score_vqa_family(
            data, rule="vqa", evalai=not raw_predictions, id_key="question_id",
            n_bootstrap=n_bootstrap, seed=seed,
        )
