"""Mask losses of the SeTokIM mask decoder (Sec. 2.2): ``L_bce`` and ``L_dice``, "we follow Li et al. (2024c)".

The paper gives neither formulas nor weights. We use the formulation of LISA (Lai et al. 2024), the LLM-prompted SAM
decoder SeTokIM's referring segmentation resembles: each loss is computed per mask and averaged over the masks of the
batch; the total is ``2.0 * L_bce + 0.5 * L_dice`` (LISA's ``bce_loss_weight`` / ``dice_loss_weight`` defaults).
Note: the paper's bibliography entry for Li et al. (2024c) is OMG-Seg, a Mask2Former-style model; its dice smoothing
and weights differ, so ``eps`` and both weights are arguments.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

# LISA computes ``(2 sum(p t) / s + 1e-6) / ((sum p + sum t) / s + 1e-6)`` with ``s = 1000``, i.e. an additive
# smoothing of ``1e-6 * 1000`` in unscaled terms.
LISA_DICE_EPS = 1e-3


def sigmoid_bce_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Binary cross-entropy on logits, mean over the pixels of each mask, then mean over masks.

    Args:
        logits: ``(..., H, W)`` mask logits (any leading dims, e.g. ``(B, M, H, W)``).
        targets: ``(..., H, W)`` binary (or soft) targets in ``[0, 1]``.

    Returns: scalar loss.
    """
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
    return loss.flatten(-2).mean(-1).mean()  # (...) per mask -> scalar


def dice_loss(logits: Tensor, targets: Tensor, eps: float = LISA_DICE_EPS) -> Tensor:
    """Soft Dice loss ``1 - (2 sum(p t) + eps) / (sum p + sum t + eps)`` per mask, ``p = sigmoid(logits)``, averaged
    over masks (LISA's ``dice_loss``; its ``scale = 1000``, ``eps = 1e-6`` equal ``eps = 1e-3`` here).

    Args:
        logits: ``(..., H, W)`` mask logits.
        targets: ``(..., H, W)`` binary targets.
        eps: additive smoothing of numerator and denominator (an empty target and empty prediction give 0).

    Returns: scalar loss.
    """
    p = logits.float().sigmoid().flatten(-2)  # (..., H*W)
    t = targets.float().flatten(-2)  # (..., H*W)
    dice = (2 * (p * t).sum(-1) + eps) / (p.sum(-1) + t.sum(-1) + eps)  # (...)
    return (1 - dice).mean()


def mask_loss(logits: Tensor, targets: Tensor, bce_weight: float = 2.0, dice_weight: float = 0.5) -> Tensor:
    """``bce_weight * L_bce + dice_weight * L_dice`` (Sec. 2.2; LISA's defaults ``2.0`` and ``0.5``).

    Args:
        logits: ``(..., H, W)`` mask logits.
        targets: ``(..., H, W)`` binary targets, at the resolution of ``logits``.

    Returns: scalar loss.
    """
    return bce_weight * sigmoid_bce_loss(logits, targets) + dice_weight * dice_loss(logits, targets)
