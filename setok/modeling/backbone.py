"""The pretrained vision-language backbone: SeTok's vision encoder and the frozen concept text encoder (App. C.2).

At paper scale both come from one open_clip SigLIP-SO400M-patch14-384 model; in CI from a tiny random open_clip model
defined inline in ``config/ci.yaml``. The code path is the same; only the config differs.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn


class VisionEncoder(nn.Module):
    """Patch embeddings ``X`` of an image (Sec. 2.1).

    Args:
        visual: an open_clip visual tower (native ``VisionTransformer`` or timm ``TimmModel``); both provide
            ``forward_intermediates``.
        mean, std: per-channel input normalisation of the tower.
        width: feature width ``d``.
        select_layer: which block's output are the features, counted from the end: -1 the last block, -2 the
            penultimate (LLaVA's ``mm_vision_select_layer``); always before the tower's final norm, as Hugging Face's
            ``hidden_states[select_layer]`` (docs/paper-notes.md M8).
    """

    def __init__(
        self, *, visual: nn.Module, mean: tuple[float, ...], std: tuple[float, ...], width: int, select_layer: int = -1
    ) -> None:
        super().__init__()
        if select_layer >= 0:
            raise ValueError(f"select_layer counts blocks from the end (-1, -2, ...), got {select_layer}")
        self.visual = visual
        self.width = width
        self.select_layer = select_layer
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        """Args: images ``(B, 3, S, S)`` in [0, 1]. Returns ``(B, h, w, d)``, ``h = w = S / patch``."""
        x = (images - self.mean) / self.std
        # The last -select_layer blocks' outputs, in order; the first of them is the one selected.
        out = self.visual.forward_intermediates(x, indices=-self.select_layer, intermediates_only=True,
                                                output_fmt="NCHW")
        feats = (out["image_intermediates"] if isinstance(out, dict) else out)[0]  # (B, d, h, w)
        return feats.permute(0, 2, 3, 1)


class TextEncoder(nn.Module):
    """Frozen text tower: prompts -> L2-normalised embeddings, cached per prompt (the tower never changes)."""

    def __init__(self, *, model: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self._cache: dict[str, Tensor] = {}

    def train(self, mode: bool = True) -> "TextEncoder":  # frozen: always in eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> Tensor:
        """Returns ``(len(prompts), E)`` unit-norm embeddings."""
        device = next(self.model.parameters()).device
        for p in dict.fromkeys(prompts):
            if p not in self._cache:
                # One prompt at a time: an embedding must not depend on which other prompts missed the cache
                # together (batched kernels round differently), or a resumed run would drift from the original.
                self._cache[p] = self.model.encode_text(self.tokenizer([p]).to(device), normalize=True).float()[0]
        return torch.stack([self._cache[p] for p in prompts])

    @property
    def embed_dim(self) -> int:
        return int(self.forward(["a"]).shape[-1])


def _register_inline_config(name: str, model_config: dict[str, Any]) -> None:
    import open_clip

    folder = Path(tempfile.mkdtemp(prefix="setok-open-clip-"))
    (folder / f"{name}.json").write_text(json.dumps(model_config))
    open_clip.add_model_config(folder)


def _visual_width(visual: nn.Module) -> int:
    trunk = getattr(visual, "trunk", None)  # timm tower (SigLIP SO400M)
    if trunk is not None:
        return int(trunk.num_features)
    return int(visual.transformer.width)  # native open_clip ViT


def build_open_clip_backbone(
    *, model_name: str, pretrained: str | None, model_config: dict[str, Any] | None, image_size: int, seed: int = 0,
    select_layer: int = -1,
) -> tuple[VisionEncoder, TextEncoder]:
    """Create an open_clip model and split it into a trainable vision encoder and a frozen text encoder.

    Random initialisation (``pretrained=None``) is seeded so that training and evaluation processes build the same
    frozen text tower.
    """
    import open_clip

    from setok.weights import require_weights

    if model_config is not None:
        _register_inline_config(model_name, model_config)
    with torch.random.fork_rng(), require_weights(f"open_clip:{model_name}:{pretrained}"):
        torch.manual_seed(seed)
        model = open_clip.create_model(
            model_name, pretrained=pretrained, force_image_size=image_size, pretrained_text=False
        )
    pre = open_clip.get_model_preprocess_cfg(model)
    visual = model.visual
    model.visual = nn.Identity()  # the text encoder keeps no copy of the vision tower
    encoder = VisionEncoder(visual=visual, mean=tuple(pre["mean"]), std=tuple(pre["std"]), width=_visual_width(visual),
                            select_layer=select_layer)
    with require_weights(f"open_clip:{model_name} tokenizer"):  # SigLIP: a Hugging Face tokenizer repo
        tokenizer = open_clip.get_tokenizer(model_name)
    return encoder, TextEncoder(model=model, tokenizer=tokenizer)
