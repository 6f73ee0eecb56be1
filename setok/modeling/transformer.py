"""Pre-norm Transformer blocks with key-padding masks, shared by the Token Merger and the Detokenizer."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head (self- or cross-) attention on ``scaled_dot_product_attention``."""

    def __init__(self, *, dim: int, heads: int, kv_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        key_valid: Tensor | None = None,
        key_bias: Tensor | None = None,
    ) -> Tensor:
        """Args:
            x: ``(B, Lq, D)`` queries.
            context: ``(B, Lk, Dk)`` keys/values (``x`` itself when None).
            key_valid: ``(B, Lk)`` bool, False for padding keys; every row needs one True.
            key_bias: ``(B, Lk)`` float added to every query's attention logits for each key (e.g. a log-mask
                ``log M_c``); with ``key_valid`` the invalid keys get ``-inf`` on top. None (the default) runs the
                exact boolean-mask path.

        Returns: ``(B, Lq, D)``.
        """
        context = x if context is None else context
        b, lq, d = x.shape
        q = self.q(x).view(b, lq, self.heads, -1).transpose(1, 2)  # (B, h, Lq, d/h)
        k, v = self.kv(context).view(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # (B, h, Lk, d/h)
        mask = None if key_valid is None else key_valid[:, None, None, :]  # (B, 1, 1, Lk)
        if key_bias is not None:
            bias = key_bias.to(q.dtype)
            if key_valid is not None:
                bias = bias.masked_fill(~key_valid, float("-inf"))
            mask = bias[:, None, None, :]  # (B, 1, 1, Lk), added to the logits
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, Lq, d/h)
        return self.out(y.transpose(1, 2).reshape(b, lq, d))


class MLP(nn.Sequential):
    """Linear -> activation (GELU; SAM's two-way transformer uses ReLU) -> Linear."""

    def __init__(self, *, dim: int, mlp_ratio: float, activation: type[nn.Module] = nn.GELU) -> None:
        hidden = int(dim * mlp_ratio)
        super().__init__(nn.Linear(dim, hidden), activation(), nn.Linear(hidden, dim))


class Block(nn.Module):
    """Self-attention (+ optional cross-attention to a context) + MLP, pre-norm residual."""

    def __init__(self, *, dim: int, heads: int, mlp_ratio: float = 4.0, cross: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, heads=heads)
        self.cross = cross
        if cross:
            self.norm_q = nn.LayerNorm(dim)
            self.norm_kv = nn.LayerNorm(dim)
            self.cross_attn = Attention(dim=dim, heads=heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim=dim, mlp_ratio=mlp_ratio)

    def forward(
        self,
        x: Tensor,
        valid: Tensor | None = None,
        context: Tensor | None = None,
        context_valid: Tensor | None = None,
        key_bias: Tensor | None = None,
    ) -> Tensor:
        """Args: x ``(B, L, D)``; valid ``(B, L)``; context ``(B, Lc, D)``; context_valid ``(B, Lc)``;
        key_bias ``(B, L)`` additive self-attention bias per key (see :class:`Attention`)."""
        x = x + self.attn(self.norm1(x), key_valid=valid, key_bias=key_bias)
        if self.cross:
            x = x + self.cross_attn(self.norm_q(x), self.norm_kv(context), key_valid=context_valid)
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    """A stack of :class:`Block` s with a final LayerNorm; ``layers = 0`` is the identity."""

    def __init__(self, *, dim: int, layers: int, heads: int, mlp_ratio: float = 4.0, cross: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            Block(dim=dim, heads=heads, mlp_ratio=mlp_ratio, cross=cross) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim) if layers else nn.Identity()

    def forward(
        self,
        x: Tensor,
        valid: Tensor | None = None,
        context: Tensor | None = None,
        context_valid: Tensor | None = None,
        key_bias: Tensor | None = None,
    ) -> Tensor:
        """Args: x ``(B, L, D)``; valid ``(B, L)``; context ``(B, Lc, D)``; context_valid ``(B, Lc)``;
        key_bias ``(B, L)`` additive self-attention bias per key, the same in every block."""
        for blk in self.blocks:
            x = blk(x, valid, context, context_valid, key_bias=key_bias)
        return self.norm(x)
