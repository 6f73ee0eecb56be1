"""Sweep Algorithm 1 over a grid of (kernel_c, min_seed_score, beta) on fixed features and choose one setting.

The features are computed once by the caller; every setting clusters all of them through the public entry point
:func:`setok.modeling.clustering.cluster` (docs/design.md §6), ``batch_size`` images per call: the Python loops run
over settings and chunks of images, never over single images.

The rule (docs/paper-notes.md C7): the setting whose mean token count is closest to the target wins; settings within
``tolerance`` tokens of that best distance tie, and among them the one with the fewest degenerate images (1 token, or
``max_tokens``: the clustering saturated) wins, then the one with the larger spread (standard deviation: the count
follows the image, which is the point of a dynamic tokenizer), then the first in grid order (kernel_c, then
min_seed_score, then beta, as configured), so the choice is deterministic.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from setok.calibration.overlay import SWEPT
from setok.modeling.clustering import cluster


@dataclass(frozen=True)
class Setting:
    """One grid point: the three values of Algorithm 1 the paper does not give."""

    kernel_c: float
    min_seed_score: float
    beta: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class CountSummary:
    """Token counts of one setting over the sampled images."""

    mean: float
    std: float
    min: int
    max: int
    histogram: list[int]  # histogram[k - 1] = images with k tokens, k = 1 .. max_tokens
    degenerate: float  # share of images at 1 token or at max_tokens

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def grid_settings(kernel_c: list[float], min_seed_score: list[float], beta: list[float]) -> list[Setting]:
    """Every combination, in grid order (kernel_c outermost, beta innermost)."""
    return [Setting(c, s, b) for c, s, b in itertools.product(kernel_c, min_seed_score, beta)]


def token_counts(features: Tensor, settings: list[Setting], *, clustering: dict[str, Any], batch_size: int) -> Tensor:
    """Tokens per image under each setting.

    Args:
        features: ``(N, H, W, D)`` vision features of the sampled images.
        settings: the grid points.
        clustering: the other keyword arguments of ``cluster`` (mode, knn, max_tokens, ...); the swept keys in it are
            replaced by each setting's.
        batch_size: images per ``cluster`` call.

    Returns:
        ``(S, N)`` LongTensor of token counts, on the CPU.
    """
    base = {k: v for k, v in clustering.items() if k not in SWEPT}
    rows = []
    for setting in settings:
        kwargs = {**base, **setting.as_dict()}
        parts = [cluster(chunk, **kwargs).num_tokens.cpu() for chunk in features.split(batch_size)]
        rows.append(torch.cat(parts))
    return torch.stack(rows)


def summarize(counts: Tensor, *, max_tokens: int) -> CountSummary:
    """Mean, (population) standard deviation, range, histogram and degenerate share of ``(N,)`` token counts."""
    c = counts.long()
    f = c.double()
    hist = torch.bincount(c, minlength=max_tokens + 1)[1:max_tokens + 1]
    degenerate = ((c <= 1) | (c >= max_tokens)).double().mean()
    return CountSummary(mean=f.mean().item(), std=f.std(unbiased=False).item(), min=int(c.min()), max=int(c.max()),
                        histogram=[int(h) for h in hist], degenerate=degenerate.item())


def choose(summaries: list[CountSummary], *, target: float, tolerance: float) -> int:
    """Index of the chosen setting (module docstring: closest mean, then fewest degenerate images, then the larger
    spread, then grid order)."""
    if not summaries:
        raise ValueError("choose: no settings")
    distance = [abs(s.mean - target) for s in summaries]
    best = min(distance)
    tied = [i for i, d in enumerate(distance) if d <= best + tolerance]
    return min(tied, key=lambda i: (summaries[i].degenerate, -summaries[i].std, i))
