"""MA5K (Shi et al., 2021): image editing scored with the MagicBrush rules."""

from __future__ import annotations

from typing import Any

from evaluation.registry import register
from evaluation.suite._editing import FORMATS, EditingBenchmark


@register("ma5k")
class Ma5k(EditingBenchmark):
    """MA5K (Shi et al., 2021), scored with the MagicBrush rules."""

    help = "MA5K image editing: L1, L2, CLIP-I, DINO, CLIP-T, LPIPS (same scorer as magicbrush).\n" + FORMATS

    pair_keys = ("input", "output", "request")
    pair_file = "MA5K test_sess_1.json"

    @staticmethod
    def instruction(record: dict[str, Any]) -> Any:
        """MA5K: the record's ``request``."""
        return record.get("request")
