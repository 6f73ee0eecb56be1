"""Plain ViTs for SemHiTok's pixel branch (Sec. 4.1: "We employ ViT as both the pixel encoder and decoder").

:class:`ViTEncoder`: image -> ``(B, h*w, out_dim)`` patch features (conv patch embedding with stride = patch, learned
position embeddings, pre-norm blocks, linear head). :class:`ViTDecoder`: ``(B, L, in_dim)`` tokens -> image, each of
the last ``h*w`` output tokens predicting its patch's pixels (linear head, then un-patchify).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from setok.modeling.transformer import Transformer


def unpatchify(x: Tensor, grid: tuple[int, int], patch: int) -> Tensor:
    """``(B, h*w, p*p*3)`` -> ``(B, 3, h*p, w*p)``."""
    b = x.shape[0]
    h, w = grid
    x = x.view(b, h, w, patch, patch, 3).permute(0, 5, 1, 3, 2, 4)  # (B, 3, h, p, w, p)
    return x.reshape(b, 3, h * patch, w * patch)


class ViTEncoder(nn.Module):
    """Args: grid: ``(h, w)`` patches; patch: patch side; dim, depth, heads, mlp_ratio: the ViT; out_dim: head width."""

    def __init__(
        self, *, grid: tuple[int, int], patch: int, dim: int, depth: int, heads: int, mlp_ratio: float, out_dim: int
    ) -> None:
        super().__init__()
        self.grid, self.patch = grid, patch
        self.patch_embed = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, grid[0] * grid[1], dim) * 0.02)
        self.blocks = Transformer(dim=dim, layers=depth, heads=heads, mlp_ratio=mlp_ratio)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, images: Tensor) -> Tensor:
        """Args: images ``(B, 3, S, S)`` in [-1, 1] with ``S // patch`` = grid (a remainder is cropped by the conv).

        Returns: ``(B, h*w, out_dim)``.
        """
        x = self.patch_embed(images).flatten(2).transpose(1, 2)  # (B, h*w, dim)
        if x.shape[1] != self.pos.shape[1]:
            raise ValueError(f"image of {images.shape[-1]} px gives {x.shape[1]} patches, expected {self.pos.shape[1]}")
        return self.head(self.blocks(x + self.pos))


class ViTDecoder(nn.Module):
    """Args: in_dim: input token width; num_tokens: input sequence length (``h*w``, or ``2*h*w`` for length-concat);
    grid, patch: the output image's patch grid; dim, depth, heads, mlp_ratio: the ViT."""

    def __init__(
        self, *, in_dim: int, num_tokens: int, grid: tuple[int, int], patch: int, dim: int, depth: int, heads: int,
        mlp_ratio: float,
    ) -> None:
        super().__init__()
        self.grid, self.patch = grid, patch
        self.proj = nn.Linear(in_dim, dim)
        self.pos = nn.Parameter(torch.randn(1, num_tokens, dim) * 0.02)
        self.blocks = Transformer(dim=dim, layers=depth, heads=heads, mlp_ratio=mlp_ratio)
        self.head = nn.Linear(dim, patch * patch * 3)

    def forward(self, tokens: Tensor) -> Tensor:
        """Args: tokens ``(B, L, in_dim)``. Returns ``(B, 3, h*p, w*p)`` (the last ``h*w`` tokens' pixels)."""
        x = self.blocks(self.proj(tokens) + self.pos)
        n = self.grid[0] * self.grid[1]
        return unpatchify(self.head(x[:, -n:]), self.grid, self.patch)
