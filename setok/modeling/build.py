"""Factories: the only place in ``setok.modeling`` that reads configuration dataclasses."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from setok.config import (
    BackboneConfig,
    Config,
    LLMConfig,
    LoRAConfig,
    LossConfig,
    PixelLossConfig,
    SemHiTokConfig,
    TokenizerConfig,
    from_dict,
)
from setok.io import DataError
from setok.model_file import MLLM_FAMILY, read_model
from setok.modeling.backbone import TextEncoder, VisionEncoder, build_open_clip_backbone
from setok.modeling.connectors import build_connector
from setok.modeling.detokenizer import Detokenizer
from setok.modeling.diffloss import DiffLoss
from setok.modeling.discriminator import PatchDiscriminator
from setok.modeling.hierarchical_codebook import HierarchicalCodebook
from setok.modeling.llm import DTYPES, add_lora, load_llm, special_ids
from setok.modeling.mask_decoder import MaskDecoder
from setok.modeling.mllm import SeTokIM
from setok.modeling.quantizers import build_quantizer
from setok.modeling.semantic_codebook import SemanticCodebook
from setok.modeling.semhitok import SemHiTok
from setok.modeling.setok import SeTok
from setok.modeling.token_merger import TokenMerger
from setok.modeling.unified_mllm import SemHiTokIM
from setok.modeling.vit import ViTDecoder, ViTEncoder

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def build_backbone(cfg: BackboneConfig) -> tuple[VisionEncoder, TextEncoder]:
    """Vision encoder (trainable unless ``train_vision`` is False) and frozen text encoder."""
    encoder, text = build_open_clip_backbone(
        model_name=cfg.model_name, pretrained=cfg.pretrained, model_config=cfg.model_config, image_size=cfg.image_size,
        select_layer=cfg.select_layer,
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
        kind=m.kind, soft_mask=m.soft_mask,
    )
    detok = Detokenizer(
        token_dim=m.dim, dim=d.dim, layers=d.layers, heads=d.heads, mlp_ratio=d.mlp_ratio, grid=d.grid,
        image_size=d.image_size, decoder_channels=list(d.decoder_channels),
    )
    model = SeTok(
        encoder=encoder, merger=merger, detokenizer=detok, embed_dim=text.embed_dim,
        clustering=dataclasses.asdict(cfg.clustering), temperature=cfg.loss.temperature,
        learn_temperature=cfg.loss.learn_temperature, max_logit_scale=cfg.loss.max_logit_scale,
        image_embedding=cfg.loss.image_embedding,
    )
    return model, text


def load_setok(path: str | Path) -> tuple[SeTok, TextEncoder, Config]:
    """Rebuild a trained SeTok from the ``model.pt`` written by ``setok.train.tokenizer`` (eval mode, CPU)."""
    m = read_model(path, family="setok")
    cfg = from_dict(Config, m.config)
    model, text = build_setok(cfg.tokenizer)
    model.load_state_dict(m.weights)
    return model.eval(), text, cfg


# --------------------------------------------------------------------------------------------- SemHiTok


def build_semhitok(cfg: SemHiTokConfig, *, enhanced: bool = False) -> SemHiTok:
    """SemHiTok at the sizes ``cfg`` gives; ``enhanced`` builds the "enhance decoder" stage's larger pixel decoder
    (``pixel.enhanced_decoder``) instead of ``pixel.decoder``. The SigLIP tower is frozen."""
    sem_cfg, pix = cfg.semantic, cfg.pixel
    encoder, _ = build_backbone(dataclasses.replace(sem_cfg.backbone, train_vision=False))
    with torch.no_grad():
        size = sem_cfg.backbone.image_size
        grid = tuple(encoder(torch.zeros(1, 3, size, size)).shape[1:3])
    n = grid[0] * grid[1]
    vq = sem_cfg.vq
    quantizer = build_quantizer(vq.kind, num_codes=vq.codebook_size, dim=vq.dim, decay=vq.decay,
                                commitment=vq.commitment, dead_code_threshold=vq.dead_code_threshold)
    semantic = SemanticCodebook(
        quantizer=quantizer, feature_dim=encoder.width, num_patches=n, decoder_dim=sem_cfg.decoder_dim,
        decoder_layers=sem_cfg.decoder_layers, decoder_heads=sem_cfg.decoder_heads, distill=sem_cfg.distill,
    )
    pixel_encoder = sghc = None
    in_dim, tokens = vq.dim, n
    if pix.sghc:
        e = pix.encoder
        pixel_encoder = ViTEncoder(grid=grid, patch=pix.patch_size, dim=e.dim, depth=e.depth, heads=e.heads,
                                   mlp_ratio=e.mlp_ratio, out_dim=pix.dim)
        sghc = HierarchicalCodebook(num_semantic=vq.codebook_size, sub_codebook_size=pix.sub_codebook_size,
                                    dim=pix.dim, normalize=pix.vq == "norm", commitment=pix.commitment)
        in_dim = {"dim": vq.dim + pix.dim, "length": vq.dim + pix.dim, "none": pix.dim}[pix.concat]
        tokens = 2 * n if pix.concat == "length" else n
    d = pix.enhanced_decoder if enhanced else pix.decoder
    if d is None:
        raise ValueError("tokenizer.semhitok.pixel.enhanced_decoder is null: there is no enhanced decoder to build")
    decoder = ViTDecoder(in_dim=in_dim, num_tokens=tokens, grid=grid, patch=pix.patch_size, dim=d.dim,
                         depth=d.depth, heads=d.heads, mlp_ratio=d.mlp_ratio)
    return SemHiTok(semantic_encoder=encoder, semantic=semantic, pixel_encoder=pixel_encoder, sghc=sghc,
                    pixel_decoder=decoder, grid=grid, patch=pix.patch_size, concat=pix.concat)


def build_discriminator(loss: LossConfig | PixelLossConfig) -> PatchDiscriminator:
    """The PatchGAN of a reconstruction objective: SeTok's ``tokenizer.loss``, SemHiTok's ``semhitok.loss``."""
    return PatchDiscriminator(channels=loss.disc_channels, layers=loss.disc_layers)


def build_perceptual(loss: LossConfig | PixelLossConfig) -> torch.nn.Module | None:
    """The frozen LPIPS network of a reconstruction objective (None when its weight is 0). Its linear heads ship with
    the ``lpips`` package; ``perceptual_pretrained: false`` keeps the backbone random (no download; CI)."""
    if loss.perceptual_weight <= 0:
        return None
    import lpips

    from setok.weights import LPIPS_TORCHVISION, require_torch_url, require_weights, torchvision_url

    what = f"lpips:{loss.perceptual_net}"
    if loss.perceptual_pretrained:  # the torchvision backbone lpips loads by URL (torch.hub has no offline switch)
        require_torch_url(torchvision_url(LPIPS_TORCHVISION[loss.perceptual_net]), what)
    with require_weights(what):
        net = lpips.LPIPS(net=loss.perceptual_net, pnet_rand=not loss.perceptual_pretrained, verbose=False)
    return net.eval().requires_grad_(False)


# The frozen SigLIP is rebuilt from its pretrained weights (or its seed) on load, not stored in every model.pt.
FROZEN_PREFIX = "semantic_encoder."


def semhitok_state(model: SemHiTok) -> dict[str, torch.Tensor]:
    """The weights a SemHiTok ``model.pt`` stores: everything but the frozen SigLIP tower."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(FROZEN_PREFIX)}


