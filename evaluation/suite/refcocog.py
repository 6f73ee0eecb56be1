"""RefCOCOg (UMD split, refs(umd).p): referring segmentation, cIoU and gIoU."""

from __future__ import annotations

from evaluation.registry import register
from evaluation.suite._refer import FORMATS, PaperReferBenchmark


@register("refcocog")
class RefCocogBenchmark(PaperReferBenchmark):
    """RefCOCOg (UMD split, refs(umd).p, by default); same scorer as ``refcoco``."""

    help = "RefCOCOg referring segmentation: cIoU and gIoU (percent, LISA's definitions; --split-by umd).\n" + FORMATS
    default_split_by = "umd"
