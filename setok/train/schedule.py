"""Deterministic, resumable data order and the learning-rate schedule."""
from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Micro-batches of dataset indices for optimizer steps ``start_step .. steps - 1``.

    Step ``t`` draws the global batch ``t * B .. (t+1) * B`` from an epoch-wise permutation seeded by
    ``(seed, epoch)``, so the order depends only on the step: a resumed run sees exactly the batches an uninterrupted
    one would. Rank ``r`` of ``world`` takes every ``world``-th sample of the global batch, split into
    ``accumulation`` micro-batches.
    """

    def __init__(
        self, *, num_samples: int, batch_size: int, micro_batch_size: int, steps: int, start_step: int = 0,
        seed: int = 0, rank: int = 0, world: int = 1,
    ) -> None:
        if num_samples < 1:
            raise ValueError("the training set is empty")
        self.n, self.batch, self.micro = num_samples, batch_size, micro_batch_size
        self.steps, self.start, self.seed, self.rank, self.world = steps, start_step, seed, rank, world
        self.accumulation = batch_size // (micro_batch_size * world)
        if self.accumulation < 1 or self.accumulation * micro_batch_size * world != batch_size:
            raise ValueError(f"batch_size {batch_size} is not micro_batch_size {micro_batch_size} x {world} ranks x k")

    def _epoch(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def global_batch(self, step: int) -> list[int]:
        """The ``batch_size`` dataset indices of optimizer step ``step`` (all ranks together)."""
        out: list[int] = []
        pos = step * self.batch
        while len(out) < self.batch:
            epoch, offset = divmod(pos, self.n)
            take = min(self.batch - len(out), self.n - offset)
            out += self._epoch(epoch)[offset : offset + take].tolist()
            pos += take
        return out

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            mine = self.global_batch(step)[self.rank :: self.world]
            for k in range(self.accumulation):
                yield mine[k * self.micro : (k + 1) * self.micro]

    def __len__(self) -> int:
        return (self.steps - self.start) * self.accumulation


def warmup_cosine(step: int, *, warmup: int, total: int, floor: float = 0.0) -> float:
    """Multiplier of the base learning rate: linear warm-up over ``warmup`` steps, then cosine decay to ``floor``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
