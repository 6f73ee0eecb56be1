"""VizWiz-VQA: the official VizWiz accuracy (VizWiz vqaEval.py) after LLaVA's EvalAI answer processing, in percent."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.readers.vqa import read_vizwiz
from evaluation.registry import Benchmark, Metric, ScoreResult, register
from evaluation.suite._vqa import VQA_FAMILY_METRICS, add_raw_predictions_flag, score_vqa_family

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout


@register("vizwiz")
class VizWiz(Benchmark):
    """VizWiz-VQA val scored as the official VizWiz evaluator does."""

    help = """VizWiz-VQA accuracy (percent), overall and per answer type, as the official VizWiz vqaEval.py.

references (--annotations): the official annotations, e.g. val.json, a JSON array:
    [{"image": "VizWiz_val_00000000.jpg", "question": "...", "answer_type": "other", "answerable": 1,
      "answers": [{"answer": "basil leaves", "answer_confidence": "yes"}, ...10]}, ...]
  (test.json has no answers and cannot be scored here.)
predictions (--predictions): the EvalAI upload format (LLaVA's convert_vizwiz_for_submission.py), a JSON array:
    [{"image": "VizWiz_val_00000000.jpg", "answer": "Basil."}, ...]
  one per annotated image: missing, extra and duplicate images are errors.

Scoring (VizWiz-VQA vqaEval.py by Qing Li, from vizwiz.org): each prediction first goes through LLaVA's
EvalAIAnswerProcessor (llava/eval/m4c_evaluator.py, applied by convert_vizwiz_for_submission.py), then VizWiz's
own steps: '\\n'/'\\t' -> ' ', strip, processPunctuation, processDigitArticle (its contraction table writes most
apostrophes as U+2019: "dont" -> "don\u2019t"). The human answers are compared as stored (VizWiz does not normalise
them). Per human i: min(1, #other humans (by position) equal to the prediction / 3); the image scores the mean over
humans: 2 matching of 10 -> 0.6, 3 -> 0.9, >= 4 -> 1. Unlike vqaEval.py for VQAv2, there is no unanimity special case.

Metrics: accuracy, and accuracy_<answer_type> for every answer_type present ('yes/no' -> accuracy_yes_no,
accuracy_number, accuracy_other, accuracy_unanswerable). Not reported: the unanswerability average precision / F1
(they need an 'answerable' score per prediction, which LLaVA-style outputs lack).
Per-sample rows: {"image", "answer_type", "prediction" (as compared), "matches", "accuracy" (0..1)}.
ci95: percentile bootstrap over images (per type: over that type's images).
--raw-predictions skips the EvalAI processor."""
    metrics = (
        *VQA_FAMILY_METRICS,
        Metric("accuracy_unanswerable", higher_is_better=True, help="accuracy, answer_type 'unanswerable', percent"),
    )

    missing_annotations = "the official val.json"

    headline = "accuracy"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """``val.json`` (annotations), ``val/`` (images)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.vqa import VizWizTask

        return VizWizTask(cls.name, annotations=configured(cls.name, cfg, "annotations"),
                          images=configured(cls.name, cfg, "images", folder=True), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """``val.json`` records; the first record's image exists."""
        expected = "VizWiz val.json [{'image', 'question', 'answers', 'answer_type'}]"
        path = lay.path(spec, "annotations")
        records = lay.records(path, lay.json(path, expected, list), ("image", "question", "answers", "answer_type"),
                              expected, "records")
        images = lay.folder(lay.path(spec, "images"), "the VizWiz val images")
        lay.sample(images / str(records[0]["image"]), "the VizWiz val images", images)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--raw-predictions``."""
        add_raw_predictions_flag(parser)

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, raw_predictions: bool = False,
        **opts: Any
    ) -> ScoreResult:
        data = read_vizwiz(predictions, annotations)
        return score_vqa_family(
            data, rule="vizwiz", evalai=not raw_predictions, id_key="image",
            n_bootstrap=n_bootstrap, seed=seed,
        )
