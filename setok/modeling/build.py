"""Factories: the only place in ``setok.modeling`` that reads configuration dataclasses."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from setok.config import BackboneConfig, Config, LLMConfig, LoRAConfig, TokenizerConfig, from_dict
from setok.io import DataError
from setok.modeling.backbone import TextEncoder, VisionEncoder, build_open_clip_backbone
from setok.modeling.connectors import build_connector
from setok.modeling.detokenizer import Detokenizer
from setok.modeling.diffloss import DiffLoss
from setok.modeling.llm import DTYPES, add_lora, load_llm, special_ids
from setok.modeling.mask_decoder import MaskDecoder
from setok.modeling.mllm import SeTokIM
from setok.modeling.setok import SeTok
from setok.modeling.token_merger import TokenMerger

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


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


# --------------------------------------------------------------------------------------------- SeTokIM (Sec. 2.2)


def build_llm(cfg: LLMConfig) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The LLM of SeTokIM and its tokenizer, with ``[Img]``/``[/Img]`` (and a pad token if missing) added."""
    return load_llm(
        source=cfg.source, name=cfg.name, gguf_file=cfg.gguf_file, tokenizer=cfg.tokenizer,
        model_config=cfg.model_config, dtype=DTYPES[cfg.dtype],
    )


def apply_lora(model: PreTrainedModel, cfg: LoRAConfig, *, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """Stage II: LoRA on ``cfg.target_modules``; the ``[Img]``/``[/Img]`` embedding rows of ``tokenizer`` stay
    trainable. Use as ``setokim.lm = apply_lora(setokim.lm, cfg.mllm.lora, tokenizer=tokenizer)``."""
    ids = special_ids(tokenizer)
    return add_lora(
        model, r=cfg.r, alpha=cfg.alpha, dropout=cfg.dropout, target_modules=list(cfg.target_modules),
        token_ids=[ids["img_start"], ids["img_end"]],
    )


def build_setokim(
    cfg: Config, *, token_dim: int, image_dim: int
) -> tuple[SeTokIM, PreTrainedTokenizerBase, MaskDecoder]:
    """SeTokIM (LLM + projectors + diffusion head + end-of-image head), its tokenizer and the mask decoder.

    Args:
        cfg: the experiment; reads ``cfg.mllm``.
        token_dim: width of SeTok's tokens (``cfg.tokenizer.merger.dim`` of the trained tokenizer).
        image_dim: width of SeTok's vision-encoder image embedding (the mask decoder's image input).

    The diffusion head is conditioned on ``z = W_out h`` of the LLM's hidden width (cond_dim = hidden size). No LoRA
    here: Stage II wraps ``model.lm`` with :func:`apply_lora`. With ``mllm.connector.kind`` other than ``setok``
    (Table 13), a connector over the frozen vision encoder's patch features feeds the LLM instead of SeTok tokens;
    the encoder is built here (``model.vision``) and ``image_dim`` is its width.
    """
    m = cfg.mllm
    vision = None
    if m.connector.kind != "setok":  # Table 13: the frozen vision encoder is part of the baseline model
        vision, _ = build_backbone(dataclasses.replace(cfg.tokenizer.backbone, train_vision=False))
        image_dim = vision.width
    lm, tokenizer = build_llm(m.llm)
    hidden = lm.get_input_embeddings().embedding_dim
    diffloss = DiffLoss(
        token_dim=token_dim, cond_dim=hidden, width=m.diffloss.width, depth=m.diffloss.depth,
        num_timesteps=m.diffloss.num_timesteps, diffusion_batch_mul=m.diffloss.diffusion_batch_mul,
    )
    c = m.connector
    connector = None if c.kind == "setok" else build_connector(
        kind=c.kind, in_dim=image_dim, hidden=hidden, num_tokens=c.num_tokens, layers=c.layers, heads=c.heads,
    )
    model = SeTokIM(
        lm=lm, diffloss=diffloss, token_dim=token_dim, cond_dim=hidden, vis_weight=m.vis_weight,
        eoi_weight=m.eoi_weight, connector=connector, vision=vision,
    )
    mask_decoder = MaskDecoder(
        image_dim=image_dim, token_dim=token_dim, dim=m.mask_decoder.dim, depth=m.mask_decoder.depth,
        heads=m.mask_decoder.heads, upscale=m.mask_decoder.upscale,
    )
    return model, tokenizer, mask_decoder


def _read_setokim(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found (train the previous stage first)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError) as e:
        raise DataError(f"{path}: not a SeTokIM model file ({e.__class__.__name__}: {e})") from None
    missing = [k for k in ("setokim", "mask_decoder", "config", "lora", "token_dim", "image_dim") if k not in ckpt]
    if missing:
        raise DataError(f"{path}: not a SeTokIM model file (missing {', '.join(missing)})")
    return ckpt


def load_setokim_state(path: str | Path, model: SeTokIM, mask_decoder: MaskDecoder) -> None:
    """Load the weights of a previous stage's ``model.pt`` (without LoRA) into freshly built modules."""
    ckpt = _read_setokim(path)
    if ckpt["lora"]:
        raise DataError(f"{path}: holds LoRA weights (a Stage-II model); initialise from a Stage-I model.pt")
    model.load_state_dict(ckpt["setokim"])
    mask_decoder.load_state_dict(ckpt["mask_decoder"])


def load_setokim(path: str | Path) -> tuple[SeTokIM, PreTrainedTokenizerBase, MaskDecoder, Config]:
    """Rebuild a trained SeTokIM, its tokenizer and mask decoder from a stage's ``model.pt`` (eval mode, CPU)."""
    ckpt = _read_setokim(path)
    cfg = from_dict(Config, ckpt["config"])
    model, tokenizer, mask_decoder = build_setokim(cfg, token_dim=ckpt["token_dim"], image_dim=ckpt["image_dim"])
    if ckpt["lora"]:
        model.lm = apply_lora(model.lm, cfg.mllm.lora, tokenizer=tokenizer)
    model.load_state_dict(ckpt["setokim"])
    mask_decoder.load_state_dict(ckpt["mask_decoder"])
    return model.eval(), tokenizer, mask_decoder.eval(), cfg
