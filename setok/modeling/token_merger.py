"""Token Merger (Sec. 2.1): aggregate the visual embeddings of each cluster into one semantic-equivalent token.

``X~_c = PE(X) * M_c + X * M_c``; ``u_c = Avg(Transformer_inner(X~_c))``; ``V = Transformer_inter(u_1..u_C)``.
Clusters are processed as one batch of sequences: with hard masks each cluster's member locations are packed into a
padded sequence (every location is computed once; attention and the average see the members only); with soft masks
every cluster sees all locations, and ``M_c`` acts where the pre-norm LayerNorms cannot undo it: as the additive
attention bias ``log M_c`` on every key (``-inf`` where ``M_c = 0``, exactly the hard packing's exclusion) and as the
weights of the average (``u_c = sum_n M_c[n] h_n / sum_n M_c[n]``). Plugging one-hot masks into the soft path gives
the hard path's tokens (tested). No Python loop runs over images or clusters. See docs/paper-notes.md M1 and M9.
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
    """Every real cluster sees all locations, scaled by its mask as Sec. 2.1 prints it: ``seq = M_c * x``.

    Returns ``seq (G, N, D)``, ``weight (G, N)`` (``M_c``) and ``rows (G,)`` as :func:`pack_hard_clusters`.
    """
    b, n, c = masks.shape
    rows = torch.nonzero(valid.reshape(-1), as_tuple=True)[0]  # (G,)
    weight = masks.transpose(1, 2).reshape(b * c, n)[rows]  # (G, N)
    seq = weight[..., None] * x.repeat_interleave(c, dim=0)[rows]  # (G, N, D)
    return seq, weight, rows


def log_mask_bias(weight: Tensor) -> Tensor:
    """Attention bias ``log M_c`` from mask weights ``(G, L)``: ``-inf`` where the weight is 0 (the key is excluded,
    as in the hard packing), otherwise ``log`` of the weight floored at the dtype's smallest normal number so that a
    positive weight that underflows stays a finite bias. One-hot weights give 0 on members and ``-inf`` elsewhere."""
    tiny = torch.finfo(weight.dtype).tiny
    return torch.where(weight > 0, weight.clamp_min(tiny).log(), torch.full_like(weight, float("-inf")))


SOFT_MASK_USES = ("attention_bias", "input_scale")


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
        soft_mask: how soft masks act inside the inner Transformer. ``"attention_bias"``: ``log M_c`` is added to the
            attention logits of every key (on top of the printed input scaling ``M_c * X``); ``"input_scale"``: only
            the printed scaling, which the pre-norm LayerNorms undo, so every location with ``M_c > 0`` is attended
            at full strength (paper-notes M9). Hard masks are unaffected by this switch; the average is weighted by
            ``M_c`` in both.
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
        soft_mask: str = "attention_bias",
    ) -> None:
        super().__init__()
        if soft_mask not in SOFT_MASK_USES:
            raise ValueError(f"soft_mask must be one of {SOFT_MASK_USES}, got {soft_mask!r}")
        self.kind = kind
        self.soft_mask = soft_mask
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
        u = self.cluster_tokens(x, masks, valid, packed=hard)  # (B, C, dim)
        v = self.inter(u, valid=valid)
        return v * valid[..., None], valid

    def cluster_tokens(self, x: Tensor, masks: Tensor, valid: Tensor, *, packed: bool) -> Tensor:
        """Inner-cluster Transformer + mask-weighted average: ``u_c`` of Sec. 2.1 for every real cluster.

        Args:
            x: ``(B, N, dim)`` projected (and position-embedded) features.
            masks: ``(B, N, C)``.
            valid: ``(B, C)`` real tokens.
            packed: pack each cluster's members (only for one-hot masks); otherwise every cluster sees all locations.

        Returns:
            ``u (B, C, dim)``, zero at padding.
        """
        b, _, c = masks.shape
        pack = pack_hard_clusters if packed else soft_cluster_sequences
        seq, weight, rows = pack(x, masks, valid)  # (G, L, dim), (G, L), (G,)
        bias = None if packed or self.soft_mask == "input_scale" else log_mask_bias(weight)  # (G, L)
        h = self.inner(seq, valid=weight > 0, key_bias=bias)  # (G, L, dim)
        pooled = (weight[..., None] * h).sum(1) / weight.sum(1, keepdim=True).clamp_min(1e-6)  # (G, dim)
        return x.new_zeros(b * c, x.shape[-1]).index_copy(0, rows, pooled).view(b, c, -1)  # (B, C, dim)
