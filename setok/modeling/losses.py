"""SeTok training losses: reconstruction and the concept-level image-text contrastive loss (Eq. 3, 5-7)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def reconstruction_loss(pred: Tensor, target: Tensor, *, kind: str = "mse") -> Tensor:
    """``L_rec`` of Eq. (3): mean squared (or absolute) pixel error. ``pred``, ``target``: ``(B, 3, S, S)``."""
    if kind == "l1":
        return F.l1_loss(pred, target)
    return F.mse_loss(pred, target)


def concept_similarities(image: Tensor, texts: Tensor) -> Tensor:
    """``S[i, j, k] = V_i^I . V_j^{T_k}``.

    Args:
        image: ``(B, E)`` image embeddings, or ``(B, C, E)`` per-token embeddings with NaN-free padding (then the
            similarity is the best token's, "max_token" pooling).
        texts: ``(B, K, E)`` concept text embeddings.

    Returns: ``(B, B, K)``.
    """
    if image.dim() == 2:
        return torch.einsum("ie,jke->ijk", image, texts)
    return torch.einsum("ice,jke->ijkc", image, texts).amax(-1)


def concept_contrastive_loss(sim: Tensor, text_valid: Tensor, logit_scale: Tensor | float) -> Tensor:
    """Eq. (7) = Eq. (5) + Eq. (6), the concept-level image-text contrastive loss.

    Each image ``i`` has the positives ``T_{i,1..K}`` (its prompted object labels) and the other images' texts as
    negatives. Eq. (6) as printed equals Eq. (5); we read its denominator as a sum over *images* for each text
    (the text-to-image direction of CLIP), see docs/paper-notes.md.

    Args:
        sim: ``(B, B, K)`` similarities ``V_i^I . V_j^{T_k}``.
        text_valid: ``(B, K)`` bool, False for padding texts (images with fewer than K objects).
        logit_scale: ``1 / tau``.

    Returns: scalar loss over the images that have at least one text (0 if none has); images without texts
    (reconstruction-only sources such as ImageNet) take no part, not even as negatives.
    """
    anchors = text_valid.any(-1)  # (B,)
    if not bool(anchors.any()):  # a zero that still reaches the projection and the temperature: under ZeRO-1/2
        return (sim.sum() * logit_scale).sum() * 0.0  # every rank must give the same parameters a gradient
    sim, text_valid = sim[anchors][:, anchors], text_valid[anchors]
    logits = sim * logit_scale
    neg_inf = torch.finfo(logits.dtype).min
    # Eq. (5): for image i, positives k over its own texts, denominator over all (j, k).
    all_texts = logits.masked_fill(~text_valid[None, :, :], neg_inf)  # (B, B, K)
    pos = torch.diagonal(all_texts, dim1=0, dim2=1).T  # (B, K): [i, k] = logits[i, i, k]
    i2t = torch.logsumexp(pos, -1) - torch.logsumexp(all_texts.flatten(1), -1)  # (B,)
    # Eq. (6): for the texts of image i, denominator over all images j: sum_k sum_j exp(T_ik . V_j / tau).
    per_text = logits.masked_fill(~text_valid[None, :, :], neg_inf).permute(1, 2, 0)  # (B_text, K, B_img)
    t2i = torch.logsumexp(pos, -1) - torch.logsumexp(per_text.flatten(1), -1)  # (B,)
    return -(i2t.mean() + t2i.mean())
