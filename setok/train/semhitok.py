"""Train SemHiTok (Sec. 4.1 stage table), one stage per call.

    python -m setok.train.semhitok --stage semantic_codebook --config C --out results/<v>/semantic_codebook
    python -m setok.train.semhitok --stage pixel_codebook --config C --init results/<v>/semantic_codebook/model.pt \\
                                   --out results/<v>/pixel_codebook
    python -m setok.train.semhitok --stage pixel_finetune --config C --init results/<v>/pixel_codebook/model.pt \\
                                   --out results/<v>/pixel_finetune
    python -m setok.train.semhitok --stage pixel_decoder --config C --init results/<v>/pixel_finetune/model.pt \\
                                   --out results/<v>/tokenizer

Stages (config ``train_<stage>``):
    ``semantic_codebook``: the projection, the EMA codebook (Eq. 4) and the semantic decoder, by distillation from the
        frozen SigLIP (Eq. 3).
    ``pixel_codebook``: pixel reconstruction enablement on ImageNet: pixel encoder, SGHC and pixel decoder, by Eq. (7)
        with the PatchGAN; the semantic branch is frozen (eval mode: its EMA codebook cannot move).
    ``pixel_finetune``: the same modules fine-tuned on the COYO subset (the table's second PRE column).
    ``pixel_decoder``: "enhance decoder": a larger pixel decoder (``pixel.enhanced_decoder``) trained alone, everything
        else frozen.
A stage with ``steps: 0`` (or ``pixel_decoder`` with ``enhanced_decoder: null``) writes its input model through
unchanged, so an ablation can drop a stage without changing the DAG.

Writes ``checkpoints/`` (atomic, resumable), ``train_log.jsonl``, ``config.yaml`` and, last, ``model.pt``:
a ``semhitok`` :mod:`setok.model_file` (weights without the frozen SigLIP; extras ``discriminator``, ``enhanced``),
which :func:`setok.modeling.build.load_semhitok` reads.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from setok.cli import config_parser, run
from setok.config import Config, load_config, to_dict
from setok.io import DataError
from setok.model_file import read_model, write_model
from setok.modeling.build import (
    build_discriminator,
    build_semhitok,
    load_semhitok_state,
    semhitok_state,
)
from setok.modeling.build import build_perceptual as build_loss_perceptual
from setok.modeling.semhitok import SemHiTok
from setok.stages import SEMHITOK_STAGES, STAGES
from setok.train.loop import run_steps, save_model, start_run
from setok.train.network_clip import engine_clipped_per_network, tokenizer_and_discriminator
from setok.train.schedule import StepBatchSampler
from setok.train.semhitok_objective import PixelObjective, semantic_loss

log = logging.getLogger("setok.train.semhitok")


def build_perceptual(cfg: Config) -> nn.Module | None:
    """The frozen LPIPS network of Eq. (7), or None (:func:`setok.modeling.build.build_perceptual`)."""
    return build_loss_perceptual(cfg.tokenizer.semhitok.loss)


def build_stage(cfg: Config, stage: str, init: Path | None) -> tuple[SemHiTok, nn.Module | None, bool]:
    """The tokenizer (and discriminator, for pixel stages) a stage trains, loaded from ``init``'s ``model.pt``.

    Returns ``(tokenizer, discriminator or None, whether its pixel decoder is the enhanced one)``.
    """
    sc = cfg.tokenizer.semhitok
    if stage != "semantic_codebook" and init is None:
        raise DataError(f"--init: stage {stage} starts from the previous stage's model.pt")
    m = read_model(init, family="semhitok") if init is not None else None
    enhanced = stage == "pixel_decoder" or (m is not None and bool(m["enhanced"]))
    model = build_semhitok(sc, enhanced=enhanced)
    if m is not None:
        # The enhance-decoder stage starts a NEW, larger decoder: the previous stage's decoder is not loaded.
        fresh = stage == "pixel_decoder" and not m["enhanced"]
        try:
            load_semhitok_state(model, m.weights, skip=("pixel_decoder.",) if fresh else ())
        except DataError as e:
            raise DataError(f"{init}: {e}") from None
    model.set_stage(stage)
    disc = None
    if stage != "semantic_codebook":
        disc = build_discriminator(sc.loss)
        if m is not None and m["discriminator"] is not None:
            disc.load_state_dict(m["discriminator"])
    return model, disc, enhanced


def passes_through(cfg: Config, stage: str) -> bool:
    """Whether the stage only forwards its input model (``steps: 0``, or no enhanced decoder to train)."""
    if stage == "pixel_decoder" and cfg.tokenizer.semhitok.pixel.enhanced_decoder is None:
        return True
    return getattr(cfg, STAGES[stage].config_key).steps == 0


def train(
    cfg: Config, stage: str, out: Path, *, init: Path | None = None, stop_after: int | None = None
) -> Path | None:
    """Train (or resume) one SemHiTok stage; returns the path of ``model.pt``, or None when stopped by
    ``stop_after``."""
    if cfg.tokenizer.kind != "semhitok":
        raise DataError(f"tokenizer.kind: {cfg.tokenizer.kind!r}; SemHiTok stages need 'semhitok'")
    if stage not in SEMHITOK_STAGES:
        raise DataError(f"--stage: unknown stage {stage!r} ({', '.join(SEMHITOK_STAGES)})")
    run = start_run(cfg, stage, out, stop_after=stop_after)  # seeds torch with the stage's seed
    tc, dev = run.train, run.device
    if passes_through(cfg, stage):
        if init is None:
            raise DataError(f"train_{stage}.steps: 0 needs --init (a model to pass through)")
        m = read_model(init, family="semhitok")
        final = out / "model.pt"
        if run.rank == 0:
            write_model(final, family="semhitok", stage=stage, weights=m.weights, config=to_dict(cfg),
                        config_sha=run.config_sha, step=m.step, **m.extras)
            log.info("stage %s skipped (steps 0 or no enhanced decoder): %s passed through to %s", stage, init, final)
        return final

    model, disc, enhanced = build_stage(cfg, stage, init)
    lc = cfg.tokenizer.semhitok.loss
    # The warm-up belongs to a stage whose pixel decoder starts from scratch (the first pixel stage, the enhanced
    # decoder): a GAN before the decoder reconstructs holds it at each image's mean colour (paper-notes H5). The
    # fine-tune continues a trained decoder and discriminator, GAN on at once.
    disc_start = lc.disc_start if stage in ("pixel_codebook", "pixel_decoder") else 0
    if disc is None:
        module: nn.Module = model
        perceptual = None
    else:
        module = PixelObjective(
            tokenizer=model, discriminator=disc, l1_weight=lc.l1_weight, l2_weight=lc.l2_weight,
            codebook_weight=lc.codebook_weight, perceptual_weight=lc.perceptual_weight,
            adversarial_weight=lc.adversarial_weight, disc_start=disc_start,
        )
        perceptual = build_perceptual(cfg)
        if perceptual is not None:
            perceptual.to(dev)
    # grad_clip per network (paper-notes H11): DeepSpeed's own clipping, which sees one joint norm, is off for this
    # engine and ClippedPerNetwork clips the tokenizer and the discriminator before each optimizer step.
    engine, start, trainer = engine_clipped_per_network(
        run, module, tokenizer_and_discriminator if disc is not None and lc.clip_per_network else None,
        setting="tokenizer.semhitok.loss.clip_per_network")
    dtype = next(p for p in engine.module.parameters() if p.requires_grad).dtype

    from setok.data import build_datasets, collate

    image_size = cfg.tokenizer.semhitok.semantic.backbone.image_size
    dataset = build_datasets([cfg.datasets[s] for s in tc.sources], image_size=image_size)
    sampler = StepBatchSampler(
        num_samples=len(dataset), batch_size=tc.batch_size, micro_batch_size=tc.micro_batch_size, steps=tc.steps,
        start_step=start, seed=tc.seed, rank=run.rank, world=run.world,
    )
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=tc.num_workers)
    loop = run.step_loop(engine, start, accumulation=sampler.accumulation, desc=f"train_{stage}")

    def step(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        images = batch["image"].to(dev, dtype=dtype, non_blocking=True)
        if disc is None:
            return semantic_loss(engine.module, images, forward=engine)
        loss, terms = engine(images, loop.step, perceptual)
        return loss, {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}

    if not run_steps(trainer, loop, loader, step):
        return None

    def tokenizer_state() -> dict[str, torch.Tensor]:
        return semhitok_state(engine.module if disc is None else engine.module.tokenizer)

    def gan_state() -> dict[str, Any]:
        return {"enhanced": enhanced,
                "discriminator": None if disc is None else engine.module.discriminator.state_dict()}

    return save_model(engine, run, family="semhitok", step=loop.step, weights=tokenizer_state,
                      extras=gan_state)


def main(argv: list[str] | None = None) -> int:
    ap = config_parser("python -m setok.train.semhitok", __doc__)
    ap.add_argument("--stage", required=True, choices=SEMHITOK_STAGES)
    ap.add_argument("--init", type=Path, help="model.pt of the previous stage")
    ap.add_argument("--out", required=True, type=Path, help="output folder, e.g. results/<variant>/pixel_codebook")
    ap.add_argument("--stop-after", type=int, help="stop after this step, as an interruption would (for tests)")
    args = ap.parse_args(argv)
    return run(lambda: train(load_config(args.config, args.variant), args.stage, args.out, init=args.init,
                             stop_after=args.stop_after))


if __name__ == "__main__":
    raise SystemExit(main())
