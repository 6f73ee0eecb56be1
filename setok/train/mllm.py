"""Train SeTokIM (Sec. 2.2 "Training Receipts", App. D.3), one stage per call.

    python -m setok.train.mllm --stage stage1       --config C --tokenizer T/model.pt --out results/<v>/stage1
    python -m setok.train.mllm --stage mask_decoder --config C --tokenizer T/model.pt --init results/<v>/stage1/model.pt
                               --out results/<v>/stage1/mask_decoder
    python -m setok.train.mllm --stage stage2       --config C --tokenizer T/model.pt
                               --init results/<v>/stage1/mask_decoder/model.pt --out results/<v>/stage2

Stages:
    ``stage1``: multimodal pretraining. The LLM, the input / output projectors, the diffusion head and the end-of-image
        head are trained on captioning, text-to-image (and editing) plus a text corpus at ``language_ratio`` (7:3).
        SeTok is frozen throughout (its tokens are computed on the fly).
    ``mask_decoder``: the end of Stage-I: everything frozen except the mask decoder, trained with BCE + Dice on
        segmentation data, prompted by the SeTok tokens of the object (teacher forcing; paper-notes S4).
    ``stage2``: instruction tuning: LoRA on the LLM (peft) by default, projectors and heads trained, the mask decoder
        frozen.

What a stage does to the LLM is ``train_<stage>.llm`` (:func:`prepare_llm`): ``full`` (Stage I's default), ``lora``
(Stage II's) or ``frozen`` (the projectors and heads alone: LLaVA-1.5's stage 1; paper-notes S17).

Classifier-free guidance: the text condition of a generation / edit sample is dropped with ``mllm.cfg_dropout``.
Writes ``checkpoints/`` (atomic, resumable), ``train_log.jsonl``, ``config.yaml`` and, last, ``model.pt``
(:func:`setok.modeling.build.load_setokim` reads it).
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader

from setok.cli import config_parser, run
from setok.config import Config, LoRAConfig, StageConfig, load_config
from setok.io import DataError
from setok.model_file import MLLM_FAMILY, read_model
from setok.modeling.build import (
    apply_lora,
    build_mask_decoder,
    build_semhitokim,
    build_setokim,
    frozen_tokenizer_dtype,
    load_semhitok,
    load_setok,
    load_setokim_state,
)
from setok.modeling.llm import special_ids
from setok.modeling.mask_losses import mask_loss
from setok.stages import MLLM_STAGES
from setok.train.loop import Run, StepLoop, run_steps, save_model, start_run
from setok.train.mixture import MixtureSampler, mixture_probs
from setok.train.mllm_batch import (
    SpecialIds,
    build_sequences,
    image_token_lists,
    mask_target,
    pooled_coverage,
    region_tokens,
)

log = logging.getLogger("setok.train.mllm")

Stage = Literal["stage1", "mask_decoder", "stage2"]
CONDITIONED = ("generation", "edit")  # tasks whose text condition is dropped for classifier-free guidance


def generates_image(sample: Any) -> bool:
    """Whether an assistant turn of ``sample`` holds an image (generation, editing, segmentation)."""
    return any(not isinstance(c, str) for t in sample.turns if t.role == "assistant" for c in t.content)


def stage_data(cfg: Config, sc: StageConfig, *, reads_only: bool = False) -> tuple[list[list[Any]], list[float]]:
    """The samples of every source of the stage and their mixture probabilities (config order).

    ``reads_only`` (connector baselines) keeps the samples that only read images (captioning, conversations, text).
    """
    from setok.data.sources import build_multimodal_source

    sources = {name: build_multimodal_source(cfg.datasets[name], name=name) for name in sc.sources}
    if reads_only:  # a source of image generation only (e.g. ImageNet as class-conditional generation) drops out
        kept = {n: [x for x in s if not generates_image(x)] for n, s in sources.items()}
        for n in [n for n, s in kept.items() if not s]:
            log.info("datasets.%s: no sample that only reads images; left out of this connector baseline", n)
        sources = {n: s for n, s in kept.items() if s}
        sc = dataclasses.replace(sc, sources=list(sources), weights={k: w for k, w in sc.weights.items()
                                                                      if k in sources})
    for name, samples in sources.items():
        if not samples:
            raise DataError(f"datasets.{name}: no samples")
    text = [n for n, samples in sources.items() if not any(x.images for x in samples)]  # the language sources
    probs = mixture_probs({n: len(s) for n, s in sources.items()}, text, language_ratio=sc.language_ratio,
                          weights=sc.weights)
    log.info("data mixture: %s", ", ".join(f"{n} {len(sources[n])} samples p={probs[n]:.3f}" for n in sources))
    return list(sources.values()), [probs[n] for n in sources]


def cfg_drop(batch: Any, *, p: float, seed: int, step: int, micro: int, rank: int = 0) -> list[bool]:
    """Per sample: drop its condition (generation / edit samples, with probability ``p``), seeded by the step, the
    micro-batch's index inside it and the rank (so a resumed run drops the same conditions, and ranks draw
    independently rather than dropping in blocks across the global batch)."""
    g = torch.Generator().manual_seed(seed * 7919 + step * 131 + micro + rank * 1_000_003)
    u = torch.rand(len(batch.samples), generator=g).tolist()
    return [s.task in CONDITIONED and x < p for s, x in zip(batch.samples, u)]


def _stage_pipeline(
    run: Run, *, engine: Any, tokenizer: Any, start: int, image_size: int, reads_only: bool,
) -> tuple[DataLoader, StepLoop, SpecialIds | None, Any]:
    """What every MLLM stage shares after its model is built: the mixture loader (resumed at ``start``), the step
    loop, the special ids and the text tokenizer function (both None without a text ``tokenizer``: the mask-decoder
    stage reads no text)."""
    from setok.data.multimodal_loader import MultimodalDataset, collate_multimodal

    sc = run.train
    sources, probs = stage_data(run.cfg, sc, reads_only=reads_only)
    dataset = MultimodalDataset(sources, image_size=image_size)
    sampler = MixtureSampler(
        sizes=[len(s) for s in sources], probs=probs, batch_size=sc.batch_size, micro_batch_size=sc.micro_batch_size,
        steps=sc.steps, start_step=start, seed=sc.seed, rank=run.rank, world=run.world,
    )
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_multimodal, num_workers=sc.num_workers)
    special = tokenize = None
    if tokenizer is not None:
        ids = special_ids(tokenizer)
        special = SpecialIds(img_start=ids["img_start"], img_end=ids["img_end"], pad=ids["pad"], eos=ids["eos"],
                             bos=ids["bos"])

        def tokenize(text: str) -> list[int]:
            return tokenizer(text, add_special_tokens=False)["input_ids"]

    loop = run.step_loop(engine, start, accumulation=sampler.accumulation, desc=run.stage)
    return loader, loop, special, tokenize


def train(
    cfg: Config, stage: Stage, out: Path, *, tokenizer_model: Path | None, init: Path | None = None,
    stop_after: int | None = None,
) -> Path | None:
    """Train (or resume) one stage; returns the path of ``model.pt`` (None when stopped early by ``stop_after``)."""

    if stage != "stage1" and init is None:
        raise DataError(f"--init: stage {stage} starts from the previous stage's model.pt")
    run = start_run(cfg, stage, out, stop_after=stop_after)  # seeds torch with the stage's seed
    sc: StageConfig = run.train
    dev = run.device

    if cfg.tokenizer.kind == "semhitok":
        return _train_unified(run, tokenizer_model=tokenizer_model, init=init)
    connector = cfg.mllm.connector.kind != "setok"
    if connector:  # Table 13 baseline: the frozen SigLIP patch features through a trained connector
        if stage == "mask_decoder":
            raise DataError(f"{cfg.name}: a connector baseline reads images only; it has no mask-decoder stage")
        token_dim, image_dim = cfg.tokenizer.merger.dim, 0  # placeholder width; build_setokim sets image_dim
        setok = None
    else:
        setok = _frozen_setok(cfg, tokenizer_model, dev)
        token_dim, image_dim = setok.merger.proj.out_features, setok.encoder.width
    if stage == "mask_decoder":
        return _train_mask_decoder(run, setok=setok, tokenizer_model=tokenizer_model, init=init)
    model, tokenizer, mask_decoder = build_setokim(cfg, token_dim=token_dim, image_dim=image_dim)
    if init is not None:
        load_setokim_state(init, model, mask_decoder)
    if connector:
        vision = model.vision.eval()
        image_dim = vision.width
    if sc.activation_checkpointing:
        model.lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    lora = prepare_llm(model, sc.llm, lora=cfg.mllm.lora, tokenizer=tokenizer)
    mask_decoder.requires_grad_(False)  # trained in its own stage only; kept on the CPU, carried into model.pt
    engine, start = run.engine(training_mode(model))
    dtype = next(engine.module.parameters()).dtype

    loader, loop, special, tokenize = _stage_pipeline(
        run, engine=engine, tokenizer=tokenizer, start=start, image_size=cfg.tokenizer.backbone.image_size,
        reads_only=connector,
    )

    def step(raw: Any) -> tuple[torch.Tensor, dict[str, float]]:
        if connector:
            return _connector_step(engine, raw, vision, sc, special, tokenize, token_dim=token_dim,
                                   q=cfg.mllm.connector.num_tokens, max_length=cfg.mllm.max_length, dtype=dtype,
                                   dev=dev)
        tok, selected = _tokenize(setok, raw, overlap=cfg.mllm.segment_overlap, dev=dev)
        lists = [] if tok is None else image_token_lists(tok.tokens, tok.valid, selected, limit=sc.max_image_tokens)
        drop = cfg_drop(raw, p=cfg.mllm.cfg_dropout, seed=sc.seed, step=loop.step,
                        micro=loop.micro % loop.accumulation, rank=run.rank)
        batch = build_sequences(raw, lists, template=sc.template, drop=drop, tokenize=tokenize, ids=special,
                                token_dim=token_dim, max_length=cfg.mllm.max_length).to(dev)
        batch.visual_tokens = batch.visual_tokens.to(dtype)
        return engine(batch)

    if not run_steps(engine, loop, loader, step):
        return None
    return _write_model(engine, run, step=loop.step, setokim=lambda: model.state_dict(),
                        mask_decoder=lambda: mask_decoder.state_dict(), token_dim=token_dim, image_dim=image_dim,
                        tokenizer_model=tokenizer_model, lora=lora)


def prepare_llm(model: nn.Module, mode: str, *, lora: LoRAConfig, tokenizer: Any) -> bool:
    """Set what a stage trains of ``model.lm`` (SeTokIM or the unified MLLM; ``train_<stage>.llm``):

    * ``full``: every LLM weight (the embedding and LM head included);
    * ``frozen``: no LLM weight; gradients still flow through the LLM to the projectors / adapter and heads, which
      train (LLaVA-1.5's stage 1 trains its projector alone; paper-notes S17);
    * ``lora``: peft LoRA on ``lora.target_modules`` plus the ``[Img]``/``[/Img]`` embedding rows (``model.lm``
      becomes the peft model; the base weights frozen).

    The modules outside ``model.lm`` keep their own settings (trainable heads; a connector baseline's frozen vision
    encoder). Returns whether LoRA was applied (recorded in ``model.pt``: the loader rebuilds the adapters).
    """
    if mode == "lora":
        model.lm = apply_lora(model.lm, lora, tokenizer=tokenizer)
        return True
    if mode not in ("full", "frozen"):
        raise ValueError(f"unknown LLM training mode {mode!r} (full, frozen or lora)")
    model.lm.requires_grad_(mode == "full")
    return False


def training_mode(model: nn.Module) -> nn.Module:
    """``model`` in training mode, its frozen vision encoder (connector baselines) in eval mode.

    ``from_pretrained`` returns the LLM in eval mode, and transformers' decoder layers recompute activations only
    when ``self.training``: without this the paper-scale Stage I would run without its activation checkpointing
    (docs/scaling.md) and with the LLM's dropout and KV cache in inference mode.
    """
    model.train()
    if getattr(model, "vision", None) is not None:
        model.vision.eval()
    return model


def _frozen_setok(cfg: Config, tokenizer_model: Path | None, dev: torch.device) -> Any:
    """The trained SeTok, frozen, on ``dev`` at ``mllm.tokenizer_precision`` (paper-notes S8)."""
    if tokenizer_model is None:
        raise DataError("--tokenizer: SeTokIM needs the trained SeTok (results/<variant>/tokenizer/model.pt)")
    setok, _, trained = load_setok(tokenizer_model)
    dtype = frozen_tokenizer_dtype(cfg.mllm.tokenizer_precision, trained)
    log.info("frozen SeTok from %s in %s (mllm.tokenizer_precision: %s)", tokenizer_model, dtype,
             cfg.mllm.tokenizer_precision)
    return setok.requires_grad_(False).to(dev, dtype)


def _train_mask_decoder(run: Run, *, setok: Any, tokenizer_model: Path | None, init: Path) -> Path | None:
    """The end of Stage I: the mask decoder alone, on the SeTok tokens of each object (BCE + Dice, teacher forcing).

    This stage never runs the LLM, so it holds none: the device holds the frozen SeTok and the mask decoder only, and
    the Stage-I weights are passed on to ``model.pt`` unchanged (mapped from ``init`` by rank 0 at the end).
    """
    cfg = run.cfg
    token_dim, image_dim = setok.merger.proj.out_features, setok.encoder.width
    ckpt = read_model(init, family="setokim", mmap=True)
    if ckpt["lora"]:
        raise DataError(f"{init}: holds LoRA weights (a Stage-II model); initialise from a Stage-I model.pt")
    if (ckpt["token_dim"], ckpt["image_dim"]) != (token_dim, image_dim):
        raise DataError(f"{init}: trained on tokens of width {ckpt['token_dim']} over image embeddings of width "
                        f"{ckpt['image_dim']}, but --tokenizer {tokenizer_model} gives {token_dim} and {image_dim}")
    mask_decoder = build_mask_decoder(cfg, token_dim=token_dim, image_dim=image_dim)
    mask_decoder.load_state_dict(ckpt["mask_decoder"])
    del ckpt  # the Stage-I weights are mapped again, by rank 0 only, when model.pt is written
    engine, start = run.engine(mask_decoder)
    dtype = next(engine.module.parameters()).dtype
    loader, loop, _, _ = _stage_pipeline(
        run, engine=engine, tokenizer=None, start=start, image_size=cfg.tokenizer.backbone.image_size,
        reads_only=False,
    )

    def step(raw: Any) -> tuple[torch.Tensor, dict[str, float]]:
        tok, selected = _tokenize(setok, raw, overlap=cfg.mllm.segment_overlap, dev=run.device)
        return _mask_decoder_loss(engine, raw, tok, selected, dtype=dtype)

    if not run_steps(engine, loop, loader, step):
        return None
    return _write_model(engine, run, step=loop.step,
                        setokim=lambda: read_model(init, family="setokim", mmap=True).weights,
                        mask_decoder=lambda: engine.module.state_dict(), token_dim=token_dim, image_dim=image_dim,
                        tokenizer_model=tokenizer_model, lora=False)


def _train_unified(run: Run, *, tokenizer_model: Path | None, init: Path | None) -> Path | None:
    """Stage I / II of the unified MLLM on SemHiTok codes (SemHiTok Sec. 3.3, 4.1): the same data mixture, template,
    CFG dropout, packing, engine, loop and checkpoints as SeTokIM; images become the frozen tokenizer's flattened
    codes, and the loss is next-token cross-entropy over text + image codes. SemHiTok has no mask decoder."""

    cfg, stage, sc, dev = run.cfg, run.stage, run.train, run.device
    if stage == "mask_decoder":
        raise DataError(f"{cfg.name}: the unified MLLM on SemHiTok has no mask decoder (train stage1, then stage2)")
    if tokenizer_model is None:
        raise DataError("--tokenizer: the unified MLLM reads images through the trained SemHiTok "
                        "(results/<variant>/tokenizer/model.pt)")
    semhitok, trained = load_semhitok(tokenizer_model)
    model, tokenizer = build_semhitokim(cfg, semhitok=semhitok)  # copies the float32 codebooks into the adapter
    tok_dtype = frozen_tokenizer_dtype(cfg.mllm.tokenizer_precision, trained)
    semhitok.requires_grad_(False).to(dev, tok_dtype)
    if init is not None:
        ckpt = read_model(init, family="semhitokim")
        if ckpt["lora"]:
            raise DataError(f"{init}: holds LoRA weights (a Stage-II model); initialise from a Stage-I model.pt")
        model.load_state_dict(ckpt.weights)
    if sc.activation_checkpointing:
        model.lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    lora = prepare_llm(model, sc.llm, lora=cfg.mllm.lora, tokenizer=tokenizer)
    engine, start = run.engine(training_mode(model))

    loader, loop, special, tokenize = _stage_pipeline(
        run, engine=engine, tokenizer=tokenizer, start=start,
        image_size=cfg.tokenizer.semhitok.semantic.backbone.image_size, reads_only=False,
    )

    def step(raw: Any) -> tuple[torch.Tensor, dict[str, float]]:
        if bool(raw.has_region.any()):
            raise DataError(f"{cfg.name}: a referring-segmentation sample reached the unified MLLM, which has no mask "
                            f"decoder; leave segmentation sources out of train_{stage}.sources")
        with torch.no_grad():
            codes = semhitok.flat(semhitok.encode(raw.images.to(dev, tok_dtype))) if raw.images.shape[0] else None
        lists = [] if codes is None else list(codes.cpu())
        drop = cfg_drop(raw, p=cfg.mllm.cfg_dropout, seed=sc.seed, step=loop.step,
                        micro=loop.micro % loop.accumulation, rank=run.rank)
        batch = build_sequences(raw, lists, template=sc.template, drop=drop, tokenize=tokenize, ids=special,
                                token_dim=0, max_length=cfg.mllm.max_length).to(dev)
        return engine(batch)

    if not run_steps(engine, loop, loader, step):
        return None
    return _write_model(engine, run, step=loop.step, setokim=lambda: model.state_dict(), mask_decoder=None,
                        token_dim=0, image_dim=0, tokenizer_model=tokenizer_model, lora=lora)


def _write_model(
    engine: Any, run: Run, *, step: int, setokim: Callable[[], dict[str, torch.Tensor]],
    mask_decoder: Callable[[], dict[str, torch.Tensor]] | None, token_dim: int, image_dim: int,
    tokenizer_model: Path | None, lora: bool,
) -> Path:
    """Write the stage's ``model.pt`` (:func:`save_model`; every rank calls this): the LLM side's weights
    (``setokim``), the mask decoder's (None for the unified MLLM), whether LoRA is applied (``lora``: a Stage II with
    ``llm: lora``), the token and image widths, and the tokenizer it was trained on."""

    def extras() -> dict[str, Any]:
        return {"mask_decoder": None if mask_decoder is None else mask_decoder(), "lora": lora,
                "token_dim": token_dim, "image_dim": image_dim, "tokenizer_model": str(tokenizer_model or "")}

    return save_model(engine, run, family=MLLM_FAMILY[run.cfg.tokenizer.kind], step=step, weights=setokim,
                      extras=extras)


@torch.no_grad()
def _tokenize(setok: Any, raw: Any, *, overlap: float, dev: torch.device) -> tuple[Any, torch.Tensor | None]:
    """SeTok tokens of the micro-batch's images (None without images) and, when some image carries a referred
    region, ``(N, C)`` the tokens to keep per image (the region's tokens; all tokens for the other images)."""
    if not raw.images.shape[0]:
        return None, None
    tok = setok.tokenize(raw.images.to(dev, next(setok.parameters()).dtype))
    if not bool(raw.has_region.any()):
        return tok, None
    coverage = pooled_coverage(raw.regions.to(dev), tok.grid)  # (N, h*w)
    selected = region_tokens(tok.clusters.masks, tok.valid, coverage, overlap=overlap)
    return tok, torch.where(raw.has_region.to(dev)[:, None], selected, torch.ones_like(selected))


def _connector_step(
    engine: Any, raw: Any, vision: Any, sc: StageConfig, ids: SpecialIds, tokenize: Any, *, token_dim: int, q: int,
    max_length: int, dtype: torch.dtype, dev: torch.device,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One micro-batch of a Table 13 baseline: every image is ``q`` connector outputs over its patch features."""
    with torch.no_grad():  # the vision encoder is frozen
        feats = vision(raw.images.to(dev, dtype)) if raw.images.shape[0] else None  # (N, h, w, D)
    placeholders = [torch.zeros(q, token_dim)] * raw.images.shape[0]
    batch = build_sequences(raw, placeholders, template=sc.template, drop=[False] * len(raw.samples),
                            tokenize=tokenize, ids=ids, token_dim=token_dim, max_length=max_length).to(dev)
    if feats is not None:
        batch.extras["features"] = feats[batch.extras["image_index"]].to(dtype)
    return engine(batch)


def _mask_decoder_loss(
    engine: Any, raw: Any, tok: Any, selected: torch.Tensor | None, *, dtype: torch.dtype
) -> tuple[torch.Tensor, dict[str, float]]:
    """BCE + Dice of the mask decoder prompted by the object's SeTok tokens (teacher forcing)."""
    if tok is None or selected is None:
        raise DataError("the mask-decoder stage needs segmentation samples (objects with a mask) in every batch")
    idx = raw.has_region.to(selected.device)
    prompts_valid = (tok.valid & selected)[idx]  # (n, C)
    logits = engine(tok.features[idx].to(dtype), tok.tokens[idx].to(dtype), prompts_valid)[:, 0]  # (n, H', W')
    target = mask_target(raw.regions.to(logits.device)[idx], tok.grid, tuple(logits.shape[-2:]))  # (n, H', W')
    loss = mask_loss(logits.float(), target.float())
    return loss, {"loss": loss.item(), "mask": loss.item(), "objects": float(idx.sum().item())}


def main(argv: list[str] | None = None) -> int:
    ap = config_parser("python -m setok.train.mllm", __doc__)
    ap.add_argument("--stage", required=True, choices=MLLM_STAGES)
    ap.add_argument("--tokenizer", type=Path,
                    help="the trained SeTok (results/<v>/tokenizer/model.pt); not used by connector baselines")
    ap.add_argument("--init", type=Path, help="model.pt of the previous stage")
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--stop-after", type=int, help="stop after this step, as an interruption would (for tests)")
    args = ap.parse_args(argv)
    return run(lambda: train(load_config(args.config, args.variant), args.stage, args.out,
                             tokenizer_model=args.tokenizer, init=args.init, stop_after=args.stop_after))


if __name__ == "__main__":
    raise SystemExit(main())
