"""Token Merger (Sec. 2.1): aggregate the visual embeddings of each cluster into one semantic-equivalent token.

``X~_c = PE(X) * M_c + X * M_c``; ``u_c = Avg(Transformer_inner(X~_c))``; ``V = Transformer_inter(u_1..u_C)``.
Clusters are processed as one batch of sequences: with hard masks each cluster's member locations are packed into a
padded sequence (every location is computed once); with soft masks every cluster sees all locations weighted by
``M_c``. No Python loop runs over images or clusters.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from setok.modeling.rope import RoPE2D
from setok.modeling.transformer import Transformer


def pack_hard_clusters(x: Tensor, masks: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Gather each non-empty cluster's member locations into a padded sequence.

    Args:
        x: ``(B, N, D)`` features.
        masks: ``(B, N, C)`` one-hot masks.
        valid: ``(B, C)`` real tokens.

    Returns:
        ``seq (G, L, D)``, ``weight (G, L)`` (1 for members, 0 for padding) and ``rows (G,)``, the flat
        ``b * C + c`` index of each packed cluster; ``G`` = number of non-empty real clusters, ``L`` = largest size.
    """
    b, n, c = masks.shape
    cluster_of = masks.argmax(-1) + c * torch.arange(b, device=x.device)[:, None]  # (B, N) flat cluster index
    flat = cluster_of.reshape(-1)  # (B*N,)
    sizes = torch.bincount(flat, minlength=b * c) * valid.reshape(-1)  # (B*C,)
    rows = torch.nonzero(sizes, as_tuple=True)[0]  # (G,)
    row_of = torch.full((b * c,), -1, dtype=torch.long, device=x.device)
    row_of[rows] = torch.arange(rows.numel(), device=x.device)
    order = torch.argsort(flat, stable=True)  # locations grouped by cluster
    sorted_cluster = flat[order]
    starts = torch.cumsum(sizes, 0) - sizes  # (B*C,)
    pos = torch.arange(b * n, device=x.device) - starts[sorted_cluster]  # position inside the cluster
    keep = row_of[sorted_cluster] >= 0
    length = int(sizes.max())
    seq = x.new_zeros(rows.numel(), length, x.shape[-1])
    weight = x.new_zeros(rows.numel(), length)
    seq[row_of[sorted_cluster][keep], pos[keep]] = x.reshape(b * n, -1)[order][keep]
    weight[row_of[sorted_cluster][keep], pos[keep]] = 1.0
    return seq, weight, rows


def soft_cluster_sequences(x: Tensor, masks: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Every real cluster sees all locations, weighted by its mask: ``seq = M_c * x``.

    Returns ``seq (G, N, D)``, ``weight (G, N)`` and ``rows (G,)`` as :func:`pack_hard_clusters`.
    """
    b, n, c = masks.shape
    rows = torch.nonzero(valid.reshape(-1), as_tuple=True)[0]  # (G,)
    weight = masks.transpose(1, 2).reshape(b * c, n)[rows]  # (G, N)
    seq = weight[..., None] * x.repeat_interleave(c, dim=0)[rows]  # (G, N, D)
    return seq, weight, rows


class TokenMerger(nn.Module):
    """Turn patch embeddings and concept masks into a variable-length token set ``V``.

    Args:
        in_dim: width of the vision encoder features.
        dim: token width (512 in the paper).
        inner_layers: ``L^inner`` (12); ``0`` is Table 6 "w/o inner-cluster Transformer".
        inter_layers: ``L^inter`` (8); ``0`` is Table 6 "w/o inter-cluster Transformer".
        heads, mlp_ratio: Transformer sizes.
        position_embedding: add ``PE(X)`` (2D RoPE) inside each cluster; False is Table 6 "w/o PE".
        rope_theta: RoPE frequency base.
        kind: ``"transformer"`` or ``"average"`` (Table 6 "w/o Token Merger": the mask-weighted mean of X).
    """

    def __init__(
        self,
        *,
        in_dim: int,
        dim: int,
        inner_layers: int,
        inter_layers: int,
        heads: int,
        mlp_ratio: float = 4.0,
        position_embedding: bool = True,
        rope_theta: float = 100.0,
        kind: str = "transformer",
    ) -> None:
        super().__init__()
        self.kind = kind
        self.proj = nn.Linear(in_dim, dim)
        use_blocks = kind == "transformer"
        self.pe = RoPE2D(dim=dim, theta=rope_theta) if (position_embedding and use_blocks) else None
        self.inner = Transformer(dim=dim, layers=inner_layers if use_blocks else 0, heads=heads, mlp_ratio=mlp_ratio)
        self.inter = Transformer(dim=dim, layers=inter_layers if use_blocks else 0, heads=heads, mlp_ratio=mlp_ratio)

    def forward(self, x: Tensor, grid: tuple[int, int], masks: Tensor, num_tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Args:
            x: ``(B, h*w, in_dim)`` patch embeddings, row-major.
            grid: ``(h, w)``.
            masks: ``(B, h*w, C)`` concept masks from clustering (sum to 1 over C).
            num_tokens: ``(B,)`` tokens per image.

        Returns:
            ``V (B, C, dim)`` (zero at padding) and ``valid (B, C)`` bool.
        """
        b, n, c = masks.shape
        valid = torch.arange(c, device=x.device)[None, :] < num_tokens[:, None]  # (B, C)
        x = self.proj(x)  # (B, N, dim)
        masks = masks.to(x.dtype)
        if self.kind == "average":
            u = torch.einsum("bnc,bnd->bcd", masks, x) / masks.sum(1)[..., None].clamp_min(1e-6)  # (B, C, dim)
            return u * valid[..., None], valid
        if self.pe is not None:
            x = x + self.pe(x, grid)  # masks are applied while forming the cluster sequences below
        hard = bool(((masks == 0) | (masks == 1)).all())
        pack = pack_hard_clusters if hard else soft_cluster_sequences
        seq, weight, rows = pack(x, masks, valid)  # (G, L, dim), (G, L), (G,)
        h = self.inner(seq, valid=weight > 0)  # (G, L, dim)
        pooled = (weight[..., None] * h).sum(1) / weight.sum(1, keepdim=True).clamp_min(1e-6)  # (G, dim)
        u = x.new_zeros(b * c, x.shape[-1]).index_copy(0, rows, pooled).view(b, c, -1)  # (B, C, dim)
        v = self.inter(u, valid=valid)
        return v * valid[..., None], valid
