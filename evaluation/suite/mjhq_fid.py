"""MJHQ-30K text-to-image FID: overall and per category, through the ``fid`` benchmark's Inception and formula."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.metrics.fid import fid_bootstrap_ci95, fid_from_features
from evaluation.readers.fid import read_fid_npz, write_fid_npz
from evaluation.readers.generation import MJHQ_CATEGORIES, read_mjhq
from evaluation.registry import Benchmark, Metric, PathLike, ScoreResult, register
from evaluation.suite.coco_fid import center_crop_resize
from setok.io import DataError

if TYPE_CHECKING:
    import torch

    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout


def _cached_reference_features(path: Path, ids: list[str]) -> np.ndarray:
    """Rows of a ``features`` + ``names`` ``.npz`` (names = MJHQ ids) in the order of ``ids``."""
    cached = read_fid_npz(path)
    if cached.features is None or cached.names is None:
        raise DataError(f"{path}: the reference cache needs 'features' and 'names' (the MJHQ image ids)")
    row = {name: k for k, name in enumerate(cached.names)}
    missing = [i for i in ids if i not in row]
    if missing:
        raise DataError(f"{path}: no cached reference features for {len(missing)} ids, e.g. {missing[0]}")
    return cached.features[[row[i] for i in ids]]


@register("mjhq_fid")
class MjhqFidBenchmark(Benchmark):
    """FID of generated images against MJHQ-30K's high-quality references, overall and for each category."""

    help = """MJHQ-30K text-to-image FID (lower is better): overall and per category (fid_<category>).

--annotations: MJHQ-30K meta_data.json (or its folder): {"<image_id>": {"category": "people", "prompt": "..."}}.
--reference-images: folder of the reference images as released, <category>/<image_id>.jpg (default: beside
  meta_data.json, itself or mjhq30k_imgs/).
--predictions: one flat folder of generated images named <image_id>.png or .jpg (.jpeg .bmp .webp), one per id
  of meta_data.json: missing ids, unknown ids and two files for one id are errors.
Features: the fid benchmark's engine (uint8 RGB into torch-fidelity's FID Inception-v3, TF 2015-12-05 weights,
offline; it resizes to 299x299 itself; pool3 2048-d). MJHQ's authors compute FID at 1024x1024: feed the images at
the resolution generated, or give --resize N to center-crop and bicubic-resize every image to NxN first.
fid = Frechet distance of all generated vs all reference features; fid_<category> = the same within each
category (3,000 vs 3,000 in the release): fid_animals, fid_art, fid_fashion, fid_food, fid_indoor, fid_landscape,
fid_logo, fid_people, fid_plants, fid_vehicles.
--reference-cache X.npz: reuse reference features from X (with 'names' = image ids) or, if X does not exist,
write them there after computing (made under the same --resize; the file does not record it).
Per-sample rows: {"id", "category", "file", "feature_norm"} per generated image. ci95 only with --bootstrap N:
resamples generated and reference features independently, per metric (slow: seconds per replicate at 2048-d)."""
    metrics = (Metric("fid", higher_is_better=False, help="FID over all 30K images (raw)"),) + tuple(
        Metric(f"fid_{c}", higher_is_better=False, help=f"FID within the {c} category (raw)") for c in MJHQ_CATEGORIES
    )
    default_bootstrap = 0

    missing_annotations = "MJHQ-30K meta_data.json"

    headline = "fid"
    output = "image"
    scoring_needs_gpu = True  # Inception features of both image sets

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """``meta_data.json`` (annotations, the reference images beside it; also the prompts unless ``inputs`` is
        set)."""
        from evaluation.tasks.base import configured
        from evaluation.tasks.text_to_image import MjhqTask

        meta = configured(cls.name, cfg, "annotations")
        prompts = meta if cfg.inputs is None else configured(cls.name, cfg, "inputs")
        return MjhqTask(cls.name, prompts=prompts, meta=meta, limit=cfg.limit)

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """``meta_data.json``; the first id's reference ``<category>/<id>.jpg`` beside it (or in ``mjhq30k_imgs/``)."""
        expected = "MJHQ-30K meta_data.json {'<image id>': {'category', 'prompt'}}"
        path = lay.path(spec, "annotations")
        meta = lay.json(path, expected, dict)
        lay.records(path, list(meta.values()), ("category", "prompt"), expected, "entries")
        inputs = lay.optional(spec, "inputs")
        if inputs is not None and inputs != path:
            lay.records(inputs, list(lay.json(inputs, expected, dict).values()), ("prompt",), expected, "entries")
        image_id, entry = next(iter(meta.items()))
        given = lay.optional(spec, "reference_images")
        roots = [given] if given is not None else [path.parent, path.parent / "mjhq30k_imgs"]
        found = [r / entry["category"] / f"{image_id}.jpg" for r in roots if (r / entry["category"]).is_dir()]
        lay.sample(found[0] if found else roots[-1] / entry["category"] / f"{image_id}.jpg",
                   "the reference images <category>/<image id>.jpg (mjhq30k_imgs.zip)", roots[-1])

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--reference-images``, ``--reference-cache``, ``--resize``, ``--device`` and ``--batch-size``."""
        parser.add_argument("--reference-images", type=Path, default=None, help="<category>/<image_id>.jpg folder")
        parser.add_argument("--reference-cache", type=Path, default=None, help="reference features .npz to reuse")
        parser.add_argument("--resize", type=int, default=None, metavar="N", help="center-crop + resize to NxN first")
        parser.add_argument("--device", default=None, help="Inception device (default: cuda if available, else cpu)")
        parser.add_argument("--batch-size", type=int, default=32, help="images per Inception forward pass")

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int,
        reference_images: PathLike | None = None, reference_cache: PathLike | None = None, resize: int | None = None,
        device: str | None = None, batch_size: int = 32, **opts: Any
    ) -> ScoreResult:
        from evaluation.features.images import image_features

        if resize is not None and resize < 1:
            raise DataError(f"{predictions}: --resize must be >= 1, got {resize}")
        cache = None if reference_cache is None else Path(reference_cache)
        use_cache = cache is not None and cache.is_file()
        data = read_mjhq(predictions, annotations, reference_images, need_references=not use_cache)
        prep = None if resize is None else center_crop_resize(resize)
        extractor: list[torch.nn.Module] = []

        def features(files: list[Path]) -> np.ndarray:
            if not extractor:
                from evaluation.features.inception import build_inception_extractor

                extractor.append(build_inception_extractor(device=device))
            return image_features(files, extractor[0], batch_size=batch_size, preprocess=prep)

        gen = features(data.generated)
        if use_cache:
            assert cache is not None
            ref = _cached_reference_features(cache, data.ids)
        else:
            ref = features(data.references)
            if cache is not None:
                write_fid_npz(cache, ref, names=data.ids)
        if gen.shape[1] != ref.shape[1]:
            raise DataError(f"{cache}: feature dimension {ref.shape[1]} differs from the generated {gen.shape[1]}")
        cats = np.asarray(data.categories)
        groups = {"fid": np.ones(len(cats), dtype=bool)}
        groups.update({f"fid_{c}": cats == c for c in sorted(set(data.categories))})
        metrics = {name: fid_from_features(gen[m], ref[m]) for name, m in groups.items()}
        bad = [k for k, v in metrics.items() if not np.isfinite(v)]
        if bad:
            raise DataError(f"{predictions}: {bad[0]} is not finite ({metrics[bad[0]]})")
        n_boot = n_bootstrap
        ci95 = {}
        if n_boot > 0:
            ci95 = {k: fid_bootstrap_ci95(gen[m], ref[m], n_boot=n_boot, seed=seed) for k, m in groups.items()}
        norms = np.linalg.norm(gen, axis=1)
        rows = [
            {"id": i, "category": c, "file": f.name, "feature_norm": float(v)}
            for i, c, f, v in zip(data.ids, data.categories, data.generated, norms)
        ]
        return ScoreResult(metrics=metrics, n=len(rows), rows=rows, ci95=ci95)
