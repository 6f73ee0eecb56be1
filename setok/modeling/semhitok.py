"""SemHiTok: a unified image tokenizer via a semantic-guided hierarchical codebook (Sec. 3, Fig. 3a).

    image -> frozen SigLIP -> semantic codebook -> semantic index k and code z_sem      (Sec. 3.1, Eq. 1-2)
          -> pixel ViT encoder -> SGHC sub-codebook k -> pixel index j and code z_pix  (Sec. 3.2, Eq. 5)
    [z_sem ; z_pix] -> pixel ViT decoder -> image                                      (Eq. 6)

Each patch is one discrete token, the flattened code ``k * m + j`` (Sec. 3.3). ``concat`` selects the decoder input
of Table 9: ``dim`` (the paper's: per patch, channels concatenated), ``length`` (the semantic and the pixel codes as
two sequences, ``2 h w`` tokens) or ``none`` (pixel codes alone); ``sghc=False`` (Table 7 row 1) has no pixel branch
and decodes the semantic codes alone.

Training stages (Sec. 4.1) choose what learns with :meth:`SemHiTok.set_stage`; frozen parts stay in eval mode, so the
EMA semantic codebook cannot move while the pixel branch trains.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from setok.modeling.backbone import VisionEncoder
from setok.modeling.hierarchical_codebook import HierarchicalCodebook, flatten_codes
from setok.modeling.semantic_codebook import SemanticCodebook, SemanticOutput
from setok.modeling.vit import ViTDecoder, ViTEncoder

# What each stage trains (Sec. 4.1 stage table: "Semantic Modules", "Pixel Modules", "Pixel Decoder").
TRAINABLE = {
    "semantic_codebook": ("semantic",),
    "pixel_codebook": ("pixel_encoder", "sghc", "pixel_decoder"),
    "pixel_finetune": ("pixel_encoder", "sghc", "pixel_decoder"),
    "pixel_decoder": ("pixel_decoder",),
}


@dataclass
class Codes:
    """Discrete tokens of a batch. Attributes: semantic ``(B, N)``; pixel ``(B, N)`` or None (no SGHC); grid."""

    semantic: Tensor
    pixel: Tensor | None
    grid: tuple[int, int]


@dataclass
class PixelOutput:
    """Attributes: recon ``(B, 3, S, S)`` in [-1, 1]; target the same; codes; vq_loss scalar (pixel codebook)."""

    recon: Tensor
    target: Tensor
    codes: Codes
    vq_loss: Tensor


class SemHiTok(nn.Module):
    """Args:
        semantic_encoder: frozen SigLIP tower giving ``(B, h, w, D)``.
        semantic: the semantic codebook (projection, quantizer, decoder).
        pixel_encoder: ViT encoder with ``out_dim`` = pixel code width (None without SGHC).
        sghc: the hierarchical pixel codebook (None without SGHC).
        pixel_decoder: ViT decoder whose input matches ``concat``.
        grid: the patch grid ``(h, w)`` shared by both branches.
        patch: the pixel branch's patch side (output images are ``grid * patch`` pixels).
        concat: ``dim`` | ``length`` | ``none``.
    """

    def __init__(
        self, *, semantic_encoder: VisionEncoder, semantic: SemanticCodebook, pixel_encoder: ViTEncoder | None,
        sghc: HierarchicalCodebook | None, pixel_decoder: ViTDecoder, grid: tuple[int, int], patch: int,
        concat: str = "dim",
    ) -> None:
        super().__init__()
        if (pixel_encoder is None) != (sghc is None):
            raise ValueError("the pixel encoder and the SGHC come together")
        self.semantic_encoder = semantic_encoder.requires_grad_(False)
        self.semantic = semantic
        self.pixel_encoder = pixel_encoder
        self.sghc = sghc
        self.pixel_decoder = pixel_decoder
        self.grid, self.patch, self.concat = grid, patch, concat
        self.stage = "semantic_codebook"

    # ------------------------------------------------------------------------------------------- stages

    def set_stage(self, stage: str) -> SemHiTok:
        """Freeze everything but the stage's modules (TRAINABLE); frozen modules stay in eval mode."""
        if stage not in TRAINABLE:
            raise ValueError(f"unknown SemHiTok stage {stage!r} ({', '.join(TRAINABLE)})")
        self.stage = stage
        self.requires_grad_(False)
        for name in TRAINABLE[stage]:
            module = getattr(self, name)
            if module is not None:
                module.requires_grad_(True)
        return self.train(self.training)

    def train(self, mode: bool = True) -> SemHiTok:
        super().train(mode)
        trainable = TRAINABLE[self.stage]
        for name, module in self.named_children():
            if name not in trainable:
                module.eval()  # the frozen SigLIP, and a frozen EMA codebook that must not update
        return self

    # ------------------------------------------------------------------------------------------- tokenizer API

    @property
    def sub_codebook_size(self) -> int:
        return 1 if self.sghc is None else self.sghc.m

    @property
    def vocab_size(self) -> int:
        """Entries of the flattened codebook ``K * m`` (``K`` without SGHC)."""
        return int(self.semantic.quantizer.num_codes) * self.sub_codebook_size

    @property
    def image_size(self) -> int:
        """Side of the reconstructed images, ``grid * patch``."""
        return self.grid[0] * self.patch

    def semantic_features(self, images: Tensor) -> Tensor:
        """Eq. (1): ``(B, 3, S, S)`` in [0, 1] -> SigLIP features ``(B, h*w, D)`` (no gradient: the encoder is
        frozen)."""
        with torch.no_grad():
            f = self.semantic_encoder(images)
        if tuple(f.shape[1:3]) != self.grid:
            raise ValueError(f"the semantic encoder gives a {tuple(f.shape[1:3])} grid, expected {self.grid}")
        return f.flatten(1, 2)

    def pixel_input(self, images: Tensor) -> Tensor:
        """Images in [0, 1] -> the pixel branch's input and reconstruction target: [-1, 1] at ``grid * patch`` px."""
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = F.interpolate(images.float(), size=(self.image_size,) * 2, mode="bicubic", antialias=True,
                                   align_corners=False).clamp(0, 1).to(images.dtype)
        return images * 2 - 1

    def encode(self, images: Tensor) -> Codes:
        """Images ``(B, 3, S, S)`` in [0, 1] -> :class:`Codes`."""
        sem, _, _ = self.semantic.quantize(self.semantic_features(images))
        if self.sghc is None:
            return Codes(semantic=sem, pixel=None, grid=self.grid)
        b, n = sem.shape
        z = self.pixel_encoder(self.pixel_input(images))  # (B, N, d_pix)
        q = self.sghc(z.reshape(b * n, -1), sem.reshape(-1))
        return Codes(semantic=sem, pixel=q.indices.view(b, n), grid=self.grid)

    def flat(self, codes: Codes) -> Tensor:
        """The flattened token ids ``k * m + j`` ``(B, N)`` (``k`` without SGHC)."""
        if codes.pixel is None:
            return codes.semantic
        return flatten_codes(codes.semantic, codes.pixel, self.sub_codebook_size)

    def code_features(self, codes: Codes) -> tuple[Tensor, Tensor | None]:
        """The quantized features the MLLM's Dual-MLP adapter reads: ``(B, N, d_sem)`` and ``(B, N, d_pix)``."""
        sem = self.semantic.lookup(codes.semantic)
        pix = None if codes.pixel is None else self.sghc.lookup(codes.semantic, codes.pixel)
        return sem, pix

    def decoder_input(self, z_sem: Tensor, z_pix: Tensor | None) -> Tensor:
        """Eq. (6) input for ``concat``: ``(B, N, d_sem + d_pix)`` (dim), ``(B, 2N, d_sem + d_pix)`` with each
        sequence in its own channels (length: one linear layer over it = a projection per code type), ``(B, N,
        d_pix)`` (none) or ``(B, N, d_sem)`` (no SGHC)."""
        if z_pix is None:
            return z_sem
        z_pix = z_pix.to(z_sem.dtype)
        if self.concat == "dim":
            return torch.cat([z_sem, z_pix], dim=-1)
        if self.concat == "length":
            return torch.cat([F.pad(z_sem, (0, z_pix.shape[-1])), F.pad(z_pix, (z_sem.shape[-1], 0))], dim=1)
        return z_pix

    def decode(self, codes: Codes) -> Tensor:
        """:class:`Codes` -> images ``(B, 3, S', S')`` in [-1, 1] scale (the decoder's precision: the codebooks the
        codes are looked up in stay float32 in a bf16 tokenizer, as training's straight-through codes do not)."""
        z_sem, z_pix = self.code_features(codes)
        x = self.decoder_input(z_sem, z_pix)
        return self.pixel_decoder(x.to(next(self.pixel_decoder.parameters()).dtype))

    # ------------------------------------------------------------------------------------------- training

    def forward_semantic(self, images: Tensor) -> SemanticOutput:
        """Semantic codebook training (Eq. 1-4): distillation from the frozen SigLIP."""
        return self.semantic(self.semantic_features(images))

    def forward_pixel(self, images: Tensor) -> PixelOutput:
        """Pixel reconstruction enablement (Eq. 5-6): the semantic indices and codes come from the frozen branch."""
        with torch.no_grad():
            sem, z_sem, _ = self.semantic.quantize(self.semantic_features(images))
        target = self.pixel_input(images)
        if self.sghc is None:
            recon = self.pixel_decoder(self.decoder_input(z_sem, None))
            return PixelOutput(recon=recon, target=target, codes=Codes(sem, None, self.grid),
                               vq_loss=recon.new_zeros(()))
        b, n = sem.shape
        z = self.pixel_encoder(target)
        q = self.sghc(z.reshape(b * n, -1), sem.reshape(-1))
        recon = self.pixel_decoder(self.decoder_input(z_sem, q.z_q.view(b, n, -1)))
        return PixelOutput(recon=recon, target=target, codes=Codes(sem, q.indices.view(b, n), self.grid),
                           vq_loss=q.loss)

    def forward(self, images: Tensor) -> SemanticOutput | PixelOutput:
        """The current stage's forward pass (what a DeepSpeed engine calls)."""
        if self.stage == "semantic_codebook":
            return self.forward_semantic(images)
        return self.forward_pixel(images)
