"""Referring segmentation, cIoU and gIoU in percent (LISA's definitions): the base of :mod:`evaluation.suite.refcoco`,
:mod:`evaluation.suite.refcoco_plus`, :mod:`evaluation.suite.refcocog` and :mod:`evaluation.suite.reasonseg`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from evaluation.metrics.segmentation import ciou, ciou_giou_ci95, giou, intersection_union, sample_iou
from evaluation.readers.segmentation import (
    decode,
    pair_masks,
    read_reasonseg_folder,
    read_refer_release,
)
from evaluation.registry import Benchmark, Metric, ScoreResult

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

FORMATS = """
predictions (--predictions): JSON list (or .jsonl), one binary mask per sample, COCO RLE at the reference's size:
    [{"id": 12345, "segmentation": {"size": [h, w], "counts": "<compressed RLE>" or [run, lengths, ...]}}, ...]
references (--annotations), one of:
  * the same format, optionally with "ignore": <RLE> (pixels excluded from both masks, ReasonSeg's 255 label);
  * a RefCOCO/RefCOCO+/RefCOCOg release folder (instances.json + refs(unc|umd|google).p): every sentence of every
    ref in --split is one sample, id = its sent_id, target = the ref's annotation (polygons united into one mask);
  * a ReasonSeg split folder (<name>.jpg + <name>.json, labelme shapes): one sample per image, id = <name>, masks
    drawn with OpenCV as LISA's get_mask_from_json ("ignore" shapes -> ignore, "flag" shapes skipped).
Every reference id needs exactly one prediction of the same size; missing, duplicate and extra ids are errors.

Metrics (dvlab-research/LISA train_ds.py validate + utils.intersectionAndUnionGPU, foreground class), in percent:
  per sample I = |pred & target|, U = |pred| + |target| - I (ignore pixels removed from both);
  IoU = I / (U + 1e-5), and 1.0 when U = 0 (empty target and empty prediction);
  ciou = 100 * sum(I) / (sum(U) + 1e-10);  giou = 100 * sum(IoU) / (N + 1e-5) (LISA's AverageMeter.all_reduce).
An empty prediction on a non-empty target has IoU 0; an empty target with an empty prediction counts 1 in gIoU and
adds nothing to the cIoU sums. Where polygons of one annotation overlap, LISA's sum-of-polygons target (value 2)
drops those pixels from the target; the union used here keeps them (rare).
Per-sample rows: {"id", "intersection", "union", "iou": 100 * IoU}. ci95 (default 1000 resamples over samples):
percentile bootstrap; ciou as the ratio of the resampled sums, giou as the resampled IoU sum / (N + 1e-5)."""


class ReferBenchmark(Benchmark):
    """cIoU / gIoU of predicted binary masks against referring-expression targets; a subclass registers a dataset
    with its ``help``."""
    metrics = (
        Metric("ciou", higher_is_better=True, help="cumulative IoU, sum(I) / sum(U), percent"),
        Metric("giou", higher_is_better=True, help="mean per-sample IoU (empty/empty = 1), percent"),
    )
    default_split_by: ClassVar[str] = "unc"
    default_split: ClassVar[str] = "val"

    missing_annotations = "the reference masks"

    output = "mask"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--split`` and ``--split-by`` (release folders only)."""
        parser.add_argument(
            "--split", default=self.default_split, help=f"split of a release folder (default {self.default_split})"
        )
        parser.add_argument(
            "--split-by",
            default=self.default_split_by,
            help=f"refs file of a release folder: refs(<split-by>).p (default {self.default_split_by})",
        )

    def reference_rows(self, folder: Path, split: str, split_by: str) -> list[dict[str, Any]]:
        """Reference rows of a release folder (a RefCOCO-style folder unless it holds ReasonSeg ``.json`` files)."""
        if (folder / "instances.json").is_file() or not any(folder.glob("*.json")):
            return read_refer_release(folder, split, split_by)
        return read_reasonseg_folder(folder)

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, split: str | None = None,
        split_by: str | None = None, **opts: Any
    ) -> ScoreResult:
        annotations = Path(annotations)
        rows = None
        if annotations.is_dir():
            rows = self.reference_rows(annotations, split or self.default_split, split_by or self.default_split_by)
        pairs = pair_masks(predictions, annotations, rows)
        inter = np.zeros(len(pairs), dtype=np.int64)
        union = np.zeros(len(pairs), dtype=np.int64)
        for k, pair in enumerate(pairs):
            ignore = None if pair.ignore is None else decode(pair.ignore)
            inter[k], union[k] = intersection_union(decode(pair.prediction), decode(pair.reference), ignore)
        ious = sample_iou(inter, union)
        metrics = {"ciou": 100.0 * ciou(inter, union), "giou": 100.0 * giou(ious)}
        n_boot = n_bootstrap
        ci95: dict[str, tuple[float, float]] = {}
        if n_boot > 0:
            for name, (lo, hi) in ciou_giou_ci95(inter, union, n_boot=n_boot, seed=seed).items():
                ci95[name] = (100.0 * lo, 100.0 * hi)
        out_rows = [
            {"id": p.id, "intersection": int(i), "union": int(u), "iou": 100.0 * float(v)}
            for p, i, u, v in zip(pairs, inter, union, ious)
        ]
        return ScoreResult(metrics=metrics, n=len(out_rows), rows=out_rows, ci95=ci95)


class PaperReferBenchmark(ReferBenchmark):
    """The referring-segmentation benchmarks the MLLM answers (SeTok Table 4): RefCOCO+, RefCOCOg and ReasonSeg."""

    headline = "ciou"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """The REFER release folder (refs + instances: annotations), COCO ``train2014/`` (images), options.split,
        split_by."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.segmentation import ReferTask

        return ReferTask(cls.name, annotations=configured(cls.name, cfg, "annotations", folder=True),
                         images=configured(cls.name, cfg, "images", folder=True), split=cfg.options.get("split"),
                         split_by=cfg.options.get("split_by"), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """The REFER release: ``refs(<split_by>).p`` has refs of the split; the first ref's COCO image exists."""
        from setok.data.dataset_checks import refer_release

        options = spec.get("options", {})
        refer_release(lay, lay.path(spec, "annotations"), lay.path(spec, "images"),
                      str(options.get("split", cls.default_split)), str(options.get("split_by", cls.default_split_by)))
