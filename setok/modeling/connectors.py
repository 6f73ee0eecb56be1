"""Table 13 connector baselines: SigLIP patch features -> a fixed number of LLM input embeddings.

The SeTok paper (Appendix, Table 13) compares SeTok with three connectors fed the same SigLIP-SO400M-patch14-384
features, a ``27 x 27 x 1152`` patch grid per image:

- ``mlp``: "SigLIP + MLP" (LLaVA-1.5), 256 fixed tokens -> :class:`MLPConnector`;
- ``qformer``: "SigLIP + Q-former" (BLIP-2 / MiniGPT-4), 32 fixed tokens -> :class:`QFormerConnector`;
- ``resampler``: "SigLIP + Resampler" (Flamingo), 64 fixed tokens -> :class:`PerceiverResampler`.

Every connector maps ``features (N, h, w, D)`` to ``(N, num_tokens, hidden)`` and exposes ``num_tokens``. The
attention connectors add no positional embedding to the patches (neither BLIP-2's Q-Former nor Flamingo's resampler
does), so they see each image's patches as a set: their output is invariant to the patch order. Each image is
processed on its own (no batch statistics), so one image's output never depends on another's.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from setok.modeling.transformer import MLP, Attention, Transformer

CONNECTOR_KINDS = ("mlp", "qformer", "resampler")


def _check_features(features: Tensor, in_dim: int, name: str) -> None:
    """Raise ValueError unless ``features`` is ``(N, h, w, in_dim)``."""
    if features.dim() != 4 or features.shape[-1] != in_dim:
        raise ValueError(f"{name} expects features (N, h, w, {in_dim}), got {tuple(features.shape)}")


class MLPConnector(nn.Module):
    """LLaVA-1.5's ``mlp2x_gelu`` projector over an average-pooled patch grid.

    The ``(h, w)`` grid is adaptive-average-pooled to ``s x s`` with ``s = sqrt(num_tokens)`` (row-major token order),
    then each pooled patch goes through Linear(in_dim, hidden) - GELU - Linear(hidden, hidden).

    Our reading of the paper: LLaVA-1.5 feeds all 576 patches of CLIP-L/336's 24 x 24 grid unpooled; the paper's
    "256 (Fixed)" tokens for SigLIP-384 (27 x 27 = 729 patches) implies pooling, and 256 = 16 x 16 is what adaptive
    average pooling gives here (docs/paper-notes.md).

    Args:
        in_dim: patch feature width ``D`` (1152 for SigLIP-SO400M).
        hidden: LLM embedding width.
        num_tokens: output tokens per image; must be a perfect square.
    """

    def __init__(self, *, in_dim: int, hidden: int, num_tokens: int) -> None:
        super().__init__()
        side = math.isqrt(num_tokens) if num_tokens > 0 else 0
        if side * side != num_tokens or side == 0:
            raise ValueError(f"MLPConnector needs a positive square num_tokens (pooled s x s grid), got {num_tokens}")
        self.in_dim = in_dim
        self.num_tokens = num_tokens
        self.side = side
        self.proj = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    def pool(self, features: Tensor) -> Tensor:
        """Adaptive average pooling of the patch grid.

        Args:
            features: ``(N, h, w, D)`` patch features.

        Returns: ``(N, s*s, D)``, pooled patches in row-major order.
        """
        _check_features(features, self.in_dim, "MLPConnector")
        x = features.permute(0, 3, 1, 2)  # (N, D, h, w)
        x = F.adaptive_avg_pool2d(x, self.side)  # (N, D, s, s)
        return x.flatten(2).transpose(1, 2)  # (N, s*s, D)

    def forward(self, features: Tensor) -> Tensor:
        """Args: features ``(N, h, w, D)``. Returns: ``(N, num_tokens, hidden)``."""
        return self.proj(self.pool(features))


class QFormerConnector(nn.Module):
    """The query branch of BLIP-2's Q-Former: learned queries read the patches through cross-attention.

    Each of ``layers`` pre-norm residual blocks applies self-attention over the queries, cross-attention from the
    queries to the patch features (LayerNorm'd after a Linear from ``in_dim`` to ``dim``), then an MLP; a final
    LayerNorm and Linear(dim, hidden) give the LLM inputs (BLIP-2's / MiniGPT-4's projection to the LLM).

    Differences from BLIP-2 (ours): BLIP-2's Q-Former is a BERT-base initialised from BERT with cross-attention in
    every other layer and a text branch used for its stage-1 losses (ITC/ITM/ITG); we keep only the query branch,
    randomly initialised, with cross-attention in every layer, trained end to end through the LLM loss.

    Args:
        in_dim: patch feature width ``D``.
        hidden: LLM embedding width.
        num_tokens: number of learned queries (32 in BLIP-2).
        layers: number of blocks.
        heads: attention heads; must divide ``dim``.
        dim: query width (768, BERT-base, in BLIP-2).
    """

    def __init__(
        self, *, in_dim: int, hidden: int, num_tokens: int, layers: int, heads: int, dim: int = 768
    ) -> None:
        super().__init__()
        if num_tokens <= 0 or layers <= 0:
            raise ValueError(f"QFormerConnector needs num_tokens > 0 and layers > 0, got {num_tokens}, {layers}")
        self.in_dim = in_dim
        self.num_tokens = num_tokens
        self.queries = nn.Parameter(torch.randn(num_tokens, dim) * 0.02)  # (Q, dim); BERT's initializer_range
        self.feature_proj = nn.Linear(in_dim, dim)
        self.transformer = Transformer(dim=dim, layers=layers, heads=heads, cross=True)  # ends in a LayerNorm
        self.out = nn.Linear(dim, hidden)

    def forward(self, features: Tensor) -> Tensor:
        """Args: features ``(N, h, w, D)``. Returns: ``(N, num_tokens, hidden)``."""
        _check_features(features, self.in_dim, "QFormerConnector")
        context = self.feature_proj(features.flatten(1, 2))  # (N, h*w, dim); each block LayerNorms it
        q = self.queries.unsqueeze(0).expand(features.shape[0], -1, -1)  # (N, Q, dim)
        return self.out(self.transformer(q, context=context))  # (N, Q, hidden)


class ResamplerBlock(nn.Module):
    """One Perceiver-resampler layer (Flamingo): latents attend to ``concat(features, latents)``, then an FFN."""

    def __init__(self, *, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, heads=heads)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = MLP(dim=dim, mlp_ratio=mlp_ratio)

    def forward(self, latents: Tensor, media: Tensor) -> Tensor:
        """Args: latents ``(N, L, dim)``; media ``(N, P, dim)``. Returns: ``(N, L, dim)``."""
        x = self.norm_media(media)  # (N, P, dim)
        lat = self.norm_latents(latents)  # (N, L, dim)
        latents = latents + self.attn(lat, torch.cat([x, lat], dim=1))  # keys/values: (N, P + L, dim)
        return latents + self.ffn(self.norm_ffn(latents))


class PerceiverResampler(nn.Module):
    """Flamingo's Perceiver Resampler: ``num_tokens`` learned latents resample the patch features.

    The patches are projected by Linear(in_dim, dim); in each of ``layers`` pre-norm residual blocks the latents
    attend to the concatenation of the (LayerNorm'd) patches and the latents themselves as keys/values (the Flamingo
    detail), then pass an FFN; a final LayerNorm and Linear(dim, hidden) give the LLM inputs. Flamingo's temporal
    embeddings (for video frames) are omitted: one image is one frame.

    Args:
        in_dim: patch feature width ``D``.
        hidden: LLM embedding width.
        num_tokens: number of latents (64 in Flamingo).
        layers: number of blocks (6 in Flamingo).
        heads: attention heads; must divide ``dim``.
        dim: latent width; None keeps the vision width ``in_dim`` as Flamingo does.
    """

    def __init__(
        self, *, in_dim: int, hidden: int, num_tokens: int, layers: int, heads: int, dim: int | None = None
    ) -> None:
        super().__init__()
        if num_tokens <= 0 or layers <= 0:
            raise ValueError(f"PerceiverResampler needs num_tokens > 0 and layers > 0, got {num_tokens}, {layers}")
        dim = dim or in_dim
        self.in_dim = in_dim
        self.num_tokens = num_tokens
        self.latents = nn.Parameter(torch.randn(num_tokens, dim))  # (L, dim); Flamingo draws them from N(0, 1)
        self.feature_proj = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(ResamplerBlock(dim=dim, heads=heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, hidden)

    def forward(self, features: Tensor) -> Tensor:
        """Args: features ``(N, h, w, D)``. Returns: ``(N, num_tokens, hidden)``."""
        _check_features(features, self.in_dim, "PerceiverResampler")
        media = self.feature_proj(features.flatten(1, 2))  # (N, h*w, dim)
        x = self.latents.unsqueeze(0).expand(features.shape[0], -1, -1)  # (N, L, dim)
        for blk in self.blocks:
            x = blk(x, media)
        return self.out(self.norm(x))  # (N, L, hidden)


def build_connector(
    *, kind: str, in_dim: int, hidden: int, num_tokens: int, layers: int, heads: int, dim: int | None = None
) -> nn.Module:
    """Build a Table 13 connector from plain arguments (the fields of ``ConnectorConfig`` plus the two widths).

    Args:
        kind: ``mlp`` | ``qformer`` | ``resampler`` (``setok`` is not a connector over patch features).
        in_dim: patch feature width ``D``; hidden: LLM embedding width.
        num_tokens, layers, heads: ``ConnectorConfig`` fields (``mlp`` ignores layers and heads).
        dim: attention width of ``qformer`` / ``resampler``; None picks the paper default (768 / ``in_dim``).

    Returns: a module mapping ``(N, h, w, in_dim)`` to ``(N, num_tokens, hidden)``.
    """
    if kind == "mlp":
        return MLPConnector(in_dim=in_dim, hidden=hidden, num_tokens=num_tokens)
    common = {"in_dim": in_dim, "hidden": hidden, "num_tokens": num_tokens, "layers": layers, "heads": heads}
    if kind == "qformer":
        return QFormerConnector(**common, **({} if dim is None else {"dim": dim}))
    if kind == "resampler":
        return PerceiverResampler(**common, dim=dim)
    raise ValueError(f"unknown connector kind {kind!r}; expected one of {', '.join(CONNECTOR_KINDS)}")
