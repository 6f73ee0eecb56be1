"""Letterboxing for referring segmentation, and COCO region masks as arrays.

Segmentation images are letterboxed (longer side to ``size``, zero padding bottom/right) instead of centre-cropped,
so the whole image is seen and a predicted mask maps back to the original pixels exactly (LISA / SAM resize the longer
side and pad the same way). Everything else uses :mod:`setok.data.transforms`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from setok.data.multimodal import RegionMask


def letterbox_size(width: int, height: int, size: int) -> tuple[int, int]:
    """``(w', h')`` of an image whose longer side is scaled to ``size`` (aspect kept, at least 1 pixel)."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def letterbox_image(image: Image.Image, size: int) -> Tensor:
    """RGB PIL image -> ``(3, size, size)`` float tensor in [0, 1]: longer side to ``size`` (bicubic), zero padding
    at the bottom / right."""
    w, h = letterbox_size(*image.size, size)
    resized = image.convert("RGB").resize((w, h), Image.Resampling.BICUBIC)
    out = torch.zeros(3, size, size)
    pixels = torch.from_numpy(np.array(resized, dtype=np.uint8, copy=True)).permute(2, 0, 1).float() / 255.0
    out[:, :h, :w] = pixels
    return out


def letterbox_mask(mask: np.ndarray, size: int) -> Tensor:
    """``(h, w)`` bool mask -> ``(size, size)`` float coverage in [0, 1], placed as :func:`letterbox_image` places
    the image (area-averaged, so a patch's value is the fraction of it the object covers)."""
    h, w = mask.shape
    nw, nh = letterbox_size(w, h, size)
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]  # (1, 1, h, w)
    resized = F.interpolate(m, size=(nh, nw), mode="area" if nh <= h else "bilinear")[0, 0]
    out = torch.zeros(size, size)
    out[:nh, :nw] = resized.clamp(0, 1)
    return out


def unletterbox_logits(logits: Tensor, width: int, height: int) -> Tensor:
    """Mask logits over the letterboxed square ``(S', S')`` -> logits over the original ``(height, width)`` image.

    The content occupies the top-left ``letterbox_size(width, height, S')`` corner of the square; that corner is
    cropped and resized bilinearly to the original size.
    """
    s = logits.shape[-1]
    w, h = letterbox_size(width, height, s)
    crop = logits[..., :h, :w].float()
    return F.interpolate(crop.reshape(1, 1, h, w), size=(height, width), mode="bilinear", align_corners=False)[0, 0]


def region_array(region: RegionMask) -> np.ndarray:
    """Decode a COCO segmentation (polygons, uncompressed or compressed RLE) to an ``(h, w)`` bool array."""
    from pycocotools import mask as mask_utils

    seg, h, w = region.segmentation, region.height, region.width
    if isinstance(seg, list):  # polygons [[x1, y1, ...], ...]
        rles = mask_utils.frPyObjects(seg, h, w)
        rle = mask_utils.merge(rles)
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        rle = dict(seg)
        if isinstance(rle.get("counts"), str):
            rle["counts"] = rle["counts"].encode()
    return mask_utils.decode(rle).astype(bool)
