"""DeepSpeed engine construction from a :class:`~setok.config.TrainConfig`."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any

import torch
from torch import nn

from setok.config import TrainConfig
from setok.train.schedule import warmup_cosine


def deepspeed_config(cfg: TrainConfig, *, world: int) -> dict[str, Any]:
    """The DeepSpeed JSON config of a stage (ZeRO stage, precision, batch sizes, clipping)."""
    ds: dict[str, Any] = {
        "train_batch_size": cfg.batch_size,
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.batch_size // (cfg.micro_batch_size * world),
        "gradient_clipping": cfg.grad_clip,
        # overlap_comm off (DeepSpeed's default below ZeRO-3, pinned here): ZeRO-1 then reduces after the backward, in
        # parameter order, which is what makes it safe when ranks run different modules (setok.stages: path_dependent).
        "zero_optimization": {"stage": cfg.zero_stage, **({"overlap_comm": False} if cfg.zero_stage < 3 else {})},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cfg.precision == "bf16":
        ds["bf16"] = {"enabled": True}
    elif cfg.precision == "fp16":
        ds["fp16"] = {"enabled": True, "initial_scale_power": 16}
    if cfg.optimizer == "deepspeed_adam":
        ds["optimizer"] = {
            "type": "AdamW",
            "params": {"lr": cfg.lr, "betas": list(cfg.betas), "weight_decay": cfg.weight_decay},
        }
    return ds


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, norms and other 1-D parameters (the usual ViT recipe)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_engine(model: nn.Module, cfg: TrainConfig, *, world: int) -> Any:
    """Wrap ``model`` in a DeepSpeed engine with the stage's optimizer and warm-up + cosine schedule."""
    import deepspeed

    groups = _param_groups(model, cfg.weight_decay)
    optimizer = None
    if cfg.optimizer == "torch_adamw":
        optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))
    schedule = partial(warmup_cosine, warmup=cfg.warmup_steps, total=cfg.steps)

    def scheduler(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        return torch.optim.lr_scheduler.LambdaLR(opt, schedule)

    engine, _, _, _ = deepspeed.initialize(
        model=model, model_parameters=groups if optimizer is None else None, optimizer=optimizer,
        lr_scheduler=scheduler, config=deepspeed_config(cfg, world=world),
    )
    return engine


@contextlib.contextmanager
def gathered(engine: Any) -> Iterator[None]:
    """Inside the block the engine's model holds its full parameters, so ``state_dict()`` is what ``model.pt`` needs.

    Under ZeRO-3 each rank keeps only its partition (the module's parameters are empty placeholders, and a
    ``state_dict()`` of them writes a model of zero-sized tensors): the block gathers them, read-only, which is a
    collective that every rank must enter. Below ZeRO-3 it does nothing.
    """
    if not engine.zero_optimization_partition_weights():
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(engine.module.parameters()), modifier_rank=None):
        yield
