"""2D rotary position embedding (RoPE-Axial of Heo et al. 2024), used as ``PE(X)`` in the Token Merger (Sec. 2.1).

Channel pairs ``(2k, 2k+1)`` are rotated by an angle proportional to the patch row for the first half of the pairs and
to the patch column for the second half, with frequencies ``theta^(-k / (D/4))``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def grid_positions(h: int, w: int, device: torch.device | None = None) -> Tensor:
    """``(h*w, 2)`` float (row, column) of each location in row-major order."""
    rows = torch.arange(h, device=device, dtype=torch.float32)
    cols = torch.arange(w, device=device, dtype=torch.float32)
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(h * w, 2)


def rope_angles(positions: Tensor, dim: int, theta: float = 100.0) -> Tensor:
    """Rotation angle of every channel pair.

    Args:
        positions: ``(N, 2)`` (row, column).
        dim: feature width ``D`` (a multiple of 4).
        theta: frequency base (100 for images, as in Heo et al.).

    Returns:
        ``(N, D/2)`` angles: pair ``k < D/4`` turns by ``row * theta^(-k/(D/4))``, pair ``D/4 + k`` by ``col * ...``.
    """
    if dim % 4:
        raise ValueError(f"2D RoPE needs a width divisible by 4, got {dim}")
    quarter = dim // 4
    freqs = theta ** (-torch.arange(quarter, device=positions.device, dtype=torch.float32) / quarter)  # (D/4,)
    return torch.cat([positions[:, :1] * freqs, positions[:, 1:] * freqs], dim=-1)  # (N, D/2)


def apply_rope(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate channel pairs of ``x`` (``(..., N, D)``) by ``angles`` (``(N, D/2)``)."""
    x2 = x.float().unflatten(-1, (-1, 2))  # (..., N, D/2, 2)
    cos, sin = angles.cos(), angles.sin()
    out = torch.stack([x2[..., 0] * cos - x2[..., 1] * sin, x2[..., 0] * sin + x2[..., 1] * cos], dim=-1)
    return out.flatten(-2).to(x.dtype)


class RoPE2D(nn.Module):
    """``PE(X)``: 2D rotary position embedding of a ``(B, h*w, D)`` feature map laid out row-major."""

    def __init__(self, *, dim: int, theta: float = 100.0) -> None:
        super().__init__()
        if dim % 4:
            raise ValueError(f"2D RoPE needs a width divisible by 4, got {dim}")
        self.dim = dim
        self.theta = theta

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        """Args: x ``(B, h*w, D)``; grid ``(h, w)``. Returns the rotated features, same shape."""
        angles = rope_angles(grid_positions(*grid, device=x.device), self.dim, self.theta)
        return apply_rope(x, angles)
