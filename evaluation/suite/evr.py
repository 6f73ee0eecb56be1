"""EVR (Tan et al., 2019): image editing scored with the MagicBrush rules."""

from __future__ import annotations

from typing import Any

from evaluation.registry import register
from evaluation.suite._editing import FORMATS, EditingBenchmark


@register("evr")
class Evr(EditingBenchmark):
    """EVR (Tan et al., 2019), scored with the MagicBrush rules."""

    help = "EVR image editing: L1, L2, CLIP-I, DINO, CLIP-T, LPIPS (same scorer as magicbrush).\n" + FORMATS

    pair_keys = ("img0", "img1", "sents")
    pair_file = "EVR test.json"

    @staticmethod
    def instruction(record: dict[str, Any]) -> Any:
        """EVR: the first of the record's ``sents`` (``None`` when there is none)."""
        sents = record.get("sents")
        return sents[0] if isinstance(sents, list) and sents else None
