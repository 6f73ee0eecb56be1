"""RefCOCO+ (UNC split, refs(unc).p): referring segmentation, cIoU and gIoU."""

from __future__ import annotations

from evaluation.registry import register
from evaluation.suite._refer import FORMATS, PaperReferBenchmark


@register("refcoco+")
class RefCocoPlusBenchmark(PaperReferBenchmark):
    """RefCOCO+ (refs(unc).p); same scorer as ``refcoco``."""

    help = "RefCOCO+ referring segmentation: cIoU and gIoU (percent, LISA's definitions).\n" + FORMATS
