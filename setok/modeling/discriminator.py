"""The adversarial part of a tokenizer's reconstruction objective (SemHiTok's Eq. 7; SeTok's L_rec, paper-notes M3):
a PatchGAN discriminator (VQGAN's), hinge losses, D's logits with its parameters detached, and VQGAN's adaptive weight.

GroupNorm replaces VQGAN's BatchNorm (ours): batch statistics would differ across data-parallel ranks and between
the real and the reconstructed half of a discriminator step.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call


class PatchDiscriminator(nn.Module):
    """``layers`` stride-2 4x4 convolutions (widths ``channels * 2^i``, capped at 8x), then a stride-1 conv and a
    1-channel conv: one real/fake logit per receptive-field patch.

    Args: channels: first width; layers: downsampling convolutions after the first.
    """

    def __init__(self, *, channels: int = 64, layers: int = 3) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(3, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for i in range(1, layers + 1):
            out = channels * min(2**i, 8)
            stride = 2 if i < layers else 1
            mods += [nn.Conv2d(width, out, 4, stride=stride, padding=1, bias=False),
                     nn.GroupNorm(math.gcd(32, out), out), nn.LeakyReLU(0.2)]
            width = out
        mods.append(nn.Conv2d(width, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, images: Tensor) -> Tensor:
        """Args: images ``(B, 3, S, S)`` in [-1, 1]. Returns logits ``(B, 1, s, s)``."""
        return self.net(images)


def hinge_d_loss(logits_real: Tensor, logits_fake: Tensor) -> Tensor:
    """``0.5 * (E[relu(1 - D(x))] + E[relu(1 + D(x_hat))])``."""
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


def generator_loss(logits_fake: Tensor) -> Tensor:
    """The generator's adversarial term ``-E[D(x_hat)]``."""
    return -logits_fake.mean()


def frozen_logits(discriminator: nn.Module, images: Tensor) -> Tensor:
    """D's logits with its parameters detached (``torch.func.functional_call``): gradients reach ``images``, not D."""
    params = {k: v.detach() for k, v in discriminator.named_parameters()}
    buffers = dict(discriminator.named_buffers())
    return functional_call(discriminator, {**params, **buffers}, (images,))


def adversarial_losses(discriminator: nn.Module, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """The two adversarial terms of one step, for a tokenizer and its discriminator trained by ONE backward.

    Returns ``(generator term -E[D(x_hat)] with D's parameters detached (moves the tokenizer only), D's hinge loss on
    sg(x) and sg(x_hat) (moves D only))``: one backward of any sum of them gives each network the gradient of its own
    loss at the current parameters, the update of VQGAN's two optimizers stepping in turn.
    Args: real ``x``, fake ``x_hat``: ``(B, 3, S, S)``.
    """
    g_loss = generator_loss(frozen_logits(discriminator, fake))
    d_loss = hinge_d_loss(discriminator(real.detach()), discriminator(fake.detach()))
    return g_loss, d_loss


def adaptive_weight(
    nll: Tensor, g_loss: Tensor, last_layer: Tensor, *, eps: float = 1e-4, max_weight: float = 1e4
) -> Tensor:
    """VQGAN's adaptive weight of the generator's adversarial term (Esser et al. 2021, Eq. 7; taming-transformers'
    ``calculate_adaptive_weight``, also in ChocoWu/SeTok src/model/loss/discriminator.py):
    ``lambda = ||grad_w nll|| / (||grad_w g_loss|| + eps)``, clamped to ``[0, max_weight]`` and detached, where ``w`` is
    the decoder's last layer. The gradients are taken with ``torch.autograd.grad`` (``retain_graph``): nothing is
    accumulated into ``.grad``, so the training backward that follows sees the graph and the gradients untouched.

    Args: nll: the scalar reconstruction loss (pixel + perceptual); g_loss: the scalar generator term; last_layer: the
    weight both losses reach. Returns a detached 0-d tensor (multiply by the configured weight).
    """
    (g_nll,) = torch.autograd.grad(nll, last_layer, retain_graph=True)
    (g_adv,) = torch.autograd.grad(g_loss, last_layer, retain_graph=True)
    dtype = torch.promote_types(g_nll.dtype, torch.float32)  # bf16 weights: the norms in fp32
    norm_nll = torch.linalg.vector_norm(g_nll, dtype=dtype)
    norm_adv = torch.linalg.vector_norm(g_adv, dtype=dtype)
    return (norm_nll / (norm_adv + eps)).clamp(0.0, max_weight).detach()
