"""GQA: LLaVA's prediction conversion, then the official GQA ``eval.py`` accuracy over balanced questions (percent)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.metrics.gqa import gqa_answer_kind, gqa_correct, llava_gqa_prediction
from evaluation.metrics.vqa import accuracy_by_type
from evaluation.readers.gqa import read_gqa
from evaluation.registry import Benchmark, Metric, ScoreResult, register
from setok.io import DataError

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

STRUCTURAL = ("verify", "query", "choose", "logical", "compare")
SEMANTIC = ("attr", "cat", "global", "obj", "rel")


@register("gqa")
class GQA(Benchmark):
    """GQA (testdev-balanced in the papers) accuracy as GQA's ``eval.py`` computes it."""

    help = """GQA accuracy (percent) over balanced questions, as the official GQA eval.py; plus per type.

references (--questions; --annotations is accepted as a synonym): the official questions JSON, e.g.
  testdev_balanced_questions.json, an object keyed by question id:
    {"20968497": {"imageId": "n15740", "question": "...", "answer": "yes", "isBalanced": true,
                  "types": {"structural": "verify", "semantic": "attr", "detailed": "existAttrC"}, ...}, ...}
predictions (--predictions): GQA's predictions format, a JSON array (what LLaVA's convert_gqa_for_eval.py writes):
    [{"questionId": "20968497", "prediction": "Yes."}, ...]
  every balanced question needs one; predictions for unbalanced questions of the file are ignored (as eval.py does);
  unknown and duplicate questionIds are errors. An integer questionId is read as its decimal string.

Scoring: each prediction is converted as LLaVA's scripts/convert_gqa_for_eval.py does, text.rstrip('.').lower()
(all trailing periods go, then lower-case; whitespace is NOT stripped), then GQA eval.py: correct iff the prediction
equals the question's "answer" exactly; only questions with isBalanced count. Converting an already converted
prediction changes nothing. --no-convert compares the predictions as stored (eval.py alone).

Metrics: accuracy; accuracy_binary and accuracy_open (open = structural type "query", as eval.py);
accuracy_<structural type> (accuracy_verify, accuracy_query, accuracy_choose, accuracy_logical, accuracy_compare)
and accuracy_<semantic type> (accuracy_attr, accuracy_cat, accuracy_global, accuracy_obj, accuracy_rel), for the
types present. Per-sample rows: {"questionId", "prediction" (as compared), "answer",
"structural", "semantic", "correct": 0|1}. ci95: percentile bootstrap over questions (per type: over its questions)."""
    metrics = (
        Metric("accuracy", higher_is_better=True, help="exact-match accuracy over balanced questions, percent"),
        Metric("accuracy_binary", higher_is_better=True, help="accuracy on binary (non-query) questions, percent"),
        Metric("accuracy_open", higher_is_better=True, help="accuracy on open (query) questions, percent"),
        *(Metric(f"accuracy_{t}", True, f"accuracy, structural type {t}, percent") for t in STRUCTURAL),
        *(Metric(f"accuracy_{t}", True, f"accuracy, semantic type {t}, percent") for t in SEMANTIC),
    )
    needs_annotations = False
    takes_questions = True

    headline = "accuracy"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """Questions ``testdev_balanced_questions.json``, ``images/``."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.vqa import GqaTask

        return GqaTask(cls.name, questions=configured(cls.name, cfg, "questions"),
                       images=configured(cls.name, cfg, "images", folder=True), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """The balanced questions JSON; the first question's ``<imageId>.jpg`` exists."""
        expected = "GQA questions {'<question id>': {'imageId', 'question', 'answer', 'isBalanced', 'types'}}"
        path = lay.path(spec, "questions")
        questions = lay.json(path, expected, dict)
        lay.records(path, list(questions.values()), ("imageId", "isBalanced"), expected, "questions")
        images = lay.folder(lay.path(spec, "images"), "the GQA images <imageId>.jpg")
        lay.sample(images / f"{next(iter(questions.values()))['imageId']}.jpg", "the GQA images", images)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--no-convert``."""
        parser.add_argument(
            "--no-convert",
            action="store_true",
            help="compare predictions as stored (skip LLaVA's rstrip('.').lower() conversion)",
        )

    def _score(
        self, predictions: Path, annotations: Path | None, *, questions: Path | None = None, n_bootstrap: int,
        seed: int, no_convert: bool = False, **opts: Any
    ) -> ScoreResult:
        if questions is not None and annotations is not None and Path(questions) != Path(annotations):
            raise DataError(f"{annotations}: gqa takes one reference file; give --questions only")
        reference = questions if questions is not None else annotations
        if reference is None:
            raise DataError(f"{predictions}: gqa needs --questions (the official *_balanced_questions.json)")
        data = read_gqa(predictions, reference)
        if no_convert:
            preds = data.predictions
        else:  # convert each distinct prediction once
            converted = {p: llava_gqa_prediction(p) for p in dict.fromkeys(data.predictions)}
            preds = list(map(converted.__getitem__, data.predictions))
        correct = gqa_correct(preds, data.answers, convert=False)
        kind_of = {s: gqa_answer_kind(s) for s in set(data.structural)}
        kinds = list(map(kind_of.__getitem__, data.structural))
        metrics, ci95 = accuracy_by_type(
            correct, kinds, data.structural, data.semantic,
            n_boot=n_bootstrap, seed=seed,
        )
        rows = [
            {"questionId": q, "prediction": p, "answer": a, "structural": st, "semantic": se, "correct": int(c)}
            for q, p, a, st, se, c in zip(
                data.ids, preds, data.answers, data.structural, data.semantic, correct.tolist()
            )
        ]
        return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95)
