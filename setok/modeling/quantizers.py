"""Vector quantizers of SemHiTok's semantic codebook (Sec. 3.1, Table 9: EMA / vanilla / norm VQ).

Each maps continuous vectors ``z`` to their nearest code ``e_k`` (Eq. 2) and returns the straight-through quantized
vectors, the indices and the training loss:

* :class:`VectorQuantizer` ("vanilla", VQ-VAE): codes are parameters learned by the codebook loss
  ``||sg(z) - e||^2``; the encoder gets the commitment loss ``beta ||z - sg(e)||^2``.
* :class:`NormVectorQuantizer` ("norm", ViT-VQGAN / LlamaGen): the same on l2-normalised ``z`` and codes, so the
  nearest code is the one of highest cosine similarity.
* :class:`EMAVectorQuantizer` ("ema", SemHiTok's default): codes are buffers moved by Eq. (4),
  ``e_k^t = gamma e_k^(t-1) + (1 - gamma) mean{z_i : k_i = k}``, for every code that received at least one vector in
  the update (over all ranks); only the commitment loss has a gradient.

Distances are computed in float32 whatever the module's precision, and the EMA codebook stays float32 when the module
is cast to bf16 (DeepSpeed casts every floating buffer), since a bf16 running mean loses the ``(1 - gamma)`` updates.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Quantized:
    """Output of a quantizer for ``N`` vectors of width ``d``.

    Attributes:
        z_q: ``(N, d)`` quantized vectors with the straight-through gradient (``z + sg(e - z)``).
        indices: ``(N,)`` long, the chosen codes.
        loss: scalar, codebook + commitment loss (commitment alone for EMA).
    """

    z_q: Tensor
    indices: Tensor
    loss: Tensor


def nearest_code(z: Tensor, codebook: Tensor) -> Tensor:
    """Eq. (2): ``argmin_k ||z_i - e_k||^2``. ``z``: ``(N, d)``, ``codebook``: ``(K, d)``. Returns ``(N,)`` long.

    ``||z||^2`` is the same for every code, so it is left out of the argmin; ties go to the lowest index.
    """
    z, codebook = z.float(), codebook.float()
    d = codebook.pow(2).sum(1)[None, :] - 2.0 * z @ codebook.t()  # (N, K)
    return d.argmin(1)


def _all_reduce(t: Tensor) -> Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t


class VectorQuantizer(nn.Module):
    """Vanilla VQ: learned codebook, codebook + commitment loss.

    Args:
        num_codes: ``K``.
        dim: code width ``d``.
        commitment: ``beta``.
    """

    normalize = False

    def __init__(self, *, num_codes: int, dim: int, commitment: float = 0.25) -> None:
        super().__init__()
        self.num_codes, self.dim, self.commitment = num_codes, dim, commitment
        self.embedding = nn.Parameter(torch.empty(num_codes, dim).uniform_(-1.0 / num_codes, 1.0 / num_codes))

    @property
    def codebook(self) -> Tensor:
        """``(K, d)`` the codes as used (normalised for the norm VQ)."""
        e = self.embedding
        return F.normalize(e, dim=-1) if self.normalize else e

    def lookup(self, indices: Tensor) -> Tensor:
        """``(...,)`` indices -> ``(..., d)`` codes."""
        return self.codebook[indices]

    def forward(self, z: Tensor) -> Quantized:
        """Args: z ``(N, d)``. Returns :class:`Quantized`."""
        if self.normalize:
            z = F.normalize(z, dim=-1)
        codebook = self.codebook
        idx = nearest_code(z.detach(), codebook.detach())
        e = codebook[idx].to(z.dtype)
        loss = F.mse_loss(e, z.detach()) + self.commitment * F.mse_loss(z, e.detach())
        return Quantized(z_q=z + (e - z).detach(), indices=idx, loss=loss)


class NormVectorQuantizer(VectorQuantizer):
    """VQ on the unit sphere: inputs and codes are l2-normalised before the nearest-code search and the losses."""

    normalize = True


class EMAVectorQuantizer(nn.Module):
    """EMA VQ (Eq. 4) with dead-code restarts.

    Args:
        num_codes: ``K``.
        dim: code width ``d``.
        decay: ``gamma`` of Eq. (4).
        commitment: ``beta`` of the commitment loss (the only loss term; codes get no gradient).
        dead_code_threshold: a code whose usage EMA (``gamma``-averaged assignments per update, over all ranks) is
            below this is moved onto a random input vector of the batch; 0 disables restarts.

    The update runs in ``forward`` in training mode only, so a frozen quantizer (``eval()``) never changes.
    """

    def __init__(
        self, *, num_codes: int, dim: int, decay: float = 0.99, commitment: float = 0.25,
        dead_code_threshold: float = 1e-3,
    ) -> None:
        super().__init__()
        self.num_codes, self.dim, self.decay, self.commitment = num_codes, dim, decay, commitment
        self.dead_code_threshold = dead_code_threshold
        self.register_buffer("embedding", torch.randn(num_codes, dim))
        self.register_buffer("usage", torch.zeros(num_codes))

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> EMAVectorQuantizer:
        """Keep the running codebook and usage in float32 through ``.to(dtype)`` / ``.bfloat16()`` casts."""
        super()._apply(fn, recurse)
        for name in ("embedding", "usage"):
            buf = self._buffers[name]
            if buf is not None and buf.dtype != torch.float32:
                self._buffers[name] = buf.float()
        return self

    @property
    def codebook(self) -> Tensor:
        return self.embedding

    def lookup(self, indices: Tensor) -> Tensor:
        return self.embedding[indices]

    @torch.no_grad()
    def ema_update(self, z: Tensor, indices: Tensor) -> None:
        """Eq. (4) for one batch: ``z`` ``(N, d)``, ``indices`` ``(N,)``; sums and counts are all-reduced first."""
        z = z.float()
        counts = torch.zeros(self.num_codes, device=z.device).index_add_(0, indices, z.new_ones(indices.shape))
        sums = torch.zeros_like(self.embedding).index_add_(0, indices, z)
        _all_reduce(counts)
        _all_reduce(sums)
        hit = counts > 0
        means = sums[hit] / counts[hit, None]
        self.embedding[hit] = self.decay * self.embedding[hit] + (1.0 - self.decay) * means
        self.usage.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        if self.dead_code_threshold > 0:
            self._restart_dead_codes(z)

    def _restart_dead_codes(self, z: Tensor) -> None:
        """Move dead codes onto random batch vectors (rank 0's draw, broadcast so every rank holds the same codes)."""
        dead = self.usage < self.dead_code_threshold  # identical on every rank: usage comes from all-reduced counts
        n = int(dead.sum())
        if n == 0:
            return
        pick = torch.randint(0, z.shape[0], (n,), device=z.device)
        self.embedding[dead] = z[pick]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast(self.embedding, src=0)
        self.usage[dead] = 1.0  # a grace period of about log(threshold) / log(gamma) updates before the next check

    def forward(self, z: Tensor) -> Quantized:
        """Args: z ``(N, d)``. Returns :class:`Quantized` (loss: the commitment term alone)."""
        idx = nearest_code(z.detach(), self.embedding)
        e = self.embedding[idx].to(z.dtype)  # the codes before this batch's update (VQ-VAE's order)
        if self.training:
            self.ema_update(z.detach(), idx)
        loss = self.commitment * F.mse_loss(z, e)
        return Quantized(z_q=z + (e - z).detach(), indices=idx, loss=loss)


def build_quantizer(
    kind: str, *, num_codes: int, dim: int, decay: float = 0.99, commitment: float = 0.25,
    dead_code_threshold: float = 1e-3,
) -> nn.Module:
    """``kind``: ``ema`` | ``vanilla`` | ``norm`` (Table 9 "VQ Type")."""
    if kind == "ema":
        return EMAVectorQuantizer(num_codes=num_codes, dim=dim, decay=decay, commitment=commitment,
                                  dead_code_threshold=dead_code_threshold)
    if kind == "vanilla":
        return VectorQuantizer(num_codes=num_codes, dim=dim, commitment=commitment)
    if kind == "norm":
        return NormVectorQuantizer(num_codes=num_codes, dim=dim, commitment=commitment)
    raise ValueError(f"unknown VQ kind {kind!r} (ema, vanilla, norm)")


class CodeUsage:
    """Codebook usage as Table 9 reports it: the share of the ``size`` codes chosen at least once over a dataset.

    Feed every batch's indices with :meth:`update`; :attr:`usage` is ``#distinct codes / size``. Also keeps the
    counts (for the usage histograms of the report) and the perplexity ``exp(H(p))`` of the code distribution.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.counts = torch.zeros(size, dtype=torch.long)

    def update(self, indices: Tensor) -> None:
        idx = indices.reshape(-1).long().cpu()
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.size):
            raise ValueError(f"code index out of range [0, {self.size})")
        self.counts += torch.bincount(idx, minlength=self.size)

    @property
    def usage(self) -> float:
        return float((self.counts > 0).sum()) / self.size

    @property
    def perplexity(self) -> float:
        total = self.counts.sum()
        if total == 0:
            return 0.0
        p = self.counts[self.counts > 0].double() / total
        return float(torch.exp(-(p * p.log()).sum()))
