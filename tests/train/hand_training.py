"""What the trainers' DeepSpeed engine does with a loss, written out in plain PyTorch, for tests that replay a run.

The CI stages train with ``optimizer: torch_adamw`` at fp32 under ZeRO-0: per optimizer step the engine scales each
micro-batch's loss by ``1 / accumulation`` before backward, clips the summed gradient to ``grad_clip`` (global norm),
steps AdamW over two groups (weight decay on parameters with ``ndim >= 2`` only) and then the warm-up + cosine
schedule. A parameter that got no gradient still has a zero one there (so AdamW still decays it).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from setok.config import TrainConfig
from setok.train.schedule import warmup_cosine


class HandOptimizer:
    """AdamW + clipping + schedule of a stage, over the trainable parameters of ``modules``."""

    def __init__(self, modules: Iterable[nn.Module], tc: TrainConfig) -> None:
        assert tc.optimizer == "torch_adamw" and tc.precision == "fp32" and tc.zero_stage == 0
        self.params = [p for m in modules for p in m.parameters() if p.requires_grad]
        groups = [{"params": [p for p in self.params if p.ndim >= 2], "weight_decay": tc.weight_decay},
                  {"params": [p for p in self.params if p.ndim < 2], "weight_decay": 0.0}]
        self.opt = torch.optim.AdamW(groups, lr=tc.lr, betas=tuple(tc.betas))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: warmup_cosine(s, warmup=tc.warmup_steps, total=tc.steps))
        self.clip = tc.grad_clip

    def zero_grad(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def step(self) -> None:
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        self.sched.step()


def moved(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    """Names of the floating-point tensors that differ between two state dicts."""
    return {k for k, v in before.items() if v.is_floating_point() and not torch.equal(v, after[k])}


def mllm_micro_batch(cfg: Any, sc: Any, *, image_size: int, step: int = 0, k: int = 0) -> Any:
    """Raw micro-batch ``k`` of optimizer step ``step`` of a one-rank MLLM stage, as the trainer's loader builds it
    (the stage's sources and mixture, :class:`MixtureSampler`, :func:`collate_multimodal`)."""
    from setok.data.multimodal_loader import MultimodalDataset, collate_multimodal
    from setok.train.mixture import MixtureSampler
    from setok.train.mllm import stage_data

    sources, probs = stage_data(cfg, sc)
    dataset = MultimodalDataset(sources, image_size=image_size)
    sampler = MixtureSampler(sizes=[len(s) for s in sources], probs=probs, batch_size=sc.batch_size,
                             micro_batch_size=sc.micro_batch_size, steps=sc.steps, seed=sc.seed)
    ids = sampler.global_batch(step)[k * sc.micro_batch_size:(k + 1) * sc.micro_batch_size]
    return collate_multimodal([dataset[i] for i in ids])


def text_ids(tokenizer: Any) -> tuple[Any, Any]:
    """The trainer's special ids and text tokenizer function for ``build_sequences``."""
    from setok.modeling.llm import special_ids
    from setok.train.mllm_batch import SpecialIds

    ids = special_ids(tokenizer)
    special = SpecialIds(img_start=ids["img_start"], img_end=ids["img_end"], pad=ids["pad"], eos=ids["eos"],
                         bos=ids["bos"])
    return special, lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]


def reached(model: nn.Module) -> set[str]:
    """Names of the trainable parameters of ``model`` with a nonzero gradient."""
    return {n for n, p in model.named_parameters() if p.requires_grad and p.grad is not None
            and bool(p.grad.abs().sum() > 0)}
