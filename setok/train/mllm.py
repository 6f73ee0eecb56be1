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
    ``stage2``: instruction tuning: LoRA on the LLM (peft), projectors and heads trained, the mask decoder frozen.

Classifier-free guidance: the text condition of a generation / edit sample is dropped with ``mllm.cfg_dropout``.
Writes ``checkpoints/`` (atomic, resumable), ``train_log.jsonl``, ``config.yaml`` and, last, ``model.pt``
(:func:`setok.modeling.build.load_setokim` reads it).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from setok.cli import run
from setok.config import Config, StageConfig, config_sha, dump, load_config, to_dict
from setok.io import DataError, torch_save, write_text
from setok.modeling.build import apply_lora, build_setokim, load_setok, load_setokim_state
from setok.modeling.llm import special_ids
from setok.modeling.mask_losses import mask_loss
from setok.train.checkpoint import CheckpointManager
from setok.train.distributed import device, init_distributed
from setok.train.engine import build_engine
from setok.train.mixture import MixtureSampler, mixture_probs
from setok.train.mllm_batch import SpecialIds, build_sequences, image_token_lists, pooled_coverage, region_tokens

log = logging.getLogger("setok.train.mllm")

Stage = Literal["stage1", "mask_decoder", "stage2"]
STAGE_CONFIG = {"stage1": "train_stage1", "mask_decoder": "train_mask_decoder", "stage2": "train_stage2"}
CONDITIONED = ("generation", "edit")  # tasks whose text condition is dropped for classifier-free guidance


def stage_data(cfg: Config, sc: StageConfig) -> tuple[list[list[Any]], list[float]]:
    """The samples of every source of the stage and their mixture probabilities (config order)."""
    from setok.data.mllm_sources import build_multimodal_source

    sources = {name: build_multimodal_source(cfg.datasets[name], name=name) for name in sc.sources}
    for name, samples in sources.items():
        if not samples:
            raise DataError(f"datasets.{name}: no samples")
    text = [n for n in sc.sources if cfg.datasets[n].kind == "text"]
    probs = mixture_probs({n: len(s) for n, s in sources.items()}, text, language_ratio=sc.language_ratio,
                          weights=sc.weights)
    log.info("data mixture: %s", ", ".join(f"{n} {len(sources[n])} samples p={probs[n]:.3f}" for n in sc.sources))
    return list(sources.values()), [probs[n] for n in sc.sources]


def cfg_drop(batch: Any, *, p: float, seed: int, step: int, micro: int) -> list[bool]:
    """Per sample: drop its condition (generation / edit samples, with probability ``p``), seeded by the step."""
    g = torch.Generator().manual_seed(seed * 7919 + step * 131 + micro)
    u = torch.rand(len(batch.samples), generator=g).tolist()
    return [s.task in CONDITIONED and x < p for s, x in zip(batch.samples, u)]


