"""Counting on built modules: parameters, matmul weights, FLOPs (``torch.utils.flop_counter``) and the bytes autograd
saves, on ``meta`` tensors (nothing allocated) or a real device."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def n_params(module: nn.Module | None, *, trainable: bool | None = None) -> int:
    """Number of parameters (``trainable`` True/False: only those with/without ``requires_grad``)."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def matmul_params(module: nn.Module) -> int:
    """Weights of the ``nn.Linear`` layers: the ``N`` of ``2 N`` FLOPs per token (embeddings are lookups, norms
    elementwise)."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def flop_count(fn: Callable[[], Tensor], *, backward: bool) -> float:
    """FLOPs (a multiply-add = 2) of ``fn()`` and, if asked, of the backward of its sum, on whatever device."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = fn()
        if backward:
            out.float().sum().backward()
    return float(counter.get_total_flops())


def saved_bytes(fn: Callable[[], Tensor]) -> float:
    """Bytes of the non-parameter tensors autograd saves for backward while running ``fn()`` (each tensor object
    once; two views of one activation count twice, so this is an upper bound)."""
    seen: dict[int, Tensor] = {}

    def pack(t: Tensor) -> Tensor:
        if not isinstance(t, nn.Parameter) and not isinstance(t._base, nn.Parameter):  # weights, ``W.t()`` views
            seen[id(t)] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return float(sum(t.numel() * t.element_size() for t in seen.values()))


def meta(*shape: int, grad: bool = False, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.empty(*shape, device="meta", dtype=dtype, requires_grad=grad)
