"""MagicBrush (Zhang et al., NeurIPS 2023): its test sessions, scored like its ``evaluation/image_eval.py``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evaluation.registry import register
from evaluation.suite._editing import FORMATS, EditingBenchmark

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout


@register("magicbrush")
class MagicBrush(EditingBenchmark):
    """MagicBrush test set (Zhang et al., NeurIPS 2023)."""

    help = "MagicBrush image editing: L1, L2, CLIP-I, DINO, CLIP-T, LPIPS (as MagicBrush image_eval.py).\n" + FORMATS

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """The ``targets/`` folder (annotations), ``edit_sessions.json`` (inputs), ``images/`` (session folders)."""
        from evaluation.tasks.editing import MagicBrushTask

        return MagicBrushTask(cls.name, **cls.edit_paths(cfg))

    @classmethod
    def check_inputs(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """``edit_sessions.json`` with the first session's images, and the captions when configured."""
        from setok.data.dataset_checks import magicbrush_sessions

        magicbrush_sessions(lay, lay.path(spec, "inputs"), lay.path(spec, "images"))
        captions = lay.optional(spec, "captions")
        if captions is not None:
            lay.json(captions, "global_descriptions.json {'<session>': {'<file>': 'caption'}}", dict)
