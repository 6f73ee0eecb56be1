"""Run a trained SemHiTok over the evaluation set and write what its tokenizer rows report (SemHiTok Tables 2, 7, 9).

``python -m evaluation.predict.semhitok --model M --config C --out DIR`` writes into ``DIR``:

* ``recon/<id>.png``: reconstructions (encode -> flattened codes -> decode) at the FID resolution, for rFID against
  ``results/data/<dataset>/images``;
* ``tokens.json``: tokens per image (``h * w``, Table 2 "Code Num."), the flattened codebook size (``K * m``, "Codebook
  Size") and the codebook usage as Table 9 reports it: the share of the ``K * m`` flattened codes chosen at least once
  over the whole evaluation set (``codebook_usage``), plus the semantic codebook's usage and both perplexities, and
  the evaluation set's ``provenance`` (:func:`evaluation.provenance.eval_set_provenance`);
* ``codes.npz``: the semantic index map of the first images (the code-to-patch figures, Fig. 5) and ``flat_counts``,
  how often each flattened code was chosen (the usage histograms).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from evaluation.predict.tokenizer import to_uint8
from evaluation.provenance import eval_set_provenance
from setok.cli import run
from setok.config import load_config
from setok.devices import add_device_argument, require_device
from setok.io import atomic_path, write_json
from setok.modeling.build import load_semhitok
from setok.modeling.quantizers import CodeUsage

log = logging.getLogger("evaluation.predict.semhitok")


@torch.no_grad()
def predict(
    model_path: Path, config_path: Path, out: Path, *, fid_size: int | None = None, keep_maps: int = 16,
    device: str = "cpu",
) -> dict[str, float]:
    """Write ``recon/``, ``tokens.json`` and ``codes.npz`` under ``out``; returns the ``tokens.json`` summary.

    ``fid_size``: side of the written reconstructions (default: the config's ``eval.fid_image_size``)."""
    from PIL import Image

    from setok.data import build_dataset, collate

    model, train_cfg = load_semhitok(model_path)
    model.to(device)
    cfg = load_config(config_path)
    dataset = build_dataset(cfg.datasets[cfg.eval.dataset],
                            image_size=train_cfg.tokenizer.semhitok.semantic.backbone.image_size)
    provenance = eval_set_provenance(cfg, len(dataset))
    if cfg.eval.limit is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(cfg.eval.limit, len(dataset))))
    size = fid_size or cfg.eval.fid_image_size
    flat_usage = CodeUsage(model.vocab_size)
    semantic_usage = CodeUsage(int(model.semantic.quantizer.num_codes))
    maps: dict[str, np.ndarray] = {}
    recon_dir = out / "recon"
    recon_dir.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(dataset, batch_size=cfg.eval.batch_size, collate_fn=collate, num_workers=cfg.eval.num_workers,
                        pin_memory=device.startswith("cuda"))
    n = 0
    for batch in tqdm(loader, desc="semhitok predictions", file=sys.stderr):
        codes = model.encode(batch["image"].to(device, non_blocking=True))
        recon = F.interpolate(model.decode(codes), size=(size, size), mode="bicubic", antialias=True,
                              align_corners=False)
        flat_usage.update(model.flat(codes))
        semantic_usage.update(codes.semantic)
        for i, (sid, img) in enumerate(zip(batch["id"], to_uint8(recon))):
            with atomic_path(recon_dir / f"{sid}.png") as tmp:
                Image.fromarray(img).save(tmp, format="PNG")
            if len(maps) < keep_maps:
                maps[sid] = codes.semantic[i].view(*codes.grid).cpu().numpy().astype(np.int32)
        n += len(batch["id"])
    tokens = model.grid[0] * model.grid[1]
    summary = {
        "mean": float(tokens), "std": 0.0, "min": tokens, "max": tokens, "n": n,
        "vocab_size": model.vocab_size, "sub_codebook_size": model.sub_codebook_size,
        "codebook_usage": flat_usage.usage, "codebook_perplexity": flat_usage.perplexity,
        "semantic_usage": semantic_usage.usage, "semantic_perplexity": semantic_usage.perplexity,
        "provenance": provenance.to_json(),
    }
    write_json(out / "tokens.json", summary)
    with atomic_path(out / "codes.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, flat_counts=flat_usage.counts.numpy(), **{f"map/{k}": v for k, v in maps.items()})
    log.info("%d images, %d tokens each, codebook usage %.1f%% of %d", n, tokens, 100 * flat_usage.usage,
             model.vocab_size)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.predict.semhitok", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="a SemHiTok model.pt (results/<v>/tokenizer/model.pt)")
    ap.add_argument("--config", required=True, type=Path, help="resolved base config (datasets, eval settings)")
    ap.add_argument("--fid-size", type=int, help="side of the reconstructions (default: eval.fid_image_size)")
    ap.add_argument("--out", required=True, type=Path)
    add_device_argument(ap)
    args = ap.parse_args(argv)
    return run(lambda: predict(args.model, args.config, args.out, fid_size=args.fid_size,
                               device=require_device(args.device)))


if __name__ == "__main__":
    raise SystemExit(main())
