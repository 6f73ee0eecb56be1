"""Gradient clipping per network inside one DeepSpeed engine (a tokenizer and its discriminator).

SemHiTok's pixel stages train the tokenizer (the generator of Eq. 7) and the PatchGAN discriminator in one engine
(:class:`setok.train.semhitok_objective.PixelObjective`; SeTok's VQGAN objective likewise:
:class:`setok.train.setok_objective.AdversarialReconstruction`), whose ``gradient_clipping`` would clip the two
networks' joint gradient: a large discriminator gradient would then shrink the generator's step. Two optimisers, as
LlamaGen's ``vq_train.py`` trains them (``clip_grad_norm_(vq_model.parameters(), max_grad_norm)`` and the same for the
discriminator), clip each network by its own norm. :class:`ClippedPerNetwork` does that for one engine whose own
clipping is off (``gradient_clipping: 0``): at each accumulation boundary, after the last backward and before the
optimizer step, every network's full gradient (summed over micro-batches and averaged over ranks, fp32 where DeepSpeed
accumulates in fp32) is read with DeepSpeed's ``safe_get_full_grad``, its norm taken, and the gradient scaled by
``min(1, max_norm / (norm + 1e-6))`` (``torch.nn.utils.clip_grad_norm_``) with ``safe_set_full_grad``. Under ZeRO-1/2
those calls gather and scatter the partitioned gradient (collectives every rank enters in the same order).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from setok.configtools import ConfigError

if TYPE_CHECKING:
    from setok.train.loop import Run


def clip_coefficient(norm: float, max_norm: float) -> float:
    """``clip_grad_norm_``'s factor: ``min(1, max_norm / (norm + 1e-6))``."""
    return min(1.0, max_norm / (norm + 1e-6))


def network_grad_norms(networks: Mapping[str, Sequence[nn.Parameter]]) -> dict[str, float]:
    """The l2 norm of each network's full gradient (0 for a network without gradients, e.g. the discriminator
    during the GAN warm-up). Must run after the boundary micro-batch's backward and before the step."""
    from deepspeed.utils import safe_get_full_grad

    norms = {}
    for name, params in networks.items():
        grads = [g for g in (safe_get_full_grad(p) for p in params) if g is not None]
        if not grads:
            norms[name] = 0.0
            continue
        per_param = torch.stack([torch.linalg.vector_norm(g.detach(), dtype=torch.float32) for g in grads])  # (P,)
        norms[name] = float(torch.linalg.vector_norm(per_param.double()))  # one device sync per network
    return norms


def clip_per_network(networks: Mapping[str, Sequence[nn.Parameter]], max_norm: float) -> dict[str, float]:
    """Scale each network's gradient to norm at most ``max_norm``; returns the norms before clipping."""
    from deepspeed.utils import safe_get_full_grad, safe_set_full_grad

    norms = network_grad_norms(networks)
    for name, params in networks.items():
        coef = clip_coefficient(norms[name], max_norm)
        if coef >= 1.0:
            continue
        for p in params:
            g: Tensor | None = safe_get_full_grad(p)
            if g is not None:
                safe_set_full_grad(p, g * coef)
    return norms


class ClippedPerNetwork:
    """A DeepSpeed engine (built with ``gradient_clipping: 0``) whose ``step()`` first clips each network's gradient
    to ``max_norm`` by its own norm at an accumulation boundary; every other attribute is the engine's.

    Args:
        engine: the DeepSpeed engine.
        networks: name -> the trainable parameters of that network (disjoint; together the engine's).
        max_norm: the stage's ``grad_clip``.
    """

    def __init__(self, engine: Any, networks: Mapping[str, Sequence[nn.Parameter]], *, max_norm: float) -> None:
        self.engine = engine
        self.networks = {k: [p for p in v if p.requires_grad] for k, v in networks.items()}
        self.max_norm = max_norm
        self.last_norms: dict[str, float] = {}

    def step(self) -> None:
        if self.engine.is_gradient_accumulation_boundary():
            self.last_norms = clip_per_network(self.networks, self.max_norm)
        self.engine.step()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.engine(*args, **kwargs)


def tokenizer_and_discriminator(module: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The two networks of an objective module holding ``tokenizer`` and ``discriminator``."""
    return {"tokenizer": list(module.tokenizer.parameters()),
            "discriminator": list(module.discriminator.parameters())}


def engine_clipped_per_network(
    run: Run, module: nn.Module, networks: Callable[[nn.Module], Mapping[str, Sequence[nn.Parameter]]] | None, *,
    setting: str,
) -> tuple[Any, int, Any]:
    """``run.engine(module)``, with the stage's ``grad_clip`` applied per network when ``networks`` is given.

    ``networks(engine.module)`` names each network's parameters; None (or ``grad_clip: 0``) keeps DeepSpeed's own
    clipping. ``setting``: the config key that asked for it (named when fp16 is refused). Returns ``(engine, the step
    to start at, the object to call backward / step on)``.
    """
    tc = run.train
    separate = networks is not None and tc.grad_clip > 0
    if separate and tc.precision == "fp16":
        raise ConfigError(f"train_{run.stage}.precision: fp16 with {setting}; use bf16 or fp32 (the per-network norms "
                          "read unscaled gradients)")
    engine_run = dataclasses.replace(run, train=dataclasses.replace(tc, grad_clip=0.0)) if separate else run
    engine, start = engine_run.engine(module)
    if not separate:
        return engine, start, engine
    return engine, start, ClippedPerNetwork(engine, networks(engine.module), max_norm=tc.grad_clip)
