"""SemHiTok's training objectives: semantic distillation (Eq. 3) and pixel reconstruction (Eq. 7) with its GAN.

:class:`PixelObjective` puts the tokenizer and the discriminator in ONE module, so one DeepSpeed engine (one
optimizer, one checkpoint, one resume) trains both. Its loss is the sum of

* the generator's Eq. (7): ``l2 ||x - x_hat||^2 + l1 |x - x_hat| + w_cb L_codebook + w_p LPIPS(x, x_hat)
  + w_adv (-D(x_hat))``, where D's parameters enter DETACHED (``torch.func.functional_call``), so this term moves
  the tokenizer only; and
* the discriminator's hinge loss on ``x`` and ``sg(x_hat)``, which moves D only
(both from :func:`setok.modeling.discriminator.adversarial_losses`, which SeTok's objective shares).

One backward of the sum therefore gives each network exactly the gradient of its own loss, both evaluated at the
current parameters: the same update as VQGAN's two optimizers stepping in turn (the generator's step reads D before
D's step). Before ``disc_start`` both adversarial terms are off (the warm-up).
"""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from setok.modeling.discriminator import PatchDiscriminator, adversarial_losses
from setok.modeling.semhitok import SemHiTok


def semantic_loss(model: SemHiTok, images: Tensor, *, forward: Any = None) -> tuple[Tensor, dict[str, float]]:
    """Semantic codebook stage: ``L_distill`` (Eq. 3) + the quantizer's loss (commitment; + codebook for vanilla /
    norm VQ). ``forward``: the callable running the model (the DeepSpeed engine in training)."""
    out = (forward or model)(images)
    loss = out.distill + out.vq_loss
    return loss, {"loss": loss.item(), "distill": out.distill.item(), "vq": out.vq_loss.item()}


class PixelObjective(nn.Module):
    """Tokenizer + discriminator, and Eq. (7).

    Args:
        tokenizer: SemHiTok at a pixel stage (``set_stage`` done).
        discriminator: the PatchGAN.
        l1_weight, l2_weight, codebook_weight, perceptual_weight, adversarial_weight: Eq. (7) weights.
        disc_start: step at which both adversarial terms switch on.
    """

    def __init__(
        self, *, tokenizer: SemHiTok, discriminator: PatchDiscriminator, l1_weight: float, l2_weight: float,
        codebook_weight: float, perceptual_weight: float, adversarial_weight: float, disc_start: int,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.discriminator = discriminator
        self.w = {"l1": l1_weight, "l2": l2_weight, "codebook": codebook_weight, "perceptual": perceptual_weight,
                  "adversarial": adversarial_weight}
        self.disc_start = disc_start

    def train(self, mode: bool = True) -> PixelObjective:
        super().train(mode)
        self.tokenizer.train(mode)  # keeps the stage's frozen parts in eval mode
        return self

    def forward(
        self, images: Tensor, step: int, perceptual: nn.Module | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Args: images ``(B, 3, S, S)`` in [0, 1]; step: the optimizer step (for the warm-up); perceptual: the
        frozen LPIPS network (or None when its weight is 0). Returns ``(loss, terms)``."""
        out = self.tokenizer(images)
        x, x_hat = out.target, out.recon
        terms: dict[str, Tensor] = {
            "l2": F.mse_loss(x_hat.float(), x.float()),
            "l1": F.l1_loss(x_hat.float(), x.float()),
            "codebook": out.vq_loss.float(),
        }
        if perceptual is not None and self.w["perceptual"] > 0:
            terms["perceptual"] = perceptual(x_hat.float(), x.float()).mean()
        loss = sum(self.w[k] * v for k, v in terms.items())
        if step >= self.disc_start and self.w["adversarial"] > 0:
            terms["adversarial"], terms["disc"] = adversarial_losses(self.discriminator, x, x_hat)
            loss = loss + self.w["adversarial"] * terms["adversarial"] + terms["disc"]
        return loss, terms
