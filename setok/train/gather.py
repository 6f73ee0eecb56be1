"""Rows of a tensor gathered from every rank with their gradient: the whole batch's contrastive negatives (Eq. 5-6)."""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


def gather_rows(x: Tensor) -> Tensor:
    """Every rank's ``x`` concatenated along dim 0 in rank order, ``(B_0 + ... + B_{W-1}, ...)``; ``x`` itself without
    a process group of several ranks. Ranks may hold different ``B``; the other dims must agree.

    The backward pass gives each rank the gradient of its own rows summed over every rank's loss. So when every rank
    computes the same loss on the gathered rows and the engine averages gradients over ranks, the parameters get the
    gradient of that loss computed on one process over the whole batch.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return x
    if x.dtype == torch.bool:  # masks: no gradient, and not every backend gathers bool
        return _all_rows(x.to(torch.uint8))[0].bool()
    return _GatherRows.apply(x)


def pad_tokens(z: Tensor) -> Tensor:
    """Per-token embeddings ``(B, C, E)`` padded to the largest ``C`` of all ranks (so they can be gathered) with
    copies of each image's first token, which a max over tokens never prefers (``SeTok.embed`` pads the same way);
    pooled embeddings ``(B, E)``, or a single process, unchanged."""
    if z.dim() != 3 or not dist.is_initialized() or dist.get_world_size() == 1:
        return z
    c = torch.tensor([z.shape[1]], device=z.device)
    dist.all_reduce(c, op=dist.ReduceOp.MAX)
    extra = int(c) - z.shape[1]
    return torch.cat([z, z[:, :1].expand(-1, extra, -1)], dim=1) if extra else z


def _all_rows(x: Tensor) -> tuple[Tensor, list[int]]:
    """All ranks' rows of ``x`` (padded to the largest ``B`` for the collective, then cut) and each rank's ``B``."""
    world = dist.get_world_size()
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    counts = [int(s) for s in sizes]
    padded = x.new_zeros((max(counts), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)]), counts


class _GatherRows(torch.autograd.Function):
    """All-gather whose backward sums the gathered rows' gradient over ranks (all-reduce, which every backend has;
    gloo has no reduce-scatter) and keeps this rank's slice."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        out, counts = _all_rows(x.detach())
        rank = dist.get_rank()
        ctx.span = (sum(counts[:rank]), sum(counts[: rank + 1]))
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.span[0]: ctx.span[1]]
