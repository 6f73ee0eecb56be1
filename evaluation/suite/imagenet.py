"""ImageNet-1k classification: top-1 / top-5 accuracy in percent."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evaluation.bootstrap import means_with_ci95
from evaluation.metrics.classification import topk_correct
from evaluation.provenance import Provenance
from evaluation.readers.classification import read_classification
from evaluation.registry import Benchmark, Metric, ScoreResult, register

IMAGENET_CLASSES = 1000


@register("imagenet")
class ImageNet(Benchmark):
    """Top-k accuracy of class scores against integer labels."""

    help = """ImageNet classification: top-1 and top-5 accuracy (percent).

references (--annotations): JSON lines, one per image:
    {"id": "ILSVRC2012_val_00000001", "label": 65}
  label is the integer class index in [0, num_classes).
predictions (--predictions): JSON lines, one per image:
    {"id": "ILSVRC2012_val_00000001", "scores": [0.1, 2.3, ...]}
  one score per class (logits or probabilities; only their order matters), all vectors the same length
  (num_classes; default: the first row's length).

Every reference id needs exactly one prediction: missing, duplicate and extra ids are errors.
A sample is correct at k iff its label is among np.argsort(-scores, kind="stable")[:k], i.e. tied scores
rank the lower class index first. Per-sample rows: {"id", "top1": 0|1, "top5": 0|1}. ci95: percentile
bootstrap over images (default 1000 resamples). Scores over other than ImageNet-1k's 1000 classes are recorded as a
shortcut in the result's provenance (chance level and difficulty differ), and reports mark them."""
    metrics = (
        Metric("top1", higher_is_better=True, help="top-1 accuracy, percent"),
        Metric("top5", higher_is_better=True, help="top-5 accuracy, percent"),
    )

    missing_annotations = "the reference labels"

    output = "scores"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--num-classes``."""
        parser.add_argument(
            "--num-classes",
            type=int,
            default=None,
            help="required length of every scores vector (default: first row's)",
        )

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, num_classes: int | None = None,
        **opts: Any
    ) -> ScoreResult:
        data = read_classification(predictions, annotations, num_classes)
        top1 = topk_correct(data.scores, data.labels, 1)
        top5 = topk_correct(data.scores, data.labels, 5)
        metrics, ci95 = means_with_ci95(
            {"top1": top1, "top5": top5},
            scale=100.0,
            n_boot=n_bootstrap,
            seed=seed,
        )
        rows = [
            {"id": i, "top1": int(a), "top5": int(b)}
            for i, a, b in zip(data.ids, top1, top5)
        ]
        classes = int(data.scores.shape[1])
        provenance = Provenance(
            shortcuts=[] if classes == IMAGENET_CLASSES else
            [f"top-k over {classes} classes, not ImageNet-1k's {IMAGENET_CLASSES}"]
        )
        return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95, provenance=provenance)
