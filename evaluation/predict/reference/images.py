"""The reference checkpoint's image input, as LLaVA-1.5's evaluation prepares it.

``image_aspect_ratio: pad`` (LLaVA-1.5's setting, ``llava/mm_utils.py`` ``process_images``): the image is first
expanded to a square (``expand2square``: pasted centred on a canvas of the processor's mean colour,
``tuple(int(x * 255) for x in image_mean)``), then the CLIP image processor resizes (shortest edge, bicubic) and
centre-crops it, which on a square is a plain resize. ``crop``: the processor as is (resize the shortest edge, centre
crop: the image's borders are lost). The processor is the PIL one, as LLaVA's ``CLIPImageProcessor`` was
(:mod:`evaluation.predict.reference.loading`).

The number of placeholders an image takes in the prompt is the number of features the vision tower hands the
projector: one per patch, plus the tower's extra tokens (CLIP's CLS), less the CLS when the feature selection is
``default`` (LLaVA's ``mm_vision_select_feature: patch``): 576 for LLaVA-1.5's 336 px, patch 14 CLIP tower.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from PIL import Image

ASPECT_RATIOS = ("pad", "crop")


def expand2square(image: Image.Image, background: tuple[int, ...]) -> Image.Image:
    """``image`` centred on a square canvas of colour ``background`` (side: its longer edge); a square is returned
    as is. The offset of the shorter edge is ``(long - short) // 2``, as in LLaVA."""
    from PIL import Image

    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new(image.mode, (side, side), background)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def mean_colour(image_processor: Any) -> tuple[int, ...]:
    """The padding colour of ``pad``: the processor's normalisation mean in 0-255, truncated as LLaVA does."""
    return tuple(int(x * 255) for x in image_processor.image_mean)


def pixel_values(images: Sequence[Image.Image], image_processor: Any, *, aspect_ratio: str) -> torch.Tensor:
    """RGB PIL images -> the ``(N, 3, S, S)`` float32 tensor the vision tower reads.

    Raises:
        ValueError: ``aspect_ratio`` not ``pad`` or ``crop`` (the config checks it before).
    """
    if aspect_ratio not in ASPECT_RATIOS:
        raise ValueError(f"image_aspect_ratio {aspect_ratio!r}: expected one of {ASPECT_RATIOS}")
    if aspect_ratio == "pad":
        images = [expand2square(im, mean_colour(image_processor)) for im in images]
    return image_processor(list(images), return_tensors="pt")["pixel_values"]


def image_token_count(processor: Any, pixel_values: torch.Tensor) -> int:
    """Placeholders per image of ``pixel_values`` ``(N, 3, H, W)`` (``LlavaProcessor``'s own count: patches, plus its
    ``num_additional_image_tokens``, less one under the ``default`` feature selection)."""
    height, width = pixel_values.shape[-2:]
    n = (height // processor.patch_size) * (width // processor.patch_size) + processor.num_additional_image_tokens
    return n - 1 if processor.vision_feature_select_strategy == "default" else n
