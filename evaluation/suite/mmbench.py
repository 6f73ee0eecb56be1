"""MMBench with circular evaluation and VLMEvalKit's rule-based answer matching (no GPT grader)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.bootstrap import means_with_ci95
from evaluation.metrics.multiple_choice import circular_correct, circular_group, grouped_accuracy, mmbench_infer, slug
from evaluation.readers.multiple_choice import align, read_mmbench, read_predictions
from evaluation.registry import Benchmark, Metric, ScoreResult, register

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

L2_CATEGORIES = (  # VLMEvalKit MMB_abbrs keys
    "coarse_perception",
    "finegrained_perception (instance-level)",
    "finegrained_perception (cross-instance)",
    "logic_reasoning",
    "relation_reasoning",
    "attribute_reasoning",
)


@register("mmbench")
class MMBench(Benchmark):
    """MMBench circular accuracy; GPT-based choice extraction replaced by VLMEvalKit's exact-matching rules."""

    help = """MMBench multiple choice with circular evaluation: accuracy (percent), overall and per category.

references (--annotations): an official MMBench TSV (MMBench_DEV_EN.tsv, the legacy files too), columns
    index, question, hint, A, B, C, D, answer, category, l2-category, (image, source, split, comment, ...)
  It holds every circular-shifted copy of a question as its own row, index = main index + k * 1000000, with the
  options rotated and its own answer letter. Read like VLMEvalKit (pandas, default missing values: an empty cell,
  "nan" or "None" is no option); the image column is skipped.
predictions (--predictions): JSON lines {"index": 241, "prediction": "B"}, one per TSV row (every circular copy
  included); "question_id" may stand for "index" and "text" for "prediction" (LLaVA answer files).

Every TSV row needs exactly one prediction; missing, duplicate and unknown indices are errors.
Matching (VLMEvalKit vlmeval/utils/matching_util.py can_infer, pinned at 590f052a): replace .()[],:;!*#{} by
spaces and split; if exactly one option letter is a token and it is among the last 4 tokens, that letter (so "B",
"(B)", "Answer: B." give B, "A. The cat is black and asleep" gives no letter); else, for answers at most twice as
long as all option texts together, the one option whose text the answer contains (case-insensitive). Refusals
("Cannot determine the answer", ...) or a lone "Z" are the non-option Z. THE GPT MATCHING STAGE IS NOT RUN: an
unmatched answer is wrong, as VLMEvalKit's exact_matching judge does; expect numbers at or below GPT-graded ones
for chatty models. Circular evaluation (mcq_circular_eval): a question (index < 1e6) is right only if every row with
the same index % 1e6 is matched to its own answer.
metrics: accuracy; accuracy_<category> and accuracy_l2_<l2-category> (lowercased, non-alphanumerics -> "_") of the
main rows' categories, as VLMEvalKit report_acc; the release's l2-categories give accuracy_l2_coarse_perception,
accuracy_l2_finegrained_perception_instance_level, accuracy_l2_finegrained_perception_cross_instance,
accuracy_l2_logic_reasoning, accuracy_l2_relation_reasoning, accuracy_l2_attribute_reasoning.
Per-sample rows, one per question: {"id": index, "category", "l2_category", "answers": [...], "predictions": [...],
"matched": [letter|null, ...], "correct": 0|1}, variants in index order. ci95: percentile bootstrap over questions
(default 1000 resamples), within the group for group metrics."""
    metrics = (Metric("accuracy", higher_is_better=True, help="circular accuracy over questions, percent"),) + tuple(
        Metric(f"accuracy_l2_{slug(c)}", higher_is_better=True, help=f"circular accuracy on {c}, percent")
        for c in L2_CATEGORIES
    )

    missing_annotations = "the MMBench TSV"

    headline = "accuracy"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """``MMBench_DEV_EN.tsv`` (annotations, base64 images)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.multiple_choice import MmbenchTask

        return MmbenchTask(cls.name, annotations=configured(cls.name, cfg, "annotations"), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """The MMBench TSV header names the question, option, answer and image columns."""
        from setok.data.layout import first_line

        expected = "MMBench TSV with columns index, question, A, B, ..., answer, image (base64)"
        path = lay.file(lay.path(spec, "annotations"), expected)
        header = [c if len(c) == 1 and c.isupper() else c.lower() for c in first_line(lay, path, expected).split("\t")]
        missing = [c for c in ("index", "question", "A", "B", "answer", "image") if c not in header]
        if missing:
            raise lay.error(path, f"malformed (no column {missing[0]!r})", expected)

    def _score(self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, **opts: Any) -> ScoreResult:
        table = sorted(read_mmbench(annotations), key=lambda r: r.index)
        outputs = align(read_predictions(predictions), [str(r.index) for r in table], predictions, annotations)
        groups: dict[int, list[int]] = {}
        for k, row in enumerate(table):
            groups.setdefault(circular_group(row.index), []).append(k)
        rows: list[dict[str, Any]] = []
        for main, members in groups.items():
            head = table[members[0]]  # index order: the main row (index < 1e6) comes first
            answers = [table[k].answer for k in members]
            matched = [mmbench_infer(outputs[k], table[k].choices) for k in members]
            rows.append(
                {
                    "id": main,
                    "category": head.category,
                    "l2_category": head.l2_category,
                    "answers": answers,
                    "predictions": [outputs[k] for k in members],
                    "matched": matched,
                    "correct": int(circular_correct(matched, answers)),
                }
            )
        rows.sort(key=lambda r: r["id"])
        correct = np.array([r["correct"] for r in rows], dtype=float)
        n_boot = n_bootstrap
        metrics, ci95 = means_with_ci95({"accuracy": correct}, scale=100.0, n_boot=n_boot, seed=seed)
        masks: dict[str, np.ndarray] = {}
        for field, prefix in (("l2_category", "accuracy_l2_"), ("category", "accuracy_")):
            for name in sorted({r[field] for r in rows if r[field] is not None}):
                masks[prefix + slug(name)] = np.array([r[field] == name for r in rows])
        group_metrics, group_ci = grouped_accuracy(correct, masks, n_boot=n_boot, seed=seed)
        metrics.update(group_metrics)
        ci95.update(group_ci)
        return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95)
