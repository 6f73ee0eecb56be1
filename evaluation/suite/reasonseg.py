"""ReasonSeg (LISA): reasoning segmentation, cIoU and gIoU."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.readers.segmentation import read_reasonseg_folder
from evaluation.registry import register
from evaluation.suite._refer import FORMATS, PaperReferBenchmark

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout


@register("reasonseg")
class ReasonSegBenchmark(PaperReferBenchmark):
    """ReasonSeg (LISA): a split folder of images + labelme JSON, or a mask list; same scorer as ``refcoco``."""

    help = "ReasonSeg reasoning segmentation: cIoU and gIoU (percent, LISA's definitions).\n" + FORMATS

    headline = "giou"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """The split folder (``val/``: annotations; its images unless ``images`` is set)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.segmentation import ReasonSegTask

        images = None if cfg.images is None else configured(cls.name, cfg, "images", folder=True)
        return ReasonSegTask(cls.name, annotations=configured(cls.name, cfg, "annotations", folder=True), images=images,
                             split=cfg.options.get("split"), split_by=cfg.options.get("split_by"), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """A ReasonSeg split folder: its first ``.jpg`` has its labelme ``.json`` beside it."""
        from setok.data.dataset_checks import first_jpg

        expected = "a ReasonSeg split folder of <name>.jpg + <name>.json (labelme shapes)"
        image = first_jpg(lay, lay.folder(lay.path(spec, "annotations"), expected), expected)
        lay.json(image.with_suffix(".json"), expected, dict, named=False)

    def reference_rows(self, folder: Path, split: str, split_by: str) -> list[dict[str, Any]]:
        """A ReasonSeg split folder (``--split`` and ``--split-by`` do not apply)."""
        return read_reasonseg_folder(folder)
