"""Factories: the only place in ``setok.modeling`` that reads configuration dataclasses."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from setok.config import BackboneConfig, Config, TokenizerConfig, from_dict
from setok.io import DataError
from setok.modeling.backbone import TextEncoder, VisionEncoder, build_open_clip_backbone
from setok.modeling.detokenizer import Detokenizer
from setok.modeling.setok import SeTok
from setok.modeling.token_merger import TokenMerger


def build_backbone(cfg: BackboneConfig) -> tuple[VisionEncoder, TextEncoder]:
    """Vision encoder (trainable unless ``train_vision`` is False) and frozen text encoder."""
    encoder, text = build_open_clip_backbone(
        model_name=cfg.model_name, pretrained=cfg.pretrained, model_config=cfg.model_config, image_size=cfg.image_size
    )
    encoder.requires_grad_(cfg.train_vision)
    return encoder, text


def build_setok(cfg: TokenizerConfig) -> tuple[SeTok, TextEncoder]:
    """SeTok at the size ``cfg`` gives, plus the frozen text encoder used by its losses and zero-shot evaluation."""
    encoder, text = build_backbone(cfg.backbone)
    m, d = cfg.merger, cfg.detokenizer
    merger = TokenMerger(
        in_dim=encoder.width, dim=m.dim, inner_layers=m.inner_layers, inter_layers=m.inter_layers, heads=m.heads,
        mlp_ratio=m.mlp_ratio, position_embedding=m.position_embedding == "rope2d", rope_theta=m.rope_theta,
        kind=m.kind,
    )
    detok = Detokenizer(
        token_dim=m.dim, dim=d.dim, layers=d.layers, heads=d.heads, mlp_ratio=d.mlp_ratio, grid=d.grid,
        image_size=d.image_size, decoder_channels=list(d.decoder_channels),
    )
    model = SeTok(
        encoder=encoder, merger=merger, detokenizer=detok, embed_dim=text.embed_dim,
        clustering=dataclasses.asdict(cfg.clustering), temperature=cfg.loss.temperature,
        learn_temperature=cfg.loss.learn_temperature, image_embedding=cfg.loss.image_embedding,
    )
    return model, text


def load_setok(path: str | Path) -> tuple[SeTok, TextEncoder, Config]:
    """Rebuild a trained SeTok from the ``model.pt`` written by ``setok.train.tokenizer`` (eval mode, CPU)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found (train the tokenizer first)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        cfg = from_dict(Config, ckpt["config"])
    except (RuntimeError, KeyError, EOFError) as e:
        raise DataError(f"{path}: not a SeTok model file ({e.__class__.__name__}: {e})") from None
    model, text = build_setok(cfg.tokenizer)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), text, cfg
