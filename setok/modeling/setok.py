"""SeTok: the semantic-equivalent vision tokenizer (Sec. 2.1, Figure 2).

image -> vision encoder -> Token Cluster (Algorithm 1) -> Token Merger -> tokens V -> Detokenizer -> image.
The tokens are also projected into the text embedding space for the concept-level contrastive loss (App. C.2) and for
zero-shot classification.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from setok.modeling.backbone import VisionEncoder
from setok.modeling.clustering import ClusterOutput, cluster
from setok.modeling.detokenizer import Detokenizer
from setok.modeling.token_merger import TokenMerger


@dataclass
class Tokens:
    """SeTok's output for a batch.

    Attributes:
        tokens: ``(B, C, dim)`` semantic-equivalent tokens ``V`` (zero at padding).
        valid: ``(B, C)`` bool.
        clusters: the clustering (masks ``(B, h*w, C)``, token counts).
        grid: ``(h, w)`` patch grid of the encoder.
        features: ``(B, h, w, d)`` the vision encoder's patch embeddings (the mask decoder's image embedding).
    """

    tokens: Tensor
    valid: Tensor
    clusters: ClusterOutput
    grid: tuple[int, int]
    features: Tensor | None = None

    @property
    def num_tokens(self) -> Tensor:
        return self.clusters.num_tokens


class SeTok(nn.Module):
    """Semantic-Equivalent vision Tokenizer.

    Args:
        encoder: the vision encoder giving ``(B, h, w, d)`` patch embeddings.
        merger: the Token Merger.
        detokenizer: the Detokenizer.
        embed_dim: width of the text embedding space (contrastive loss, zero-shot classification).
        clustering: keyword arguments of :func:`setok.modeling.clustering.cluster`.
        temperature: initial ``tau`` of Eq. (5)-(6).
        learn_temperature: learn ``log(1 / tau)`` as CLIP does.
        max_logit_scale: ``1 / tau`` is clamped at this value in the loss (CLIP's and the official code's 100);
            None: never clamped.
        image_embedding: ``"mean"`` (mean of the valid tokens' projections) or ``"max_token"``.
    """

    def __init__(
        self,
        *,
        encoder: VisionEncoder,
        merger: TokenMerger,
        detokenizer: Detokenizer,
        embed_dim: int,
        clustering: dict[str, Any],
        temperature: float = 0.07,
        learn_temperature: bool = True,
        max_logit_scale: float | None = 100.0,
        image_embedding: str = "mean",
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.merger = merger
        self.detokenizer = detokenizer
        self.clustering = dict(clustering)
        self.image_embedding = image_embedding
        token_dim = merger.proj.out_features
        self.text_projection = nn.Linear(token_dim, embed_dim)
        # Shape (1,), not a scalar: DeepSpeed broadcasts parameters as byte views, which 0-d tensors cannot give.
        self.logit_scale = nn.Parameter(torch.full((1,), math.log(1.0 / temperature)), requires_grad=learn_temperature)
        self.max_logit_scale = max_logit_scale

    def contrastive_scale(self) -> Tensor:
        """``1 / tau`` of Eq. (5)-(6), ``(1,)``: ``exp(logit_scale)`` clamped at ``max_logit_scale`` (no gradient to
        the temperature while clamped, as CLIP)."""
        scale = self.logit_scale.exp()
        return scale if self.max_logit_scale is None else scale.clamp(max=self.max_logit_scale)

    def tokenize(self, images: Tensor) -> Tokens:
        """Args: images ``(B, 3, S, S)`` in [0, 1]. Returns :class:`Tokens`."""
        feats = self.encoder(images)  # (B, h, w, d)
        b, h, w, d = feats.shape
        clusters = cluster(feats.detach(), **self.clustering)  # assignments carry no gradient
        v, valid = self.merger(feats.reshape(b, h * w, d), (h, w), clusters.masks, clusters.num_tokens)
        return Tokens(tokens=v, valid=valid, clusters=clusters, grid=(h, w), features=feats)

    def detokenize(self, tokens: Tensor, valid: Tensor) -> Tensor:
        """Args: tokens ``(B, C, dim)``, valid ``(B, C)``. Returns images ``(B, 3, S', S')`` in [-1, 1] scale."""
        return self.detokenizer(tokens, valid)

    def embed(self, tokens: Tensor, valid: Tensor) -> Tensor:
        """Image embedding in the text space: ``(B, E)`` for "mean", ``(B, C, E)`` for "max_token" (unit norm;
        padding tokens get a copy of the first token so a max never picks them)."""
        z = F.normalize(self.text_projection(tokens), dim=-1)  # (B, C, E)
        if self.image_embedding == "max_token":
            return torch.where(valid[..., None], z, z[:, :1])
        w = valid.to(z.dtype)[..., None]
        return F.normalize((z * w).sum(1) / w.sum(1).clamp_min(1.0), dim=-1)

    def forward(self, images: Tensor) -> tuple[Tokens, Tensor]:
        """Tokenize and reconstruct. Returns ``(tokens, reconstruction (B, 3, S', S'))``."""
        tok = self.tokenize(images)
        return tok, self.detokenize(tok.tokens, tok.valid)
