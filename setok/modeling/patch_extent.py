"""The part of an image a ViT's patch grid sees, and the mask decoder's output in image coordinates.

A patch-``p`` ViT on an ``S``-pixel image has a grid of ``g = S // p`` patches per side; its patch embedding (a
stride-``p`` convolution) reads pixels ``[0, g * p)`` and drops the rest: SigLIP-SO400M-patch14-384 sees 27 x 14 =
378 of the 384 pixels. The encoder features, and the mask decoder's output grid (``4 g`` cells, SAM's 4x upscaling)
built on them, therefore cover the top-left ``g * p`` pixels. Mask targets and per-patch object coverage are pooled
from that region, and a predicted mask is mapped back onto it (the last ``S - g * p`` pixels, which no feature sees,
take the logits of the nearest covered pixel). When ``p`` divides ``S`` (the CI tokenizer: 64 px, patch 4) all of
this is the identity.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def covered_size(image_size: int, grid: int) -> int:
    """Pixels one side of a ``grid``-patch ViT on ``image_size`` pixels reads: ``grid * (image_size // grid)``.

    ``image_size // grid`` is the patch size whenever ``grid = image_size // p`` and the leftover ``image_size % p`` is
    smaller than ``grid`` (SigLIP: 384 // 27 = 14, 378 pixels).
    """
    if not 1 <= grid <= image_size:
        raise ValueError(f"a grid of {grid} patches on {image_size} pixels")
    return grid * (image_size // grid)


def covered_region(maps: Tensor, grid: tuple[int, int]) -> Tensor:
    """``(N, S, S)`` per-pixel maps -> ``(N, g_h * p, g_w * p)``: the top-left part the ``(g_h, g_w)`` grid sees."""
    s_h, s_w = maps.shape[-2:]
    return maps[..., : covered_size(s_h, grid[0]), : covered_size(s_w, grid[1])]


def pooled_over_grid(maps: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Area average of the covered part of ``(N, S, S)`` maps onto ``size = (H', W')`` cells: ``(N, H', W')`` float.

    ``size = grid`` gives each patch's coverage; ``size = (4 g_h, 4 g_w)`` the mask decoder's target grid.
    """
    return F.interpolate(covered_region(maps, grid)[:, None].float(), size=size, mode="area")[:, 0]


def logits_over_image(logits: Tensor, grid: tuple[int, int], image_size: int) -> Tensor:
    """Mask-decoder logits ``(H', W')`` over the covered ``g * p`` pixels -> ``(image_size, image_size)`` logits.

    Bilinear upsampling (SAM's ``postprocess_masks``) onto the covered pixels, then the uncovered strip at the bottom
    and right replicates the last covered row / column. Returns ``logits`` unchanged when it already covers the whole
    image at one cell per pixel.
    """
    c_h, c_w = covered_size(image_size, grid[0]), covered_size(image_size, grid[1])
    if tuple(logits.shape[-2:]) == (image_size, image_size) and (c_h, c_w) == (image_size, image_size):
        return logits
    up = F.interpolate(logits.float()[None, None], size=(c_h, c_w), mode="bilinear", align_corners=False)
    return F.pad(up, (0, image_size - c_w, 0, image_size - c_h), mode="replicate")[0, 0]
