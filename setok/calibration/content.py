"""How a token count relates to what is in the image (the calibration report's "content" section).

Two measures, each a Spearman rank correlation with the tokens per image: the number of distinct labelled objects of
the image where its source labels several per image (OpenImages' boxes, the bundled photos' object lists; an
ImageNet image has one class, so the measure is undefined there and reported as such), and an image-complexity proxy
every image has: the mean absolute difference between neighbouring pixels of its grey-level image (edge density;
0 for a flat image).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

COMPLEXITY_PROXY = "mean absolute difference between neighbouring grey-level pixels (edge density), images in [0, 1]"


def complexity(images: Tensor) -> Tensor:
    """Edge density of ``(B, 3, S, S)`` images in [0, 1]: ``(B,)``, the mean of ``|dI/dx|`` and ``|dI/dy|``."""
    grey = images.float().mean(1)  # (B, S, S)
    dx = (grey[:, :, 1:] - grey[:, :, :-1]).abs().mean((1, 2))
    dy = (grey[:, 1:, :] - grey[:, :-1, :]).abs().mean((1, 2))
    return (dx + dy) / 2


def ranks(x: Tensor) -> Tensor:
    """``(N,)`` ranks from 1, ties sharing their average rank (what Spearman's coefficient needs)."""
    x = x.double()
    order = torch.argsort(x, stable=True)
    r = torch.empty_like(x)
    r[order] = torch.arange(1, len(x) + 1, dtype=x.dtype)
    values, inverse = torch.unique(x, return_inverse=True)
    total = torch.zeros(len(values), dtype=x.dtype).index_add_(0, inverse, r)
    count = torch.zeros(len(values), dtype=x.dtype).index_add_(0, inverse, torch.ones_like(r))
    return (total / count)[inverse]


def spearman(x: Tensor, y: Tensor) -> float | None:
    """Spearman's rank correlation of two ``(N,)`` samples; None when either is constant (undefined)."""
    if len(x) < 2 or bool((x == x[0]).all()) or bool((y == y[0]).all()):
        return None
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / (rx.norm() * ry.norm()))


def content_relation(counts: Tensor, *, objects: Tensor | None, edge_density: Tensor) -> dict[str, Any]:
    """The report's ``content`` mapping for the chosen setting's ``(N,)`` token counts.

    Args:
        counts: tokens per image.
        objects: distinct labelled objects per image, or None when no source gives labels.
        edge_density: :func:`complexity` of each image.
    """
    out: dict[str, Any] = {}
    if objects is None:
        out["objects"] = {"spearman": None, "why": "the sources give no labels"}
    else:
        r = spearman(counts, objects)
        out["objects"] = {"spearman": r, "mean_objects": float(objects.double().mean()),
                          "why": None if r is not None else "every image has the same number of labelled objects"}
    r = spearman(counts, edge_density)
    out["complexity"] = {"spearman": r, "proxy": COMPLEXITY_PROXY,
                         "why": None if r is not None else "every image (or count) is the same"}
    return out
