"""From a loaded micro-batch to SeTokIM's packed sequence: tokenize images with the frozen SeTok, render the chat
template, pick the tokens of a referred region, pack.

Referring segmentation (docs/paper-notes.md S4): the assistant's "image" is the set of SeTok tokens of the input
image whose cluster lies at least ``overlap`` inside the object (the token with the largest overlap when none does);
the LLM learns to generate them and the mask decoder learns the object mask from them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from setok.data.multimodal_loader import RawBatch
from setok.data.templates import EOS, Template, render
from setok.modeling.mllm import MultimodalBatch, Segment, pack_sequences
from setok.modeling.patch_extent import pooled_over_grid


@dataclass(frozen=True)
class SpecialIds:
    """Token ids the packer needs."""

    img_start: int
    img_end: int
    pad: int
    eos: int
    bos: int | None


def region_tokens(masks: Tensor, valid: Tensor, coverage: Tensor, *, overlap: float) -> Tensor:
    """Select the tokens of a referred object.

    Args:
        masks: ``(N, P, C)`` cluster assignments (``P = h*w`` locations; rows sum to 1 over valid tokens).
        valid: ``(N, C)`` bool, real tokens.
        coverage: ``(N, P)`` fraction of each location the object covers, in [0, 1].
        overlap: a token is selected when ``sum_p m_pc r_p / sum_p m_pc >= overlap``.

    Returns: ``(N, C)`` bool; at least one token per row (the best-overlapping valid one).
    """
    inside = torch.einsum("npc,np->nc", masks.float(), coverage.float())  # (N, C)
    area = masks.float().sum(1).clamp_min(1e-6)  # (N, C)
    frac = torch.where(valid, inside / area, torch.full_like(inside, -1.0))  # (N, C)
    chosen = (frac >= overlap) & valid
    best = F.one_hot(frac.argmax(1), frac.shape[1]).bool()  # (N, C)
    return torch.where(chosen.any(1, keepdim=True), chosen, best & valid)


def pooled_coverage(regions: Tensor, grid: tuple[int, int]) -> Tensor:
    """``(N, S, S)`` coverage maps -> ``(N, h*w)`` per-patch coverage: the area average over the pixels each patch
    reads (the ``(h, w)`` grid covers the top-left ``h * p`` x ``w * p`` pixels, :mod:`setok.modeling.patch_extent`)."""
    return pooled_over_grid(regions, grid, grid).flatten(1)


def mask_target(regions: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """The mask decoder's target: ``(N, S, S)`` coverage maps -> ``(N, H', W')`` bool on its ``size`` output grid.

    The area average of the pixels the patch grid covers (the decoder's cells tile those, not the whole image),
    thresholded at 0.5 (docs/paper-notes.md S14).
    """
    return pooled_over_grid(regions, grid, size) > 0.5


def image_token_lists(tok_tokens: Tensor, tok_valid: Tensor, selected: Tensor | None, *, limit: int) -> list[Tensor]:
    """``(N, C, D)`` padded tokens -> N tensors ``(C_i, D)`` of the valid (and, when given, selected) tokens, cut to
    ``limit``."""
    keep = tok_valid if selected is None else tok_valid & selected
    return [t[k][:limit] for t, k in zip(tok_tokens, keep)]


def build_sequences(
    raw: RawBatch,
    image_tokens: Sequence[Tensor],
    *,
    template: Template,
    drop: Sequence[bool],
    tokenize: Callable[[str], list[int]],
    ids: SpecialIds,
    token_dim: int,
    max_length: int,
) -> MultimodalBatch:
    """Render every sample with ``template`` and pack it (right-padded).

    Args:
        raw: the loaded micro-batch.
        image_tokens: one ``(C_i, D)`` tensor per image of ``raw`` (its tokens, or its region's tokens), or one
            ``(N,)`` long tensor of discrete codes (SemHiTok).
        template: the chat template.
        drop: per sample, whether the condition is dropped (classifier-free guidance).
        tokenize, ids: the LLM tokenizer.
        token_dim: width of the visual tokens.
        max_length: sequences are cut to this many positions, at a segment boundary when the cut falls in an image
            (LLaVA truncates at ``model_max_length`` the same way, without splitting images).
    """
    rows: list[list[Segment]] = []
    kept: list[int] = []  # images that made it into the sequences (a cut may leave later ones out)
    k = 0
    for sample, dropped in zip(raw.samples, drop):
        segments: list[Segment] = []
        length = 0 if ids.bos is None else 1
        for piece in render(sample, template, drop_condition=dropped):
            if piece.content is EOS:
                seg = Segment(ids=[ids.eos], train=piece.train)
                n = 1
            elif isinstance(piece.content, str):
                toks = tokenize(piece.content)
                seg, n = Segment(ids=toks, train=piece.train), len(toks)
            else:
                tokens = image_tokens[k]
                k += 1
                # Continuous tokens (SeTok) or discrete codes (SemHiTok, a long tensor).
                seg = Segment(tokens=tokens, train=piece.train) if tokens.is_floating_point() else \
                    Segment(codes=tokens, train=piece.train)
                n = tokens.shape[0] + 2
                if length + n <= max_length:
                    kept.append(k - 1)
            if length + n > max_length:
                if seg.ids is not None and length < max_length:
                    segments.append(Segment(ids=seg.ids[: max_length - length], train=seg.train))
                length = max_length
                continue  # later images must still be consumed from image_tokens
            segments.append(seg)
            length += n
        rows.append(segments)
    if k != len(image_tokens):
        raise ValueError(f"{len(image_tokens)} images given, the samples reference {k}")
    batch = pack_sequences(rows, tokenize=tokenize, img_start_id=ids.img_start, img_end_id=ids.img_end,
                           pad_id=ids.pad, token_dim=token_dim, bos_id=ids.bos)
    batch.extras["image_index"] = torch.tensor(kept, dtype=torch.long)  # (N_kept,) into raw.images
    return batch
