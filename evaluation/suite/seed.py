"""SEED-Bench-1 multiple choice: accuracy overall, per data type and per evaluation dimension."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.bootstrap import means_with_ci95
from evaluation.metrics.multiple_choice import grouped_accuracy, seed_correct, slug
from evaluation.readers.multiple_choice import align, read_predictions, read_seed
from evaluation.registry import Benchmark, Metric, ScoreResult, register
from setok.io import DataError

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

DIMENSIONS = (  # SEED-Bench-1 question_type names (DATASET.md), ids 1..12
    "Scene Understanding",
    "Instance Identity",
    "Instance Attributes",
    "Instance Location",
    "Instances Counting",
    "Spatial Relation",
    "Instance Interaction",
    "Visual Reasoning",
    "Text Understanding",
    "Action Recognition",
    "Action Prediction",
    "Procedure Understanding",
)


@register("seed")
class Seed(Benchmark):
    """SEED-Bench-1 with the lmms-eval answer-letter rule."""

    help = """SEED-Bench-1 multiple choice: accuracy (percent) overall, per data type and per evaluation dimension.

references (--annotations): the official SEED-Bench.json,
    {"questions": [{"question_id": "101669", "question": "...", "choice_a": "One", ..., "choice_d": "Four",
                    "answer": "A", "data_id": "1454426_2591111986", "data_type": "image",
                    "question_type_id": 5}, ...],
     "question_type": {"Scene Understanding": 1, ..., "Procedure Understanding": 12}}
predictions (--predictions): JSON lines {"question_id": "101669", "prediction": "A"} (the leaderboard upload
  format; LLaVA answer files {"question_id", "text"} are read too). Ids compare as strings.

Every scored question needs exactly one prediction; missing, duplicate and unknown ids are errors (with
--data-type image, predictions of the file's video questions are ignored).
A prediction is right (--letter-rule first-char, default; lmms-eval seed_process_result): its first
non-blank character equals the answer letter, case-insensitively ("b) a cat" -> B; "The answer is B" -> T, wrong).
--letter-rule exact (LLaVA convert_seed_for_submission.py): the prediction must equal the letter ("B." is wrong).
metrics: accuracy; accuracy_image / accuracy_video (by data_type); accuracy_<dimension> per question_type name,
lowercased with "_" (accuracy_scene_understanding, accuracy_instance_identity, accuracy_instance_attributes,
accuracy_instance_location, accuracy_instances_counting, accuracy_spatial_relation, accuracy_instance_interaction,
accuracy_visual_reasoning, accuracy_text_understanding, accuracy_action_recognition, accuracy_action_prediction,
accuracy_procedure_understanding). A table's SEED-IMG / SEED^I is accuracy_image (or
accuracy with --data-type image).
Per-sample rows: {"id", "question_type_id", "data_type", "answer", "prediction", "correct"}.
ci95: percentile bootstrap over questions (default 1000 resamples), within the group for group metrics."""
    metrics = (
        Metric("accuracy", higher_is_better=True, help="accuracy over the scored questions, percent"),
        Metric("accuracy_image", higher_is_better=True, help="accuracy on image questions, percent"),
        Metric("accuracy_video", higher_is_better=True, help="accuracy on video questions, percent"),
    ) + tuple(
        Metric(f"accuracy_{slug(d)}", higher_is_better=True, help=f"{d} accuracy, percent") for d in DIMENSIONS
    )

    missing_annotations = "SEED-Bench.json"

    headline = "accuracy"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """``SEED-Bench.json`` (annotations), ``SEED-Bench-image/`` (images); options.data_type must be ``image``."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.multiple_choice import SeedTask

        if cfg.options.get("data_type") != "image":  # only image questions are asked: the scorer must skip the videos
            raise DataError(f"benchmarks.{cls.name}.options.data_type: must be 'image' (the scorer's --data-type; only "
                            f"SEED-Bench-1 image questions are asked), got {cfg.options.get('data_type')!r}")
        return SeedTask(cls.name, annotations=configured(cls.name, cfg, "annotations"),
                        images=configured(cls.name, cfg, "images", folder=True), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """``SEED-Bench.json`` questions; the first image question's image exists."""
        expected = ("SEED-Bench.json {'questions': [{'question_id', 'answer', 'question_type_id', 'data_id', "
                    "'data_type'}]}")
        path = lay.path(spec, "annotations")
        data = lay.json(path, expected, dict)
        lay.keys(path, data, ("questions",), expected)
        fields = ("question_id", "answer", "question_type_id", "data_id", "data_type")
        questions = lay.records(path, data["questions"], fields, expected, "questions")
        images = lay.folder(lay.path(spec, "images"), "SEED-Bench-image/<data_id>")
        first = next((q for q in questions if q["data_type"] == "image"), None)
        if first is None:
            raise lay.error(path, "malformed (no question of data_type 'image')", expected)
        lay.sample(images / str(first["data_id"]), "SEED-Bench-image/<data_id>", images)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--data-type`` and ``--letter-rule``."""
        parser.add_argument(
            "--data-type",
            choices=("all", "image", "video"),
            default="all",
            help="score only questions of this data_type (default: all)",
        )
        parser.add_argument(
            "--letter-rule",
            choices=("first-char", "exact"),
            default="first-char",
            help="first-char: lmms-eval (default); exact: LLaVA convert_seed_for_submission.py",
        )

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, data_type: str = "all",
        letter_rule: str = "first-char", **opts: Any
    ) -> ScoreResult:
        every = read_seed(annotations)
        chosen = [q for q in every if data_type == "all" or q.data_type == data_type]
        if not chosen:
            raise DataError(f"{annotations}: no questions with data_type {data_type!r}")
        ids = [q.id for q in chosen]
        outputs = align(read_predictions(predictions), ids, predictions, annotations, {q.id for q in every})
        correct = np.array([seed_correct(p, q.answer, letter_rule) for p, q in zip(outputs, chosen)], dtype=float)
        n_boot = n_bootstrap
        metrics, ci95 = means_with_ci95({"accuracy": correct}, scale=100.0, n_boot=n_boot, seed=seed)
        groups: dict[str, np.ndarray] = {}
        for dtype in ("image", "video"):
            groups[f"accuracy_{dtype}"] = np.array([q.data_type == dtype for q in chosen])
        for type_id, name in sorted({(q.type_id, q.type_name) for q in chosen}):
            groups[f"accuracy_{slug(name)}"] = np.array([q.type_id == type_id for q in chosen])
        group_metrics, group_ci = grouped_accuracy(correct, groups, n_boot=n_boot, seed=seed)
        metrics.update(group_metrics)
        ci95.update(group_ci)
        rows = [
            {
                "id": q.id,
                "question_type_id": q.type_id,
                "data_type": q.data_type,
                "answer": q.answer,
                "prediction": p,
                "correct": int(c),
            }
            for q, p, c in zip(chosen, outputs, correct)
        ]
        return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95)
