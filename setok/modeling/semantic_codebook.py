"""SemHiTok's semantic codebook (Sec. 3.1, Eq. 1-4), trained by semantic distillation after VQKD.

    X_sem = E_sem(I)                        (1)  frozen SigLIP patch features, (B, h*w, D)
    k, z_q = Q(W_in X_sem)                  (2)  projection to the code width d, then nearest code
    L_distill = D(X_sem, D_sem(z_q))        (3)  the decoder reconstructs the SigLIP features

``D`` is ``1 - cos`` per patch (VQKD's loss; ``distill="mse"`` for the squared error), averaged over patches.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from setok.modeling.transformer import Transformer


@dataclass
class SemanticOutput:
    """Attributes: indices ``(B, N)``; z_q ``(B, N, d)``; recon ``(B, N, D)``; distill, vq_loss: scalars."""

    indices: Tensor
    z_q: Tensor
    recon: Tensor
    distill: Tensor
    vq_loss: Tensor


def distill_loss(recon: Tensor, target: Tensor, *, kind: str = "cosine") -> Tensor:
    """Eq. (3): ``mean_i (1 - cos(recon_i, target_i))`` (or the mean squared error). Shapes ``(B, N, D)``."""
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(recon.float(), target.float(), dim=-1)).mean()
    return F.mse_loss(recon.float(), target.float())


class SemanticCodebook(nn.Module):
    """Projection ``W_in`` + quantizer ``Q`` + semantic decoder ``D_sem`` (3 self-attention layers).

    Args:
        quantizer: a :mod:`setok.modeling.quantizers` module of code width ``d``.
        feature_dim: SigLIP's width ``D``.
        num_patches: ``h*w`` (learned position embeddings of the decoder).
        decoder_dim, decoder_layers, decoder_heads: the decoder.
        distill: ``cosine`` | ``mse`` (Eq. 3).
    """

    def __init__(
        self, *, quantizer: nn.Module, feature_dim: int, num_patches: int, decoder_dim: int, decoder_layers: int,
        decoder_heads: int, distill: str = "cosine",
    ) -> None:
        super().__init__()
        self.quantizer = quantizer
        self.distill_kind = distill
        code_dim = quantizer.dim
        self.proj_in = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, code_dim))
        self.dec_in = nn.Linear(code_dim, decoder_dim)
        self.pos = nn.Parameter(torch.randn(1, num_patches, decoder_dim) * 0.02)
        self.decoder = Transformer(dim=decoder_dim, layers=decoder_layers, heads=decoder_heads)
        self.dec_out = nn.Linear(decoder_dim, feature_dim)

    @property
    def code_dim(self) -> int:
        return int(self.quantizer.dim)

    def quantize(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Eq. (2). Args: features ``(B, N, D)``. Returns ``(indices (B, N), z_q (B, N, d), vq loss)``."""
        b, n, _ = features.shape
        q = self.quantizer(self.proj_in(features).reshape(b * n, -1))
        return q.indices.view(b, n), q.z_q.view(b, n, -1), q.loss

    def lookup(self, indices: Tensor) -> Tensor:
        """``(B, N)`` -> ``(B, N, d)`` code vectors (normalised for the norm VQ)."""
        return self.quantizer.lookup(indices)

    def decode(self, z_q: Tensor) -> Tensor:
        """``D_sem``: ``(B, N, d)`` -> ``(B, N, D)`` reconstructed SigLIP features."""
        return self.dec_out(self.decoder(self.dec_in(z_q) + self.pos))

    def forward(self, features: Tensor) -> SemanticOutput:
        """Eq. (1)-(3) on SigLIP features ``(B, N, D)``."""
        idx, z_q, vq_loss = self.quantize(features)
        recon = self.decode(z_q)
        return SemanticOutput(indices=idx, z_q=z_q, recon=recon, vq_loss=vq_loss,
                              distill=distill_loss(recon, features.detach(), kind=self.distill_kind))
