"""Detokenizer (App. D.1): a fixed set of mask tokens queries the variable token set through ``L`` cross-attention
layers, turning it into a fixed-size grid, then a CNN pixel decoder with an upsampler (after TiTok) renders pixels."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from setok.modeling.transformer import Transformer


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(32, ch), ch)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice with a (1x1 when the width changes) skip connection."""

    def __init__(self, *, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
            _norm(cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class PixelDecoder(nn.Module):
    """CNN decoder: ``(B, D, g, g)`` -> ``(B, 3, g * 2^k, g * 2^k)`` with ``k = len(channels) - 1`` upsamplings."""

    def __init__(self, *, in_dim: int, channels: list[int]) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_dim, channels[0], 3, padding=1)
        stages: list[nn.Module] = []
        for cin, cout in zip(channels[:-1], channels[1:]):
            stages += [ResBlock(cin=cin, cout=cout), nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(cout, cout, 3, padding=1)]
        self.stages = nn.Sequential(*stages)
        self.out = nn.Sequential(ResBlock(cin=channels[-1], cout=channels[-1]), _norm(channels[-1]), nn.SiLU(),
                                 nn.Conv2d(channels[-1], 3, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.stages(self.conv_in(x)))


class Detokenizer(nn.Module):
    """Reconstruct an image from a variable number of tokens.

    Args:
        token_dim: width of the SeTok tokens.
        dim: width of the mask tokens and the cross-attention layers.
        layers: ``L`` (12 in the paper).
        heads, mlp_ratio: Transformer sizes.
        grid: the mask tokens form a ``grid x grid`` map.
        image_size: output resolution; ``image_size / grid`` must be ``2^(len(decoder_channels) - 1)``.
        decoder_channels: widths of the pixel decoder stages.
    """

    def __init__(
        self,
        *,
        token_dim: int,
        dim: int,
        layers: int,
        heads: int,
        mlp_ratio: float,
        grid: int,
        image_size: int,
        decoder_channels: list[int],
    ) -> None:
        super().__init__()
        if grid * 2 ** (len(decoder_channels) - 1) != image_size:
            raise ValueError(
                f"detokenizer: grid {grid} x 2^{len(decoder_channels) - 1} upsamplings != image_size {image_size}"
            )
        self.grid = grid
        self.in_proj = nn.Linear(token_dim, dim) if token_dim != dim else nn.Identity()
        self.mask_tokens = nn.Parameter(torch.randn(grid * grid, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(grid * grid, dim) * 0.02)
        self.blocks = Transformer(dim=dim, layers=layers, heads=heads, mlp_ratio=mlp_ratio, cross=True)
        self.pixel_decoder = PixelDecoder(in_dim=dim, channels=decoder_channels)

    def forward(self, tokens: Tensor, valid: Tensor) -> Tensor:
        """Args: tokens ``(B, C, token_dim)``; valid ``(B, C)``. Returns ``(B, 3, S, S)`` in [-1, 1] scale."""
        b = tokens.shape[0]
        q = (self.mask_tokens + self.pos).expand(b, -1, -1)  # (B, g*g, dim)
        q = self.blocks(q, context=self.in_proj(tokens), context_valid=valid)  # (B, g*g, dim)
        q = q.transpose(1, 2).reshape(b, -1, self.grid, self.grid)  # (B, dim, g, g)
        return self.pixel_decoder(q)