def load_semhitok_state(model: SemHiTok, state: dict[str, torch.Tensor], *, skip: tuple[str, ...] = ()) -> None:
    """Load :func:`semhitok_state` weights; keys starting with a ``skip`` prefix are left as built (a new decoder)."""
    state = {k: v for k, v in state.items() if not k.startswith(skip)} if skip else state
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a shape differs: the weights were trained under another config
        first = str(e).split("\n\t")[1] if "\n\t" in str(e) else str(e)
        raise DataError(f"SemHiTok weights do not match the config ({first.strip()})") from None
    missing = [k for k in missing if not k.startswith((FROZEN_PREFIX, *skip))]
    if missing or unexpected:
        raise DataError(f"SemHiTok weights do not match the config (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]})")


def load_semhitok(path: str | Path) -> tuple[SemHiTok, Config]:
    """Rebuild a trained SemHiTok from a stage's ``model.pt`` (eval mode, CPU)."""
    m = read_model(path, family="semhitok")
    cfg = from_dict(Config, m.config)
    model = build_semhitok(cfg.tokenizer.semhitok, enhanced=m["enhanced"])
    try:
        load_semhitok_state(model, m.weights)
    except DataError as e:
        raise DataError(f"{path}: {e}") from None
    return model.eval(), cfg


PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def frozen_tokenizer_dtype(setting: str, trained: Config) -> torch.dtype:
    """Precision of a frozen tokenizer inside an MLLM stage or predictor (``mllm.tokenizer_precision``).

    Args:
        setting: ``"as_trained"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.
        trained: the tokenizer's own resolved config (the one stored in its ``model.pt``).

    ``"as_trained"`` is the precision its weights ran at while it learned (DeepSpeed's bf16 engine holds the module in
    bf16): ``train_tokenizer`` for SeTok, ``train_pixel_codebook`` for SemHiTok (the stage that trains the pixel
    encoder and SGHC whose codes the MLLM reads; the semantic VQ looks codes up in float32 at any precision).
    """
    if setting == "as_trained":
        stage = trained.train_pixel_codebook if trained.tokenizer.kind == "semhitok" else trained.train_tokenizer
        setting = stage.precision
    if setting not in PRECISION_DTYPES:
        raise ValueError(f"mllm.tokenizer_precision: unknown precision {setting!r}; expected as_trained, "
                         f"{', '.join(PRECISION_DTYPES)}")
    return PRECISION_DTYPES[setting]


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
        learn_sigma=m.diffloss.learn_sigma,
    )
    c = m.connector
    connector = None if c.kind == "setok" else build_connector(
        kind=c.kind, in_dim=image_dim, hidden=hidden, num_tokens=c.num_tokens, layers=c.layers, heads=c.heads,
    )
    model = SeTokIM(
        lm=lm, diffloss=diffloss, token_dim=token_dim, cond_dim=hidden, vis_weight=m.vis_weight,
        eoi_weight=m.eoi_weight, connector=connector, vision=vision,
    )
    return model, tokenizer, build_mask_decoder(cfg, token_dim=token_dim, image_dim=image_dim)


