"""The SeTokIM data mixture: which source every sample of every step comes from (Table 10's 7:3 language:vision).

Each optimizer step draws its global batch from a generator seeded by ``(seed, step)``: a source for every slot
(multinomial over the mixture probabilities), then an index inside the source (uniform). The order therefore depends
only on the step, so a resumed run sees exactly the batches an uninterrupted one would.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch.utils.data import Sampler


def mixture_probs(
    sizes: Mapping[str, int], text_sources: Sequence[str], *, language_ratio: float, weights: Mapping[str, float]
) -> dict[str, float]:
    """Sampling probability of every source.

    With ``language_ratio = r > 0``, a share ``r`` of the samples comes from the text-only sources and ``1 - r`` from
    the others; inside each group, in proportion to ``weights[name]`` (default: the source's size). With ``r = 0``
    there is no fixed ratio: every source is drawn in proportion to its weight.

    Args:
        sizes: ``name -> number of samples`` (every source of the stage, in config order).
        text_sources: names of the text-only sources.
        language_ratio: share of text-only samples (0.7 for the paper's 7:3), or 0.
        weights: optional per-source weights.

    Returns: ``name -> probability`` (sums to 1).

    Raises:
        ValueError: no source, or a ratio > 0 with no text source or no other source.
    """
    if not sizes:
        raise ValueError("the stage has no data source")
    text = [n for n in sizes if n in text_sources]
    other = [n for n in sizes if n not in text_sources]
    if language_ratio > 0 and not (text and other):
        raise ValueError(f"language_ratio {language_ratio} needs text-only and other sources; got text {text}, "
                         f"other {other}")
    groups = [(text, language_ratio), (other, 1.0 - language_ratio)] if language_ratio > 0 else [(list(sizes), 1.0)]
    probs: dict[str, float] = {}
    for names, share in groups:
        w = {n: float(weights.get(n, sizes[n])) for n in names}
        total = sum(w.values())
        if total <= 0:
            raise ValueError(f"sources {names} have zero total weight")
        probs.update({n: share * w[n] / total for n in names})
    return {n: probs[n] for n in sizes}


class MixtureSampler(Sampler[list[int]]):
    """Micro-batches of indices into the concatenation of the sources (source ``k`` starts at ``offsets[k]``).

    Rank ``r`` of ``world`` takes every ``world``-th slot of the step's global batch, split into ``accumulation``
    micro-batches, as :class:`~setok.train.schedule.StepBatchSampler` does.
    """

    def __init__(
        self, *, sizes: Sequence[int], probs: Sequence[float], batch_size: int, micro_batch_size: int, steps: int,
        start_step: int = 0, seed: int = 0, rank: int = 0, world: int = 1,
    ) -> None:
        if len(sizes) != len(probs) or not sizes:
            raise ValueError("sizes and probs must be non-empty and of equal length")
        if any(n < 1 for n, p in zip(sizes, probs) if p > 0):
            raise ValueError("a source with a positive probability is empty")
        self.sizes = list(sizes)
        self.offsets = [sum(self.sizes[:k]) for k in range(len(self.sizes))]
        self.probs = torch.tensor(probs, dtype=torch.float64)
        self.batch, self.micro, self.steps, self.start = batch_size, micro_batch_size, steps, start_step
        self.seed, self.rank, self.world = seed, rank, world
        self.accumulation = batch_size // (micro_batch_size * world)
        if self.accumulation < 1 or self.accumulation * micro_batch_size * world != batch_size:
            raise ValueError(f"batch_size {batch_size} is not micro_batch_size {micro_batch_size} x {world} ranks x k")

    def global_batch(self, step: int) -> list[int]:
        """The ``batch_size`` indices of optimizer step ``step`` (all ranks together)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        source = torch.multinomial(self.probs, self.batch, replacement=True, generator=g)  # (B,)
        u = torch.rand(self.batch, generator=g, dtype=torch.float64)  # (B,)
        sizes = torch.tensor(self.sizes, dtype=torch.float64)[source]
        index = (u * sizes).long().clamp_max(sizes.long() - 1)
        return (torch.tensor(self.offsets)[source] + index).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            mine = self.global_batch(step)[self.rank :: self.world]
            for k in range(self.accumulation):
                yield mine[k * self.micro : (k + 1) * self.micro]

    def __len__(self) -> int:
        return (self.steps - self.start) * self.accumulation
