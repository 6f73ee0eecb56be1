"""Two-way Transformer of the SeTokIM mask decoder (Sec. 2.2, Appendix D.1; SAM, Kirillov et al. 2023).

"This decoder uses prompt self-attention and cross-attention in two directions (prompt-to-image embedding and
vice-versa) to update all embeddings." Each block updates the prompt tokens by self-attention, token-to-image
cross-attention and an MLP, then updates the image embedding by image-to-token cross-attention; a last
token-to-image attention follows the blocks. As in SAM, positional encodings are added to queries and keys but never
to values: the image's dense encoding, and for the tokens their own initial embeddings. Norms are post-norm.

Extension over SAM: the prompt tokens are the *generated* visual tokens of SeTokIM, whose number varies per sample.
They are padded to ``T`` and a ``(B, T)`` bool ``tokens_valid`` masks the padding out of every attention in which
tokens are keys, so padding never changes the outputs at valid tokens or at the image.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from setok.modeling.transformer import MLP


class ProjectedAttention(nn.Module):
    """Multi-head attention with separate query/key/value inputs, computed at width ``dim // downsample_rate``.

    Args:
        dim: width of the inputs and the output.
        heads: attention heads.
        downsample_rate: internal width divisor (SAM uses 2 for the cross-attentions, 1 for self-attention).
    """

    def __init__(self, *, dim: int, heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        inner = dim // downsample_rate
        if inner % heads:
            raise ValueError(f"internal width {inner} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, inner)
        self.k = nn.Linear(dim, inner)
        self.v = nn.Linear(dim, inner)
        self.out = nn.Linear(inner, dim)

    def forward(self, q: Tensor, k: Tensor, v: Tensor, key_valid: Tensor | None = None) -> Tensor:
        """Args:
            q: ``(B, Lq, D)`` queries.
            k: ``(B, Lk, D)`` keys.
            v: ``(B, Lk, D)`` values.
            key_valid: ``(B, Lk)`` bool, False for padding keys; every row needs one True.

        Returns: ``(B, Lq, D)``.
        """
        b, lq, _ = q.shape
        lk = k.shape[1]
        q = self.q(q).view(b, lq, self.heads, -1).transpose(1, 2)  # (B, h, Lq, d/h)
        k = self.k(k).view(b, lk, self.heads, -1).transpose(1, 2)  # (B, h, Lk, d/h)
        v = self.v(v).view(b, lk, self.heads, -1).transpose(1, 2)  # (B, h, Lk, d/h)
        mask = None if key_valid is None else key_valid[:, None, None, :]  # (B, 1, 1, Lk)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, Lq, d/h)
        return self.out(y.transpose(1, 2).reshape(b, lq, -1))  # (B, Lq, D)


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token-to-image attention, token MLP, image-to-token attention (each + residual + LN).

    Args:
        dim: embedding width.
        heads: attention heads.
        mlp_dim: hidden width of the token MLP.
        attention_downsample_rate: internal width divisor of the two cross-attentions.
        skip_first_layer_pe: the first block's self-attention sees the raw tokens, without positional encodings and
            without a residual connection (as in SAM).
    """

    def __init__(
        self,
        *,
        dim: int,
        heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:
        super().__init__()
        self.skip_first_layer_pe = skip_first_layer_pe
        self.self_attn = ProjectedAttention(dim=dim, heads=heads)
        self.norm1 = nn.LayerNorm(dim)
        self.token_to_image = ProjectedAttention(dim=dim, heads=heads, downsample_rate=attention_downsample_rate)
        self.norm2 = nn.LayerNorm(dim)
        # SAM's TwoWayTransformer MLP: ReLU (its default activation); +0.5: int(dim * ratio) == mlp_dim despite rounding
        self.mlp = MLP(dim=dim, mlp_ratio=(mlp_dim + 0.5) / dim, activation=nn.ReLU)
        self.norm3 = nn.LayerNorm(dim)
        self.image_to_token = ProjectedAttention(dim=dim, heads=heads, downsample_rate=attention_downsample_rate)
        self.norm4 = nn.LayerNorm(dim)

    def forward(
        self, tokens: Tensor, image: Tensor, token_pe: Tensor, image_pe: Tensor, tokens_valid: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Args:
            tokens: ``(B, T, D)`` prompt tokens (queries of the first three steps).
            image: ``(B, N, D)`` flattened image embedding.
            token_pe: ``(B, T, D)`` positional encoding of the tokens (their initial embeddings).
            image_pe: ``(B, N, D)`` or ``(1, N, D)`` dense positional encoding of the image grid.
            tokens_valid: ``(B, T)`` bool, False at padding tokens; None when all are valid.

        Returns: updated ``tokens (B, T, D)`` and ``image (B, N, D)``.
        """
        if self.skip_first_layer_pe:
            tokens = self.self_attn(tokens, tokens, tokens, tokens_valid)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens, tokens_valid)
        tokens = self.norm1(tokens)
        keys = image + image_pe
        tokens = self.norm2(tokens + self.token_to_image(tokens + token_pe, keys, image))
        tokens = self.norm3(tokens + self.mlp(tokens))
        image = self.norm4(image + self.image_to_token(keys, tokens + token_pe, tokens, tokens_valid))
        return tokens, image


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks ("After running two blocks", App. D.1) and a final token-to-image attention.

    Args:
        depth: number of :class:`TwoWayAttentionBlock` s (2 in the paper).
        dim: embedding width.
        heads: attention heads.
        mlp_dim: hidden width of the token MLPs.
        attention_downsample_rate: internal width divisor of the cross-attentions (2, as SAM).
    """

    def __init__(
        self, *, depth: int = 2, dim: int, heads: int, mlp_dim: int, attention_downsample_rate: int = 2
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TwoWayAttentionBlock(
                dim=dim,
                heads=heads,
                mlp_dim=mlp_dim,
                attention_downsample_rate=attention_downsample_rate,
                skip_first_layer_pe=i == 0,
            )
            for i in range(depth)
        )
        self.final_token_to_image = ProjectedAttention(dim=dim, heads=heads, downsample_rate=attention_downsample_rate)
        self.norm_final = nn.LayerNorm(dim)

    def forward(
        self, image: Tensor, image_pe: Tensor, tokens: Tensor, tokens_valid: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Args:
            image: ``(B, N, D)`` flattened image embedding (``N = h * w``, row-major).
            image_pe: ``(B, N, D)`` or ``(1, N, D)`` dense positional encoding of the image grid.
            tokens: ``(B, T, D)`` prompt tokens, padding included.
            tokens_valid: ``(B, T)`` bool, False at padding; every row needs one True (None: all valid).

        Returns: ``tokens (B, T, D)`` and ``image (B, N, D)``; padded rows of ``tokens`` are meaningless.
        """
        token_pe = tokens
        image_pe = image_pe.expand_as(image)  # (B, N, D)
        for blk in self.blocks:
            tokens, image = blk(tokens, image, token_pe, image_pe, tokens_valid)
        attn = self.final_token_to_image(tokens + token_pe, image + image_pe, image)
        return self.norm_final(tokens + attn), image
