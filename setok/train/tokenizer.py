"""Train the SeTok tokenizer (Sec. 2.1, Eq. 3): ``python -m setok.train.tokenizer --config C --out DIR``.

Writes into ``DIR``: ``checkpoints/`` (DeepSpeed, atomic, resumable), ``train_log.jsonl`` (losses), ``config.yaml``
(the resolved config) and, when training has finished, ``model.pt`` (the final weights, written last and atomically:
its presence means the stage is complete).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from setok.cli import config_parser, run
from setok.config import Config, load_config
from setok.modeling.build import build_setok
from setok.modeling.losses import concept_contrastive_loss, concept_similarities, reconstruction_loss
from setok.train.concepts import sample_concepts
from setok.train.gather import gather_rows, pad_tokens
from setok.train.loop import run_steps, save_model, start_run
from setok.train.network_clip import engine_clipped_per_network, tokenizer_and_discriminator
from setok.train.schedule import StepBatchSampler
from setok.train.setok_objective import AdversarialReconstruction, build_reconstruction


def setok_loss(
    model: Any, text_encoder: Any, batch: dict[str, Any], cfg: Config, step: int, *, forward: Any = None,
    objective: AdversarialReconstruction | None = None, perceptual: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Eq. (3): ``alpha * L_rec + beta * L_con`` for one micro-batch (+ the discriminator's ``L_D``).

    ``model`` is the bare SeTok module (for ``embed`` and ``contrastive_scale``); ``forward`` is the callable that
    runs its forward pass (the DeepSpeed engine during training; with an ``objective``, an engine around it).
    ``L_rec`` is computed by the ``objective``'s forward (the VQGAN objective, ``loss.objective: vqgan``, with its
    LPIPS network ``perceptual``) or, without one, is the pixel error alone (``loss.objective: pixel``). With
    ``loss.negatives: all_ranks`` every rank computes Eq. (5)-(7) on the images and texts of all ranks' micro-
    batches (gathered with their gradient), so the contrastive term is the one-process loss over the whole step's
    batch; the reconstruction term stays per rank.
    """
    lc = cfg.tokenizer.loss
    size = cfg.tokenizer.detokenizer.image_size
    images = batch["image"]
    target = F.interpolate(images.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    if objective is None:
        tok, recon = (forward or model)(images)
        target = (target * 2 - 1).to(recon.dtype)
        l_rec, l_disc, rec_terms = reconstruction_loss(recon, target, kind=lc.rec), None, {}
    else:  # the VQGAN objective is computed inside the forward (setok.train.setok_objective: DeepSpeed's hooks)
        target = (target * 2 - 1).to(images.dtype)
        tok, recon, l_rec, l_disc, rec_terms = (forward or objective)(images, target, step, perceptual)
    loss = lc.rec_weight * l_rec
    if l_disc is not None:  # the discriminator's hinge loss: moves D only, outside alpha
        loss = loss + l_disc
    n = tok.num_tokens.float()  # (B,) tokens per image: their spread shows a clustering stuck at 1 or at the cap
    logs = {"rec": l_rec.item(), "tokens": n.mean().item(), "tokens_std": n.std(unbiased=False).item(),
            "tokens_min": n.min().item(), "tokens_max": n.max().item()}
    logs.update({k: v.item() if torch.is_tensor(v) else float(v) for k, v in rec_terms.items()})
    if lc.contrastive_weight > 0:
        g = torch.Generator().manual_seed(cfg.train_tokenizer.seed * 7919 + step)
        prompts, valid = sample_concepts(
            batch["labels"], batch["contrastive"].tolist(), k=lc.objects_per_image,
            templates=list(lc.prompt_templates), generator=g,
        )
        texts = text_encoder(prompts).view(len(batch["labels"]), lc.objects_per_image, -1).to(recon.dtype)
        image = model.embed(tok.tokens, tok.valid)  # (B, E), or (B, C, E) for max_token pooling
        valid = valid.to(image.device)
        if lc.negatives == "all_ranks":  # every GPU's images and texts: "among the batch B" (paper-notes M6)
            image, texts, valid = gather_rows(pad_tokens(image)), gather_rows(texts), gather_rows(valid)
        sim = concept_similarities(image, texts)
        l_con = concept_contrastive_loss(sim, valid, model.contrastive_scale())
        loss = loss + lc.contrastive_weight * l_con
        logs["contrastive"] = l_con.item()
    logs["loss"] = loss.item()
    return loss, logs


def train(cfg: Config, out: Path, *, stop_after: int | None = None) -> Path | None:
    """Train (or resume) SeTok; returns the path of ``model.pt``, or None when stopped early by ``stop_after``."""
    from setok.data import build_datasets, collate

    run = start_run(cfg, "tokenizer", out, stop_after=stop_after)
    tc, lc = run.train, cfg.tokenizer.loss
    if cfg.tokenizer.calibrates and cfg.tokenizer.calibration.calibrated is None:  # paper-notes C7
        logging.getLogger("setok.train").warning(
            "tokenizer.calibration.enabled but this config carries no calibrated values: training with kernel_c, "
            "min_seed_score and beta as written (the workflow runs calibrate_clustering first; set "
            "tokenizer.calibration.enabled: false to silence this)")
    model, text = build_setok(cfg.tokenizer)
    text.to(run.device)
    # loss.objective: vqgan trains SeTok and its discriminator in one engine (setok.train.setok_objective), each
    # network's gradient clipped by its own norm with loss.clip_per_network; pixel: SeTok alone, as before.
    objective, perceptual = build_reconstruction(lc, model)
    if perceptual is not None:
        perceptual.to(run.device)
    engine, start, trainer = engine_clipped_per_network(
        run, model if objective is None else objective,
        tokenizer_and_discriminator if objective is not None and lc.clip_per_network else None,
        setting="tokenizer.loss.clip_per_network")
    setok = engine.module if objective is None else engine.module.tokenizer
    dtype = next(engine.module.parameters()).dtype  # bf16 / fp16 engines hold low-precision weights

    dataset = build_datasets([cfg.datasets[s] for s in tc.sources], image_size=cfg.tokenizer.backbone.image_size)
    sampler = StepBatchSampler(
        num_samples=len(dataset), batch_size=tc.batch_size, micro_batch_size=tc.micro_batch_size, steps=tc.steps,
        start_step=start, seed=tc.seed, rank=run.rank, world=run.world,
    )
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=tc.num_workers)
    loop = run.step_loop(engine, start, accumulation=sampler.accumulation, desc="train_tokenizer")

    def step(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        batch["image"] = batch["image"].to(run.device, dtype=dtype, non_blocking=True)
        return setok_loss(setok, text, batch, cfg, loop.step, forward=engine,
                          objective=None if objective is None else engine.module, perceptual=perceptual)

    if not run_steps(trainer, loop, loader, step, postfix=lambda logs: {"tokens": f"{logs['tokens']:.1f}"}):
        return None
    # model.pt's weights are SeTok's alone (what load_setok reads); the discriminator is an extra beside them.
    return save_model(engine, run, family="setok", step=loop.step, weights=lambda: setok.state_dict(),
                      extras=None if objective is None else lambda: {
                          "discriminator": engine.module.discriminator.state_dict()})


def main(argv: list[str] | None = None) -> int:
    ap = config_parser("python -m setok.train.tokenizer", __doc__)
    ap.add_argument("--out", required=True, type=Path, help="output folder, e.g. results/<variant>/tokenizer")
    ap.add_argument("--stop-after", type=int, help="stop after this step, as an interruption would (for tests)")
    args = ap.parse_args(argv)
    return run(lambda: train(load_config(args.config, args.variant), args.out, stop_after=args.stop_after))


if __name__ == "__main__":
    raise SystemExit(main())
