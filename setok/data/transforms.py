"""The one image transform of every dataset: shorter side to ``size`` (bicubic), centre crop, tensor in [0, 1].

Implemented with PIL and numpy only; the geometry matches ``torchvision.transforms.Resize(size, BICUBIC)`` followed
by ``CenterCrop(size)`` on PIL images, without importing torchvision.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from setok.io import load_image


def _resize_shorter_side(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    new_size = (size, new_long) if width <= height else (new_long, size)
    if new_size == image.size:
        return image
    return image.resize(new_size, Image.Resampling.BICUBIC)  # PIL widens the kernel when shrinking: antialiased


def _center_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    left, top = int(round((width - size) / 2.0)), int(round((height - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


class ImageTransform:
    """Picklable callable (DataLoader workers) mapping an RGB PIL image to a ``(3, size, size)`` float tensor."""

    def __init__(self, size: int) -> None:
        """Check and store the output size.

        Args:
            size: Output side length in pixels.

        Raises:
            ValueError: ``size`` is not a positive integer.
        """
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"image_transform: size must be a positive integer, got {size!r}")
        self.size = size

    def __call__(self, image: Image.Image) -> Tensor:
        """Resize the shorter side to ``size``, centre-crop to ``size x size``, scale to ``[0, 1]``."""
        if image.mode != "RGB":  # convert() copies even an RGB image: skipping it saves ~5% of a worker's time
            image = image.convert("RGB")
        image = _center_crop(_resize_shorter_side(image, self.size), self.size)
        pixels = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True))
        return pixels.permute(2, 0, 1).to(torch.float32).mul_(1.0 / 255.0)  # exactly as torchvision ToDtype

    def __repr__(self) -> str:
        return f"ImageTransform(size={self.size})"


def image_transform(size: int) -> Callable[[Image.Image], Tensor]:
    """Build the deterministic image transform.

    Resizes the shorter side to ``size`` with PIL's bicubic filter (antialiased when downsampling), centre-crops
    to ``size x size`` and converts to a float32 tensor in ``[0, 1]``.

    Args:
        size: Output side length in pixels.

    Returns:
        A callable mapping an RGB PIL image to a ``(3, size, size)`` float32 tensor.

    Raises:
        ValueError: ``size`` is not a positive integer.
    """
    return ImageTransform(size)


def load_tensor(path: str | Path, transform: Callable[[Image.Image], Tensor]) -> Tensor:
    """Read an image file (grey and RGBA become RGB) and apply ``transform``.

    Args:
        path: Image file.
        transform: Usually :func:`image_transform`.

    Returns:
        The transformed image tensor.

    Raises:
        setok.io.DataError: The file is missing or not a readable image; the message names it.
    """
    return transform(load_image(path))
