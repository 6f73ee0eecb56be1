"""COCO-30K text-to-image FID: generated images against COCO reference images or statistics (the ``fid`` engine)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.features.images import list_images
from evaluation.registry import Metric, PathLike, ScoreResult, register
from evaluation.suite.fid import FidBenchmark
from setok.io import DataError

if TYPE_CHECKING:
    from PIL import Image

    from evaluation.features.images import Preprocess
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout


def center_crop_resize(size: int) -> Preprocess:
    """PIL transform: crop the central square (side = the shorter side), then resize to ``size`` x ``size`` bicubic.

    Offsets are ``(w - s) // 2`` and ``(h - s) // 2``. This is the usual COCO-30K preparation of the (non-square)
    COCO references; on square generated images it is a plain resize (a no-op at their own size).
    """
    if size < 1:
        raise ValueError(f"resize must be >= 1, got {size}")

    def apply(image: Image.Image) -> Image.Image:
        from PIL import Image as PILImage

        w, h = image.size
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        square = image.crop((left, top, left + s, top + s))
        return square if s == size else square.resize((size, size), PILImage.BICUBIC)

    return apply


@register("coco_fid")
class CocoFidBenchmark(FidBenchmark):
    """FID of text-to-image samples for COCO captions (COCO-30K) against COCO images or their statistics."""

    help = """COCO-30K text-to-image FID (lower is better): generated images vs COCO reference images/statistics.

--predictions: folder of generated images (one per sampled COCO caption, usually 30,000; any names), or an .npz
  with 'features' / 'mu'+'sigma' (see the fid benchmark).
--annotations: folder of the reference COCO images (e.g. the val2014 images of the sampled captions), or an .npz
  with their 'features' or 'mu'+'sigma' (computed with the same --resize protocol).
Images go through the fid benchmark's engine: uint8 RGB into torch-fidelity's FID Inception-v3 (TF 2015-12-05
weights, offline), which resizes to 299x299 itself; pool3 features; torch-fidelity's Frechet distance.
--resize N first center-crops every folder image to its central square and resizes it to NxN (PIL bicubic), the
usual COCO-30K preparation (e.g. 256 or 512, the generation resolution); without it images enter the Inception as
they are (non-square COCO photos are then stretched by its 299x299 resize). The SeTok paper does not state its
protocol; record the one used. --expect-n N makes a generated-image count other than N an error.
Per-sample rows: {"index", "file", "feature_norm"} per generated image. ci95 only with --bootstrap N (slow)."""
    metrics = (Metric("fid", higher_is_better=False, help="FID of generated vs COCO reference images (raw)"),)

    headline = "fid"

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """The reference image folder or ``.npz`` (annotations), ``captions_val2014.json`` (inputs: the prompts)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.generation import CocoGenerationTask

        return CocoGenerationTask(cls.name, captions=configured(cls.name, cfg, "inputs"),
                                  references=configured(cls.name, cfg, "annotations"), limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """A folder of reference images (or a features .npz) and the COCO captions that prompt the generator."""
        from setok.data.dataset_checks import COCO_CAPTIONS
        from setok.data.layout import first_image

        expected = "the 30K COCO val2014 reference images (or their .npz features)"
        refs = lay.path(spec, "annotations")
        if refs.suffix == ".npz":
            lay.file(refs, expected)
        else:
            image = first_image(lay.folder(refs, expected))
            if image is None:
                raise lay.error(refs, "has no images", expected)
            lay.seen(image)
        path = lay.path(spec, "inputs")
        data = lay.json(path, COCO_CAPTIONS, dict)
        lay.keys(path, data, ("images", "annotations"), COCO_CAPTIONS)
        lay.records(path, data["annotations"], ("image_id", "caption"), COCO_CAPTIONS, "annotations")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the fid options plus ``--resize`` and ``--expect-n``."""
        super().add_arguments(parser)
        parser.add_argument(
            "--resize", type=int, default=None, metavar="N", help="center-crop + bicubic resize to NxN first"
        )
        parser.add_argument(
            "--expect-n", type=int, default=None, metavar="N", help="required number of generated images"
        )

    def preprocess(self, resize: int | None = None, **opts: Any) -> Preprocess | None:
        """Center crop + resize when ``resize`` is given."""
        return None if resize is None else center_crop_resize(resize)

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, device: str | None = None,
        batch_size: int = 32, resize: int | None = None, expect_n: int | None = None, **opts: Any
    ) -> ScoreResult:
        if resize is not None and resize < 1:
            raise DataError(f"{predictions}: --resize must be >= 1, got {resize}")
        if expect_n is not None and Path(predictions).is_dir():  # check before the slow feature extraction
            _check_count(predictions, len(list_images(predictions)), expect_n)
        result = super()._score(
            predictions,
            annotations,
            n_bootstrap=n_bootstrap,
            seed=seed,
            device=device,
            batch_size=batch_size,
            resize=resize,
        )
        if expect_n is not None:
            _check_count(predictions, result.n, expect_n)
        return result


def _check_count(predictions: PathLike, n: int | None, expect_n: int) -> None:
    if n != expect_n:
        raise DataError(f"{predictions}: {n} generated samples, --expect-n requires {expect_n}")
