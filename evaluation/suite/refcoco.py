"""RefCOCO referring segmentation: the scorer alone (the paper's benchmarks are RefCOCO+, RefCOCOg, ReasonSeg)."""

from __future__ import annotations

from evaluation.registry import register
from evaluation.suite._refer import FORMATS, ReferBenchmark


@register("refcoco")
class RefCocoBenchmark(ReferBenchmark):
    """cIoU / gIoU of predicted binary masks against RefCOCO targets."""

    help = "RefCOCO referring segmentation: cIoU and gIoU (percent, LISA's definitions).\n" + FORMATS
