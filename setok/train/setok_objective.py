"""SeTok's ``L_rec`` (Eq. 3) as the official code's loss module computes it: VQGAN's objective (paper-notes M3).

:class:`AdversarialReconstruction` puts SeTok and a PatchGAN discriminator in ONE module, so one DeepSpeed engine (one
optimizer, one checkpoint, one resume) trains both, as :class:`setok.train.semhitok_objective.PixelObjective` does
for SemHiTok. Its forward runs SeTok and :meth:`AdversarialReconstruction.loss`, which gives, for a reconstruction
``x_hat`` of ``x`` (ChocoWu/SeTok src/model/loss/discriminator.py, ``VQLPIPSWithDiscriminator``):

* ``L_rec = L_nll + lambda * L_G`` with ``L_nll = |x - x_hat| (or squared) + perceptual_weight * LPIPS(x, x_hat)``,
  ``L_G = -E[D(x_hat)]`` with D's parameters detached (moves the tokenizer only) and ``lambda`` VQGAN's adaptive
  weight ``||grad L_nll|| / (||grad L_G|| + 1e-4)`` at the detokenizer's last layer, clamped to [0, 1e4] and
  detached, times ``disc_weight`` (or ``disc_weight`` alone); and
* ``L_D``, D's hinge loss on ``x`` and ``sg(x_hat)`` (moves D only).

The trainer adds ``alpha * L_rec + beta * L_con + L_D``: one backward gives the tokenizer the gradient of Eq. (3) and D
that of its hinge loss. Before ``disc_start`` there is neither ``L_G`` nor ``L_D`` (the warm-up).
"""
from __future__ import annotations

from torch import Tensor, nn

from setok.config import LossConfig
from setok.modeling.build import build_discriminator, build_perceptual
from setok.modeling.discriminator import PatchDiscriminator, adaptive_weight, adversarial_losses
from setok.modeling.losses import reconstruction_loss
from setok.modeling.setok import SeTok, Tokens


def detokenizer_last_layer(model: SeTok) -> nn.Parameter:
    """The weight of the detokenizer's last layer (the pixel decoder's output convolution), where VQGAN's adaptive
    weight compares the two gradients."""
    return model.detokenizer.pixel_decoder.out[-1].weight


class AdversarialReconstruction(nn.Module):
    """SeTok + discriminator, and ``L_rec`` as VQGAN's objective.

    Args:
        tokenizer: SeTok.
        discriminator: the PatchGAN.
        pixel: ``"l1"`` or ``"mse"``, the pixel term.
        perceptual_weight: weight of LPIPS in ``L_nll``.
        disc_weight: weight of ``L_G`` (times the adaptive weight when ``adaptive``).
        adaptive: VQGAN's adaptive weight on (False: ``disc_weight`` alone).
        disc_start: the optimizer step from which ``L_G`` and ``L_D`` are on.
    """

    def __init__(
        self, *, tokenizer: SeTok, discriminator: PatchDiscriminator, pixel: str, perceptual_weight: float,
        disc_weight: float, adaptive: bool, disc_start: int,
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.discriminator = discriminator
        self.pixel = pixel
        self.perceptual_weight = perceptual_weight
        self.disc_weight = disc_weight
        self.adaptive = adaptive
        self.disc_start = disc_start

    def forward(
        self, images: Tensor, target: Tensor, step: int, perceptual: nn.Module | None = None
    ) -> tuple[Tokens, Tensor, Tensor, Tensor | None, dict[str, Tensor]]:
        """SeTok's forward and :meth:`loss`: ``images (B, 3, S, S)`` in [0, 1], ``target (B, 3, S', S')`` in [-1, 1]
        -> ``(tokens, reconstruction (B, 3, S', S'), L_rec, L_D or None, terms)``.

        The loss is computed here, inside the forward the DeepSpeed engine runs, because the adaptive weight's
        ``torch.autograd.grad`` must not pass DeepSpeed's backward hooks: the engine registers them on its forward's
        outputs once the forward returns, and a backward through them runs the engine's backward prologue (under ZeRO-0
        an error, under ZeRO-1 the start of a gradient reduction) as if it were the training backward.
        """
        tok, recon = self.tokenizer(images)
        return tok, recon, *self.loss(recon, target, step, perceptual)

    def loss(
        self, recon: Tensor, target: Tensor, step: int, perceptual: nn.Module | None = None
    ) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """Args: recon, target ``(B, 3, S', S')`` in [-1, 1]; step: the optimizer step (0-based, for the warm-up);
        perceptual: the frozen LPIPS network (None when its weight is 0).

        Returns ``(L_rec, L_D or None (before disc_start, or disc_weight 0), terms)``; ``terms`` (for the log):
        ``pixel``, ``perceptual``, and from ``disc_start`` on ``adversarial`` (``L_G``), ``disc_weight`` (``lambda``)
        and ``disc`` (``L_D``).
        """
        terms: dict[str, Tensor] = {"pixel": reconstruction_loss(recon, target, kind=self.pixel)}
        nll = terms["pixel"]
        if perceptual is not None and self.perceptual_weight > 0:
            terms["perceptual"] = perceptual(recon.float(), target.float()).mean()
            nll = nll + self.perceptual_weight * terms["perceptual"]
        if step < self.disc_start or self.disc_weight <= 0:
            return nll, None, terms
        g_loss, d_loss = adversarial_losses(self.discriminator, target, recon)
        weight = self.disc_weight * (
            adaptive_weight(nll, g_loss, detokenizer_last_layer(self.tokenizer)) if self.adaptive else 1.0)
        terms.update(adversarial=g_loss, disc_weight=weight, disc=d_loss)
        return nll + weight * g_loss, d_loss, terms


def build_reconstruction(
    loss: LossConfig, tokenizer: SeTok
) -> tuple[AdversarialReconstruction | None, nn.Module | None]:
    """The objective module and its frozen LPIPS network for ``loss.objective: vqgan``; ``(None, None)`` for
    ``pixel`` (the engine then trains SeTok alone, as before the VQGAN objective existed)."""
    if loss.objective == "pixel":
        return None, None
    module = AdversarialReconstruction(
        tokenizer=tokenizer, discriminator=build_discriminator(loss), pixel=loss.rec,
        perceptual_weight=loss.perceptual_weight, disc_weight=loss.disc_weight, adaptive=loss.adaptive_weight,
        disc_start=loss.disc_start,
    )
    return module, build_perceptual(loss)