def build_mask_decoder(cfg: Config, *, token_dim: int, image_dim: int) -> MaskDecoder:
    """SeTokIM's mask decoder (``cfg.mllm.mask_decoder``) over ``image_dim``-wide image embeddings, prompted by
    ``token_dim``-wide SeTok tokens."""
    md = cfg.mllm.mask_decoder
    return MaskDecoder(image_dim=image_dim, token_dim=token_dim, dim=md.dim, depth=md.depth, heads=md.heads,
                       upscale=md.upscale)


def build_semhitokim(
    cfg: Config, *, semhitok: SemHiTok | None = None
) -> tuple[SemHiTokIM, PreTrainedTokenizerBase]:
    """The unified MLLM on SemHiTok codes (Sec. 3.3) and its tokenizer.

    ``semhitok``: the trained tokenizer whose codebooks the adapter reads (copied into the model's buffers); None
    builds zero tables of the configured sizes, to be filled by ``load_state_dict``.
    """
    sc = cfg.tokenizer.semhitok
    lm, tokenizer = build_llm(cfg.mllm.llm)
    if semhitok is not None:
        sem = semhitok.semantic.quantizer.codebook.detach()
        pix = None if semhitok.sghc is None else semhitok.sghc.codes().detach()
    else:
        k, vq = sc.semantic.vq.codebook_size, sc.semantic.vq
        sem = torch.zeros(k, vq.dim)
        pix = torch.zeros(k, sc.pixel.sub_codebook_size, sc.pixel.dim) if sc.pixel.sghc else None
    model = SemHiTokIM(lm=lm, semantic_codes=sem, pixel_codes=pix, dual_mlp=cfg.mllm.dual_mlp)
    return model, tokenizer


def load_setokim_state(path: str | Path, model: SeTokIM, mask_decoder: MaskDecoder) -> None:
    """Load the weights of a previous stage's ``model.pt`` (without LoRA) into freshly built modules."""
    m = read_model(path, family="setokim")
    if m["lora"]:
        raise DataError(f"{path}: holds LoRA weights (a Stage-II model); initialise from a Stage-I model.pt")
    model.load_state_dict(m.weights)
    mask_decoder.load_state_dict(m["mask_decoder"])


def load_setokim(path: str | Path) -> tuple[SeTokIM, PreTrainedTokenizerBase, MaskDecoder, Config]:
    """Rebuild a trained SeTokIM, its tokenizer and mask decoder from a stage's ``model.pt`` (eval mode, CPU)."""
    loaded = load_mllm(path)
    if loaded.family != "setok":
        raise DataError(f"{path}: a unified MLLM on {loaded.family}, not a SeTokIM")
    return loaded.model, loaded.tokenizer, loaded.mask_decoder, loaded.config


@dataclasses.dataclass
class LoadedMLLM:
    """A trained multimodal LLM of either tokenizer family (``setok``: SeTokIM + mask decoder; ``semhitok``: the
    unified MLLM, no mask decoder)."""

    family: str
    model: SeTokIM | SemHiTokIM
    tokenizer: PreTrainedTokenizerBase
    mask_decoder: MaskDecoder | None
    config: Config


def load_mllm(path: str | Path) -> LoadedMLLM:
    """Rebuild the MLLM a stage's ``model.pt`` holds, whichever tokenizer family it reads (eval mode, CPU)."""
    m = read_model(path, family=tuple(MLLM_FAMILY.values()))
    cfg = from_dict(Config, m.config)
    family = next(kind for kind, f in MLLM_FAMILY.items() if f == m.family)  # the tokenizer it reads
    mask_decoder = None
    if family == "semhitok":
        model, tokenizer = build_semhitokim(cfg)
    else:
        model, tokenizer, mask_decoder = build_setokim(cfg, token_dim=m["token_dim"], image_dim=m["image_dim"])
    if m["lora"]:
        model.lm = apply_lora(model.lm, cfg.mllm.lora, tokenizer=tokenizer)
    model.load_state_dict(m.weights)
    if mask_decoder is not None:
        mask_decoder.load_state_dict(m["mask_decoder"])
        mask_decoder.eval()
    return LoadedMLLM(family=family, model=model.eval(), tokenizer=tokenizer, mask_decoder=mask_decoder, config=cfg)
