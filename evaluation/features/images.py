"""Inception pool3 features of an image folder, through torch-fidelity's FID feature extractor."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from setok.io import DataError, load_image

if TYPE_CHECKING:
    import torch
    from PIL import Image

Preprocess = Callable[["Image.Image"], "Image.Image"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name.

    Raises:
        DataError: ``folder`` is not a directory or holds no image with one of :data:`IMAGE_EXTENSIONS`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _uint8_tensor(path: Path, preprocess: Preprocess | None = None) -> torch.Tensor:
    """``(3, H, W)`` uint8 tensor of an RGB image (what torch-fidelity's own folder loader produces).

    ``preprocess`` (e.g. a center crop + resize protocol) is applied to the RGB PIL image first.
    """
    import torch

    image = load_image(path)
    if preprocess is not None:
        image = preprocess(image)
    return (
        torch.from_numpy(np.array(image, dtype=np.uint8))
        .permute(2, 0, 1)
        .contiguous()
    )


def image_features(
    paths: list[Path],
    extractor: torch.nn.Module | None = None,
    *,
    batch_size: int = 32,
    device: str | None = None,
    preprocess: Preprocess | None = None,
) -> np.ndarray:
    """Pool3 features of images, in the order given.

    Images are fed as uint8 0..255 to torch-fidelity's ``FeatureExtractorInceptionV3``, which resizes each to
    299x299 with its TF1-compatible bilinear resize; consecutive images of equal size share a batch.

    Args:
        paths: Image files.
        extractor: A :func:`evaluation.features.inception.build_inception_extractor` result (built if ``None``).
        batch_size: Images per forward pass.
        device: Device when the extractor is built here; default CUDA when available.
        preprocess: Optional PIL-to-PIL transform applied to each RGB image before it becomes a tensor.

    Returns:
        ``(len(paths), 2048)`` float64 features.

    Raises:
        DataError: An image is missing or unreadable (names the file).
    """
    import torch

    from evaluation.features.inception import build_inception_extractor

    if extractor is None:
        extractor = build_inception_extractor(device=device)
    dev = next(extractor.parameters()).device
    out: list[np.ndarray] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if batch:
            with torch.no_grad():
                (feats,) = extractor(torch.stack(batch).to(dev))
            out.append(feats.double().cpu().numpy())
            batch.clear()

    for path in paths:
        img = _uint8_tensor(path, preprocess)
        if batch and (img.shape != batch[0].shape or len(batch) >= batch_size):
            flush()
        batch.append(img)
    flush()
    return np.concatenate(out, axis=0) if out else np.zeros((0, 2048))


def folder_features(
    folder: str | os.PathLike[str],
    extractor: torch.nn.Module | None = None,
    *,
    batch_size: int = 32,
    device: str | None = None,
) -> tuple[list[Path], np.ndarray]:
    """``(files, features)`` for the images of ``folder`` (see :func:`list_images` and :func:`image_features`)."""
    files = list_images(folder)
    return files, image_features(files, extractor, batch_size=batch_size, device=device)
