"""MMMU: accuracy overall, per subject and per discipline, with the official response parsing."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.bootstrap import means_with_ci95
from evaluation.metrics.multiple_choice import (
    MMMU_DOMAINS,
    grouped_accuracy,
    mmmu_choice_correct,
    mmmu_open_correct,
    mmmu_parse_choice,
    mmmu_parse_open,
    slug,
)
from evaluation.readers.multiple_choice import align, read_mmmu, read_predictions
from evaluation.registry import Benchmark, Metric, ScoreResult, register
from setok.io import read_jsonl

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout


def _json_safe(parsed: Any) -> Any:
    """Open-question candidates with NaN/infinity (from responses like "nan") written as strings, for strict JSON."""
    if isinstance(parsed, list):
        return [str(v) if isinstance(v, float) and not math.isfinite(v) else v for v in parsed]
    return parsed


@register("mmmu")
class Mmmu(Benchmark):
    """MMMU scored by MMMU-Benchmark ``eval_utils.py`` (multiple-choice and open questions)."""

    help = """MMMU: accuracy (percent) overall, per subject and per discipline, with the official answer parsing.

references (--annotations): the MMMU validation (or dev) questions as a JSON list or JSON lines, one object per
  question with at least {"id": "validation_Accounting_1", "question_type": "multiple-choice" | "open",
  "options": "['$6', '$7', '$8', '$9']", "answer": "B"} -- the HF MMMU/MMMU fields lmms-eval reads (export them
  without the image columns). options: a list of strings or its Python repr; an open answer: a string, a list of
  accepted answers, or the repr of such a list (the official answer_dict_val.json keeps those as lists).
  The subject is the id between its split prefix and its number (validation_Art_Theory_12 -> Art_Theory).
predictions (--predictions): JSON lines {"id": "validation_Accounting_1", "prediction": "<raw model output>"};
  "question_id" may stand for "id" and "text" for "prediction".

Every reference question needs exactly one prediction; missing, duplicate and unknown ids are errors.
Multiple choice (official parse_multi_choice_response): strip , . ! ? ; : ' from the ends; candidates are the
letters written "(B)", else those written " B ", else (responses of more than 5 words) the options whose text
occurs in the response; the last-occurring candidate wins. No candidate: the official code draws a random letter,
here the question is WRONG (deterministic; expect up to 1/n_options per unparsed question below the official
number). --choice-rule lmms-eval uses lmms-eval's variant ("B " instead of " B ", then "B.").
Open questions (parse_open_response / eval_open): the tail after the last "is ", "so ", "answer ", ... (and "=" in
the last line) of each line, plus every number in it; numbers are rounded to 2 decimals and must equal a gold
number, text must contain a gold text (single characters only as a separate word).
metrics: accuracy (over all questions, = the official instance-level "Overall"); accuracy_<subject> (lowercased:
accuracy_art_theory, ...); accuracy_domain_<discipline> for the six disciplines (accuracy_domain_art_and_design,
accuracy_domain_business, accuracy_domain_science, accuracy_domain_health_and_medicine,
accuracy_domain_humanities_and_social_science, accuracy_domain_tech_and_engineering).
Per-sample rows: {"id", "subject", "question_type", "answer", "prediction", "parsed", "correct"}; "parsed" is the
letter (null if none) or the list of normalised open candidates. ci95: percentile bootstrap over questions
(default 1000 resamples), within the group for group metrics."""
    metrics = (Metric("accuracy", higher_is_better=True, help="accuracy over all questions, percent"),) + tuple(
        Metric(f"accuracy_domain_{slug(d)}", higher_is_better=True, help=f"{d} accuracy, percent")
        for d in MMMU_DOMAINS
    )

    missing_annotations = "the MMMU questions"

    headline = "accuracy"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """The JSON list export (annotations, no image columns), the ``MMMU/`` parquet snapshot (images)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.multiple_choice import MmmuTask

        return MmmuTask(cls.name, annotations=configured(cls.name, cfg, "annotations"),
                        images=configured(cls.name, cfg, "images", folder=True), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """The JSON list export; the first question's ``<Subject>/<split>-*.parquet`` is in the snapshot folder."""
        expected = "a JSON list of MMMU questions [{'id': '<split>_<Subject>_<n>', 'question_type', 'answer'}]"
        path = lay.path(spec, "annotations")
        if path.suffix == ".jsonl":
            lay.file(path, expected)
            with lay.reading(path, expected):
                data = read_jsonl(path)
        else:
            data = lay.json(path, expected, list)
        records = lay.records(path, data, ("id", "question_type", "answer"), expected, "records")
        qid = str(records[0]["id"])
        if qid.count("_") < 2:
            raise lay.error(path, f"malformed (id {qid!r} is not <split>_<Subject>_<n>)", expected)
        split, subject = qid.split("_", 1)[0], qid.split("_", 1)[1].rsplit("_", 1)[0]
        snapshot = lay.folder(lay.path(spec, "images"), "the MMMU/MMMU snapshot: <Subject>/<split>-*.parquet")
        parquet = sorted((snapshot / subject).glob(f"{split}-*.parquet"))
        if not parquet:
            raise lay.error(snapshot / subject / f"{split}-*.parquet", "missing", "the MMMU/MMMU snapshot", snapshot)
        lay.seen(parquet[0])

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--choice-rule``."""
        parser.add_argument(
            "--choice-rule",
            choices=("official", "lmms-eval"),
            default="official",
            help="multiple-choice letter parsing: official MMMU eval_utils (default) or lmms-eval's variant",
        )

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, choice_rule: str = "official",
        **opts: Any
    ) -> ScoreResult:
        refs = read_mmmu(annotations)
        outputs = align(read_predictions(predictions), [q.id for q in refs], predictions, annotations)
        rows: list[dict[str, Any]] = []
        for q, out in zip(refs, outputs):
            if q.question_type == "multiple-choice":
                parsed: Any = mmmu_parse_choice(out, q.options, choice_rule)
                right = mmmu_choice_correct(q.answer, parsed)
            else:
                parsed = mmmu_parse_open(out)
                right = mmmu_open_correct(q.answer, parsed)
            rows.append(
                {
                    "id": q.id,
                    "subject": q.subject,
                    "question_type": q.question_type,
                    "answer": q.answer,
                    "prediction": out,
                    "parsed": _json_safe(parsed),
                    "correct": int(right),
                }
            )
        correct = np.array([r["correct"] for r in rows], dtype=float)
        n_boot = n_bootstrap
        metrics, ci95 = means_with_ci95({"accuracy": correct}, scale=100.0, n_boot=n_boot, seed=seed)
        subjects = np.array([q.subject for q in refs])
        masks = {f"accuracy_domain_{slug(d)}": np.isin(subjects, members) for d, members in MMMU_DOMAINS.items()}
        masks.update({f"accuracy_{slug(s)}": subjects == s for s in sorted(set(subjects.tolist()))})
        group_metrics, group_ci = grouped_accuracy(correct, masks, n_boot=n_boot, seed=seed)
        metrics.update(group_metrics)
        ci95.update(group_ci)
        return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95)
