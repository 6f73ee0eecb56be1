"""The adversarial part of SemHiTok's Eq. (7): a PatchGAN discriminator (VQGAN's) and hinge losses.

GroupNorm replaces VQGAN's BatchNorm (ours): batch statistics would differ across data-parallel ranks and between
the real and the reconstructed half of a discriminator step.
"""
from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


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
