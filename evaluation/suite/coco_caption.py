"""COCO Captions: CIDEr-D and BLEU-4 with the cider scorer on the COCO references."""

from __future__ import annotations

from evaluation.registry import register
from evaluation.suite.cider import FORMATS, CiderBenchmark


@register("coco_caption")
class CocoCaptionBenchmark(CiderBenchmark):
    """COCO Captions (e.g. captions_val2014.json or Karpathy test); same scorer as ``cider``."""

    help = (
        "COCO Captions: CIDEr-D and BLEU-4 (x100); the cider scorer on COCO references "
        "(captions_val2014.json, or dataset_coco.json --split test).\n" + FORMATS
    )
