"""Flickr30K captioning (SeTok Table 1): CIDEr-D and BLEU-4 with the cider scorer, Karpathy test split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evaluation.registry import register
from evaluation.suite.cider import FORMATS, CiderBenchmark

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout


@register("flickr30k")
class Flickr30kBenchmark(CiderBenchmark):
    """Flickr30K captioning (Karpathy test split by default); same scorer as ``cider``."""

    help = (
        "Flickr30K captioning: CIDEr-D and BLEU-4 (x100); the cider scorer on Flickr30K references "
        "(dataset_flickr30k.json, --split test, or its COCO-format conversion).\n" + FORMATS
    )

    headline = "cider"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """Karpathy ``dataset_flickr30k.json`` (annotations), ``flickr30k-images/`` (images), options.split (default
        test)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.caption import CaptionTask

        return CaptionTask(cls.name, annotations=configured(cls.name, cfg, "annotations"),
                           images=configured(cls.name, cfg, "images", folder=True),
                           split=cfg.options.get("split", "test"), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """COCO captions or a Karpathy split file; the first image of the scored split exists."""
        expected = "a Karpathy split file {'images': [{'filename', 'split', 'sentences'}]} or COCO captions JSON"
        path = lay.path(spec, "annotations")
        data = lay.json(path, expected, dict)
        lay.keys(path, data, ("images",), expected)
        if "annotations" in data:
            lay.records(path, data["images"], ("id", "file_name"), expected, "images")
            lay.records(path, data["annotations"], ("image_id", "caption"), expected, "annotations")
            files = [str(data["images"][0]["file_name"])]
        else:
            images = lay.records(path, data["images"], ("filename", "split", "sentences"), expected, "images")
            split = spec.get("options", {}).get("split", "test")
            files = [str(im["filename"]) for im in images if im["split"] == split][:1]
            if not files:
                raise lay.error(path, f"malformed (no image in split {split!r})", expected)
        folder = lay.folder(lay.path(spec, "images"), f"the images of {path.name}")
        lay.sample(folder / files[0], f"the images of {path.name}", folder)
