"""Semantic-Guided Hierarchical Codebook (SemHiTok Sec. 3.2, Eq. 5) and its flattening (Sec. 3.3).

The pixel codebook is ``K`` sub-codebooks of ``m`` codes each, one per semantic code. A patch whose semantic index is
``k`` is quantized in sub-codebook ``k`` alone (Eq. 5):

    j = argmin_{j < m} || z_pix - C_k[j] ||^2,   z_q = C_k[j].

Flattened (Fig. 3b), the pair ``(k, j)`` is the single code ``k * m + j`` of a ``K * m`` codebook: the vocabulary the
unified MLLM predicts with one head.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from setok.modeling.quantizers import Quantized


def flatten_codes(semantic: Tensor, pixel: Tensor, sub_codebook_size: int) -> Tensor:
    """``(k, j) -> k * m + j`` (Sec. 3.3). Any shape; long."""
    return semantic.long() * sub_codebook_size + pixel.long()


def unflatten_codes(flat: Tensor, sub_codebook_size: int) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`flatten_codes`: ``flat -> (flat // m, flat % m)``."""
    flat = flat.long()
    return torch.div(flat, sub_codebook_size, rounding_mode="floor"), flat.remainder(sub_codebook_size)


class HierarchicalCodebook(nn.Module):
    """SGHC pixel codebook: ``(K, m, d)`` learned codes, quantization restricted by the semantic index.

    Args:
        num_semantic: ``K``, the semantic codebook size.
        sub_codebook_size: ``m``.
        dim: pixel code width ``d``.
        normalize: normalised VQ (Sec. 4.1: "the pixel sub-codebooks use normalized VQ"): inputs and codes on the
            unit sphere; False is vanilla VQ.
        commitment: ``beta`` of the commitment term.
    """

    def __init__(
        self, *, num_semantic: int, sub_codebook_size: int, dim: int, normalize: bool = True, commitment: float = 0.25
    ) -> None:
        super().__init__()
        self.num_semantic, self.m, self.dim = num_semantic, sub_codebook_size, dim
        self.normalize, self.commitment = normalize, commitment
        scale = 1.0 / (num_semantic * sub_codebook_size)
        self.embedding = nn.Parameter(torch.empty(num_semantic, sub_codebook_size, dim).uniform_(-scale, scale))

    @property
    def size(self) -> int:
        """Entries of the flattened codebook, ``K * m``."""
        return self.num_semantic * self.m

    def codes(self) -> Tensor:
        """``(K, m, d)`` the codes as used (normalised for normalised VQ)."""
        return F.normalize(self.embedding, dim=-1) if self.normalize else self.embedding

    def lookup(self, semantic: Tensor, pixel: Tensor) -> Tensor:
        """Codes ``C_k[j]`` for index pairs of any shape ``(...)`` -> ``(..., d)``."""
        return self.codes()[semantic.long(), pixel.long()]

    def forward(self, z: Tensor, semantic: Tensor) -> Quantized:
        """Eq. (5).

        Args:
            z: ``(N, d)`` continuous pixel features.
            semantic: ``(N,)`` semantic indices ``k`` of the same patches.

        Returns:
            :class:`Quantized` with ``indices`` the sub-codebook-internal ``j`` ``(N,)`` (flatten with
            :func:`flatten_codes`) and the codebook + commitment loss.
        """
        if self.normalize:
            z = F.normalize(z, dim=-1)
        sub = self.codes()[semantic.long()]  # (N, m, d): each patch sees only its semantic code's sub-codebook
        with torch.no_grad():
            s, q = sub.detach().float(), z.detach().float()
            j = (s.pow(2).sum(-1) - 2.0 * torch.einsum("nd,nmd->nm", q, s)).argmin(1)  # (N,), ||z||^2 dropped
        e = sub.gather(1, j[:, None, None].expand(-1, 1, self.dim))[:, 0].to(z.dtype)  # (N, d)
        loss = F.mse_loss(e, z.detach()) + self.commitment * F.mse_loss(z, e.detach())
        return Quantized(z_q=z + (e - z).detach(), indices=j, loss=loss)
