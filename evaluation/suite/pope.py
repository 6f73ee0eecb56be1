"""POPE object-hallucination benchmark: accuracy, precision, recall, F1 and yes-ratio per split and over splits."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.bootstrap import bootstrap_counts, percentile_interval
from evaluation.metrics.pope import (
    CELLS,
    METRICS,
    confusion_cells,
    parse_pope_answer,
    pope_metrics,
    pope_metrics_from_cells,
)
from evaluation.readers.pope import OFFICIAL_SPLITS, QUESTION_FIELDS, is_split_file, read_pope
from evaluation.registry import Benchmark, Metric, ScoreResult, register
from setok.io import read_jsonl

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

_UNITS = {
    "accuracy": "accuracy",
    "precision": "precision of 'yes'",
    "recall": "recall of 'yes'",
    "f1": "F1 of 'yes'",
    "yes_ratio": "share of answers parsed as 'yes' (50 is unbiased on the balanced splits; lower = fewer 'yes')",
}


def split_seed(seed: int, k: int) -> int:
    """Independent, deterministic bootstrap seed of split ``k`` (splits are resampled separately)."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


@register("pope")
class Pope(Benchmark):
    """POPE scored by the official ``evaluate.py`` rules, one block of metrics per split."""

    help = """POPE yes/no object hallucination: accuracy, precision, recall, F1, yes-ratio (percent), per split.

references (--annotations): the official POPE split files (AoiDragon/POPE output/coco/), JSON lines
    {"question_id": 1, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a snowboard in the image?",
     "label": "yes"}
  label is "yes" or "no". Give ONE of:
    a folder: every *_pope_<split>.json(l) in it is a split (coco_pope_adversarial.json, coco_pope_popular.json,
      coco_pope_random.json -> splits adversarial, popular, random);
    one file, or --annotations repeated once per file: the split is the file stem after its last "_".
predictions (--predictions): JSON lines {"question_id": 1, "text": "Yes, there is a snowboard."}, as
    LLaVA writes them. Question ids restart at 1 in every official split, so with several splits give either
    a folder holding <split>.jsonl per split (adversarial.jsonl, popular.jsonl, random.jsonl), or one file whose
    rows also carry "category": "<split>" (LLaVA's llava_pope_test.jsonl field). One split: one plain file.

Every reference question needs exactly one prediction in its split: missing, duplicate and extra ids are errors.
Answer parsing (official evaluate.py; LLaVA eval_pope.py is identical): keep the text before the first ".",
delete ",", split on " "; "no" iff a word is exactly "No", "not" or "no", otherwise "yes". So an answer that says
neither ("I cannot tell") counts as "yes", as do "NO" and "No!"; "I am not sure" counts as "no". Positive class "yes".
yes_ratio is the share of the MODEL's answers parsed as "yes" (lmms-eval's pope_yes_ratio instead reports the
share of "yes" REFERENCES, always 50 on the balanced official splits). An empty precision/recall denominator gives 0.

metrics: <m>_<split> for m in accuracy, precision, recall, f1, yes_ratio and every split scored, and <m> = the
unweighted mean of <m>_<split> over the splits (f1 = mean F1 over adversarial/popular/random, the number LLaVA-style
tables report as "POPE"). With one split, <m> equals <m>_<split>. The official splits give accuracy_adversarial,
precision_adversarial, recall_adversarial, f1_adversarial, yes_ratio_adversarial, accuracy_popular,
precision_popular, recall_popular, f1_popular, yes_ratio_popular, accuracy_random, precision_random, recall_random,
f1_random, yes_ratio_random.
Per-sample rows: {"split", "id", "label", "parsed", "correct": 0|1}. ci95: percentile bootstrap resampling
questions within each split independently (default 1000 resamples, drawn as multinomial counts of the four
confusion cells, which is the same distribution: evaluation.bootstrap); the mean-over-splits intervals use the
same replicates."""
    metrics = tuple(
        Metric(m, higher_is_better=(m != "yes_ratio"), help=f"{_UNITS[m]}, percent, mean over splits")
        for m in METRICS
    ) + tuple(
        Metric(f"{m}_{s}", higher_is_better=(m != "yes_ratio"), help=f"{_UNITS[m]} on the {s} split, percent")
        for s in OFFICIAL_SPLITS
        for m in METRICS
    )

    missing_annotations = "the official split files"

    headline = "f1"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """A folder of ``coco_pope_<split>.json`` (annotations), COCO ``val2014/`` (images)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.pope import PopeTask

        return PopeTask(cls.name, annotations=configured(cls.name, cfg, "annotations"),
                        images=configured(cls.name, cfg, "images", folder=True), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """Each ``*_pope_<split>.json`` has question rows; each split's first image exists."""
        expected = "a folder of coco_pope_<split>.json JSON lines {'question_id', 'image', 'text', 'label'}"
        given = lay.path(spec, "annotations")
        if given.is_dir():
            files = sorted(p for p in lay.folder(given, expected).iterdir() if is_split_file(p))
            if not files:
                raise lay.error(given, "has no *_pope_<split>.json files", expected)
        else:
            files = [lay.file(given, expected)]
        images = lay.folder(lay.path(spec, "images"), "COCO val2014 images")
        for path in files:
            lay.file(path, expected)
            with lay.reading(path, expected):
                rows = read_jsonl(path)
            lay.records(path, rows, (*QUESTION_FIELDS, "label"), expected, "rows")
            lay.sample(images / str(rows[0]["image"]), "COCO val2014 images", images)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Let ``--annotations`` be given several times (one reference file per split).

        The common parser defines ``--annotations`` once; an argument group with argparse's documented
        ``conflict_handler="resolve"`` replaces it by an ``append`` option, so ``score`` receives a list of paths.
        """
        group = parser.add_argument_group("references", conflict_handler="resolve")
        group.add_argument(
            "--annotations",
            action="append",
            type=Path,
            required=True,
            metavar="PATH",
            help="a folder of *_pope_<split>.json files, or one split file (repeat once per split file)",
        )

    def _score(
        self, predictions: Path, annotations: Path | list[Path] | None, *, n_bootstrap: int, seed: int, **opts: Any
    ) -> ScoreResult:
        splits = read_pope(predictions, annotations)
        n_boot = n_bootstrap
        metrics: dict[str, float] = {}
        ci95: dict[str, tuple[float, float]] = {}
        rows: list[dict[str, Any]] = []
        per_split_reps: list[np.ndarray] = []
        for k, split in enumerate(splits):
            parse = {a: parse_pope_answer(a) for a in dict.fromkeys(split.answers)}  # once per distinct answer
            parsed = list(map(parse.__getitem__, split.answers))
            pred_yes = np.array([p == "yes" for p in parsed], dtype=bool)
            label_yes = np.array([lab == "yes" for lab in split.labels], dtype=bool)
            values = pope_metrics(pred_yes, label_yes)
            metrics.update({f"{m}_{split.name}": values[m] for m in METRICS})
            rows.extend(
                {"split": split.name, "id": i, "label": lab, "parsed": p, "correct": int(lab == p)}
                for i, lab, p in zip(split.ids, split.labels, parsed)
            )
            if n_boot:  # the metrics depend on a resample only through its 4 confusion counts: resample those
                cells = np.bincount(confusion_cells(pred_yes, label_yes), minlength=len(CELLS))
                reps = bootstrap_counts(
                    cells,
                    lambda drawn: np.stack(list(pope_metrics_from_cells(drawn).values()), axis=1),
                    n_boot=n_boot,
                    seed=split_seed(seed, k),
                )
                per_split_reps.append(reps)
                ci95.update({f"{m}_{split.name}": percentile_interval(reps[:, j]) for j, m in enumerate(METRICS)})
        for m in METRICS:
            metrics[m] = float(np.mean([metrics[f"{m}_{s.name}"] for s in splits]))
        if n_boot:
            mean_reps = np.mean(per_split_reps, axis=0)
            ci95.update({m: percentile_interval(mean_reps[:, j]) for j, m in enumerate(METRICS)})
        return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95)
