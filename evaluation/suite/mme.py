"""MME: perception and cognition scores (points) from per-subtask acc + acc+."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.bootstrap import bootstrap_statistic, percentile_interval
from evaluation.metrics.mme import COGNITION, GROUPS, PERCEPTION, SUBTASKS, image_points, parse_mme_answer
from evaluation.provenance import Provenance, Subset
from evaluation.readers.mme import read_mme
from evaluation.registry import Benchmark, Metric, ScoreResult, register

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout


def subtask_seed(seed: int, k: int) -> int:
    """Independent, deterministic bootstrap seed of subtask ``k`` (subtasks are resampled separately)."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


@register("mme")
class Mme(Benchmark):
    """MME scored by the official ``eval_tool/calculation.py`` rules."""

    help = """MME yes/no benchmark: perception (0-2000) and cognition (0-800) scores in points, and one per subtask.

predictions (--predictions): a folder in the official eval_tool layout, one <subtask>.txt per subtask:
    existence count position color posters celebrity scene landmark artwork OCR (perception)
    commonsense_reasoning numerical_calculation text_translation code_reasoning (cognition)
  one line per question, tab-separated:  image<TAB>question<TAB>gt<TAB>prediction
  (eval_tool/Your_Results/<subtask>.txt with the answer appended, as LLaVA's convert_answer_to_mme.py writes).
  gt is Yes/No (any case). Every image must have exactly two questions. Missing subtask files are an error naming
  them, unless --subtasks restricts the set.
references (--annotations, optional): a folder of the eval_tool/Your_Results templates, <subtask>.txt with lines
  image<TAB>question<TAB>gt; when given, each results file must answer exactly those questions with the same gt.

Parsing (official calculation.py): the prediction, lowercased, is "yes"/"no" if it equals that word, else "yes" if
its first 4 characters contain "yes", else "no" if they contain "no", else "other" (always wrong; nothing is
stripped, so "  yes" and "y" are "other" -- lmms-eval would accept both). Per subtask: acc = % questions right,
acc+ = % images with both questions right, score = acc + acc+ (max 200). perception / cognition = sum of the
scores of their subtasks that are scored (with --subtasks, a group none of whose subtasks is scored is omitted);
total = perception + cognition when both are scored (the "MME" column of tables that print MME and MME-P).
Per-sample rows, one per image: {"id": "<subtask>/<image>", "subtask", "image", "gt": [..], "parsed": [..],
"correct": 0|1|2, "both": 0|1, "points": 50*correct + 100*both}; a subtask score is the mean of its points.
ci95: percentile bootstrap resampling images (question pairs) within each subtask independently (default 1000
resamples); perception/cognition intervals sum the same subtask replicates.
With --subtasks naming fewer than all 14, the result's provenance records the subset ("k of 14 subtasks") and
reports mark its values."""
    metrics = (
        Metric("perception", higher_is_better=True, help="sum of the 10 perception subtask scores, points (max 2000)"),
        Metric("cognition", higher_is_better=True, help="sum of the 4 cognition subtask scores, points (max 800)"),
        Metric("total", higher_is_better=True, help="perception + cognition, points (max 2800)"),
    ) + tuple(Metric(s, higher_is_better=True, help=f"{s}: acc + acc+, points (max 200)") for s in SUBTASKS)
    needs_annotations = False

    headline = "perception"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """``Your_Results/`` templates (annotations), ``MME_Benchmark_release_version/`` (images), options.subtasks."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.mme import MmeTask

        return MmeTask(cls.name, templates=configured(cls.name, cfg, "annotations", folder=True),
                       images=configured(cls.name, cfg, "images", folder=True), subtasks=cfg.options.get("subtasks"),
                       limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """Every subtask template ``<subtask>.txt`` of ``Your_Results`` is there; its first image is in the release."""
        from setok.data.layout import first_line

        expected = "eval_tool/Your_Results with <subtask>.txt lines 'image<TAB>question<TAB>gt'"
        folder = lay.folder(lay.path(spec, "annotations"), expected)
        images = lay.folder(lay.path(spec, "images"), "MME_Benchmark_release_version/<subtask>/")
        chosen = spec.get("options", {}).get("subtasks") or SUBTASKS
        for subtask in chosen.split(",") if isinstance(chosen, str) else chosen:
            path = lay.file(folder / f"{subtask}.txt", expected, place=folder)
            fields = first_line(lay, path, expected).split("\t")
            if len(fields) not in (3, 4):
                raise lay.error(path, f"malformed (line 1 has {len(fields)} tab-separated fields, not 3)", expected)
            found = [p for p in (images / subtask / "images" / fields[0], images / subtask / fields[0],
                                 images / fields[0]) if p.is_file()]
            lay.sample(found[0] if found else images / subtask / fields[0], "MME release images", images)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--subtasks``."""
        parser.add_argument(
            "--subtasks",
            nargs="+",
            choices=SUBTASKS,
            default=None,
            metavar="SUBTASK",
            help="score only these subtasks (default: all 14)",
        )

    def _score(
        self, predictions: Path, annotations: Path | None, *, n_bootstrap: int, seed: int,
        subtasks: list[str] | None = None, **opts: Any
    ) -> ScoreResult:
        chosen = [s for s in SUBTASKS if subtasks is None or s in subtasks]
        data = read_mme(predictions, chosen, annotations)
        n_boot = n_bootstrap
        metrics: dict[str, float] = {}
        ci95: dict[str, tuple[float, float]] = {}
        reps: dict[str, np.ndarray] = {}
        rows: list[dict[str, Any]] = []
        for sub in data:
            parsed = [[parse_mme_answer(q.prediction) for q in pair] for pair in sub.pairs]
            gts = [[q.gt.lower() for q in pair] for pair in sub.pairs]
            correct = np.array([[p == g for p, g in zip(ps, gs)] for ps, gs in zip(parsed, gts)], dtype=bool)
            points = image_points(correct)
            metrics[sub.name] = float(points.mean())
            rows.extend(
                {
                    "id": f"{sub.name}/{img}",
                    "subtask": sub.name,
                    "image": img,
                    "gt": gs,
                    "parsed": ps,
                    "correct": int(c.sum()),
                    "both": int(c.all()),
                    "points": float(pt),
                }
                for img, gs, ps, c, pt in zip(sub.images, gts, parsed, correct, points)
            )
            if n_boot:
                reps[sub.name] = bootstrap_statistic(
                    len(points),
                    lambda idx, pts=points: pts[idx].mean(axis=1),
                    n_boot=n_boot,
                    seed=subtask_seed(seed, SUBTASKS.index(sub.name)),
                )
                ci95[sub.name] = percentile_interval(reps[sub.name])
        for group, members in GROUPS.items():
            scored = [s for s in members if s in metrics]
            if not scored:
                continue
            metrics[group] = float(sum(metrics[s] for s in scored))
            if n_boot:
                ci95[group] = percentile_interval(np.sum([reps[s] for s in scored], axis=0))
        if all(g in metrics for g in GROUPS):
            metrics["total"] = metrics["perception"] + metrics["cognition"]
            if n_boot:
                ci95["total"] = percentile_interval(np.sum([reps[s] for s in SUBTASKS if s in reps], axis=0))
        ordered = {m: metrics[m] for m in ("perception", "cognition", "total", *PERCEPTION, *COGNITION) if m in metrics}
        partial = len(chosen) < len(SUBTASKS)  # perception / cognition then sum fewer subtasks than MME's
        provenance = Provenance(subset=[Subset(len(chosen), len(SUBTASKS), "subtasks", "subtasks option")]
                                if partial else [])
        return ScoreResult(metrics=ordered, n=len(rows), rows=rows, ci95=ci95, provenance=provenance)