def train(
    cfg: Config, stage: Stage, out: Path, *, tokenizer_model: Path, init: Path | None = None,
    stop_after: int | None = None,
) -> Path | None:
    """Train (or resume) one stage; returns the path of ``model.pt`` (None when stopped early by ``stop_after``)."""
    from setok.data.multimodal_loader import MultimodalDataset, collate_multimodal

    if stage != "stage1" and init is None:
        raise DataError(f"--init: stage {stage} starts from the previous stage's model.pt")
    rank, world = init_distributed()
    dev = device()
    sc: StageConfig = getattr(cfg, STAGE_CONFIG[stage])
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        write_text(out / "config.yaml", dump(cfg))
    torch.manual_seed(sc.seed)

    setok, _, _ = load_setok(tokenizer_model)
    setok.requires_grad_(False).to(dev)
    token_dim, image_dim = setok.merger.proj.out_features, setok.encoder.width
    model, tokenizer, mask_decoder = build_setokim(cfg, token_dim=token_dim, image_dim=image_dim)
    if init is not None:
        load_setokim_state(init, model, mask_decoder)
    if stage == "stage2":
        model.lm = apply_lora(model.lm, cfg.mllm.lora, tokenizer=tokenizer)
    if stage == "mask_decoder":
        model.requires_grad_(False).to(dev)
        trained: torch.nn.Module = mask_decoder
    else:
        mask_decoder.requires_grad_(False).to(dev)
        trained = model
    engine = build_engine(trained, sc, world=world)
    dtype = next(engine.module.parameters()).dtype
    ckpt = CheckpointManager(out / "checkpoints")
    state = ckpt.load(engine) or {"step": 0}
    start = int(state["step"])
    if start:
        log.info("resumed from %s at step %d", ckpt.latest(), start)

    sources, probs = stage_data(cfg, sc)
    dataset = MultimodalDataset(sources, image_size=cfg.tokenizer.backbone.image_size)
    sampler = MixtureSampler(
        sizes=[len(s) for s in sources], probs=probs, batch_size=sc.batch_size, micro_batch_size=sc.micro_batch_size,
        steps=sc.steps, start_step=start, seed=sc.seed, rank=rank, world=world,
    )
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_multimodal, num_workers=sc.num_workers)
    ids = special_ids(tokenizer)
    special = SpecialIds(img_start=ids["img_start"], img_end=ids["img_end"], pad=ids["pad"], eos=ids["eos"],
                         bos=ids["bos"])

    def tokenize(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    log_file = (out / "train_log.jsonl").open("a") if rank == 0 else None
    step, micro, t0 = start, 0, time.time()
    bar = tqdm(total=sc.steps, initial=start, desc=f"{stage}[{cfg.name}]", disable=rank != 0, file=sys.stderr)
    for raw in loader:
        with torch.no_grad():  # SeTok is frozen
            tok = setok.tokenize(raw.images.to(dev)) if raw.images.shape[0] else None
        selected = None
        if tok is not None and bool(raw.has_region.any()):
            coverage = pooled_coverage(raw.regions.to(dev), tok.grid)  # (N, h*w)
            selected = region_tokens(tok.clusters.masks, tok.valid, coverage, overlap=cfg.mllm.segment_overlap)
            selected = torch.where(raw.has_region.to(dev)[:, None], selected, torch.ones_like(selected))
        if stage == "mask_decoder":
            loss, logs = _mask_decoder_loss(engine, raw, tok, selected, dtype=dtype)
        else:
            lists = [] if tok is None else image_token_lists(tok.tokens, tok.valid, selected,
                                                              limit=sc.max_image_tokens)
            drop = cfg_drop(raw, p=cfg.mllm.cfg_dropout, seed=sc.seed, step=step, micro=micro)
            batch = build_sequences(raw, lists, template=sc.template, drop=drop, tokenize=tokenize, ids=special,
                                    token_dim=token_dim, max_length=cfg.mllm.max_length).to(dev)
            batch.visual_tokens = batch.visual_tokens.to(dtype)
            loss, logs = engine(batch)
        engine.backward(loss)
        engine.step()
        micro += 1
        if micro % sampler.accumulation:
            continue
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{logs['loss']:.4f}")
        if log_file and (step % sc.log_every == 0 or step == sc.steps):
            row = {"step": step, "lr": engine.get_lr()[0], "seconds": round(time.time() - t0, 3), **logs}
            log_file.write(json.dumps(row) + "\n")
            log_file.flush()
        if step % sc.checkpoint_every == 0 or step == sc.steps:
            ckpt.save(engine, step, {"step": step})
        if stop_after is not None and step >= stop_after and step < sc.steps:
            log.warning("stopping after step %d as asked (--stop-after); resume by running again", step)
            bar.close()
            return None
    bar.close()
    final = out / "model.pt"
    if rank == 0:
        torch_save({
            "setokim": model.state_dict(), "mask_decoder": mask_decoder.state_dict(), "lora": stage == "stage2",
            "token_dim": token_dim, "image_dim": image_dim, "stage": stage, "step": step,
            "tokenizer_model": str(tokenizer_model), "config": to_dict(cfg), "config_sha": config_sha(cfg),
        }, final)
        log.info("wrote %s after %d steps", final, step)
    return final


def _mask_decoder_loss(
    engine: Any, raw: Any, tok: Any, selected: torch.Tensor | None, *, dtype: torch.dtype
) -> tuple[torch.Tensor, dict[str, float]]:
    """BCE + Dice of the mask decoder prompted by the object's SeTok tokens (teacher forcing)."""
    if tok is None or selected is None:
        raise DataError("the mask-decoder stage needs segmentation samples (objects with a mask) in every batch")
    idx = raw.has_region.to(selected.device)
    prompts_valid = (tok.valid & selected)[idx]  # (n, C)
    logits = engine(tok.features[idx].to(dtype), tok.tokens[idx].to(dtype), prompts_valid)[:, 0]  # (n, H', W')
    target = F.interpolate(raw.regions.to(logits.device)[idx][:, None].float(), size=logits.shape[-2:],
                           mode="area")[:, 0] > 0.5  # (n, H', W')
    loss = mask_loss(logits.float(), target.float())
    return loss, {"loss": loss.item(), "mask": loss.item(), "objects": float(idx.sum().item())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m setok.train.mllm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", required=True, choices=sorted(STAGE_CONFIG))
    ap.add_argument("--config", action="append", required=True, help="config file(s), merged in order")
    ap.add_argument("--variant", help="variant to apply (omit for an already resolved config)")
    ap.add_argument("--tokenizer", required=True, type=Path, help="the trained SeTok (results/<v>/tokenizer/model.pt)")
    ap.add_argument("--init", type=Path, help="model.pt of the previous stage")
    ap.add_argument("--out", required=True, type=Path, help="output folder")
    ap.add_argument("--stop-after", type=int, help="stop after this step, as an interruption would (for tests)")
    args = ap.parse_args(argv)
    return run(lambda: train(load_config(args.config, args.variant), args.stage, args.out,
                             tokenizer_model=args.tokenizer, init=args.init, stop_after=args.stop_after))


if __name__ == "__main__":
    raise SystemExit(main())
