"""Run a trained SeTok over the evaluation set and write what the tokenizer benchmarks score.

``python -m evaluation.predict.tokenizer --model M --config C --classes CLASSES --out DIR`` writes into ``DIR``:

* ``recon/<id>.png``: reconstructions at the FID resolution (rFID against ``results/data/<dataset>/images``);
* ``imagenet.predictions.jsonl``: ``{"id", "scores"}`` zero-shot class scores: the pooled SeTok tokens projected into
  the text space against the text embeddings of ``"A photo of a {class}."`` (the paper's text-alignment top-1);
* ``tokens.json``: tokens per image and their mean (Table 5 "#Tokens"), and the evaluation set's ``provenance``
  (:func:`evaluation.provenance.eval_set_provenance`: not ImageNet, a subset), which the score jobs merge;
* ``clusters.npz``: the token assignment map of the first images (for the Figure 6 overlays).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from evaluation.provenance import eval_set_provenance
from setok.cli import run
from setok.config import load_config
from setok.devices import add_device_argument, require_device
from setok.io import atomic_path, read_json, write_json, write_jsonl
from setok.modeling.build import load_setok

log = logging.getLogger("evaluation.predict.tokenizer")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(B, 3, S, S)`` in [-1, 1] -> ``(B, S, S, 3)`` uint8."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def zero_shot_classifier(text: Any, classes: list[str], templates: list[str]) -> torch.Tensor:
    """``(K, E)`` unit class embeddings: the mean of each class's prompt-template text embeddings (CLIP's protocol)."""
    return torch.stack([F.normalize(text([t.format(c) for t in templates]).mean(0), dim=-1) for c in classes])


def zero_shot_scores(model: Any, tok: Any, class_emb: torch.Tensor) -> torch.Tensor:
    """``(B, K)`` class scores (100 x cosine) of SeTok tokens ``tok``: the pooled image embedding against each class,
    or, for ``image_embedding: max_token``, the best token per class."""
    emb = model.embed(tok.tokens, tok.valid)  # (B, E) or (B, C, E)
    return 100.0 * (emb @ class_emb.T if emb.dim() == 2 else torch.einsum("bce,ke->bkc", emb, class_emb).amax(-1))


@torch.no_grad()
def predict(model_path: Path, config_path: Path, classes_path: Path, out: Path, *, keep_maps: int = 16,
            device: str = "cpu") -> None:
    """Write the files of the module docstring under ``out``; SeTok (fp32) runs on ``device``."""
    from PIL import Image

    from setok.data import build_dataset, collate

    model, text, train_cfg = load_setok(model_path)
    model.to(device)
    text.to(device)
    cfg = load_config(config_path)
    source = cfg.datasets[cfg.eval.dataset]
    dataset = build_dataset(source, image_size=train_cfg.tokenizer.backbone.image_size)
    provenance = eval_set_provenance(cfg, len(dataset))
    if cfg.eval.limit is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(cfg.eval.limit, len(dataset))))
    class_emb = zero_shot_classifier(text, read_json(classes_path), list(train_cfg.tokenizer.loss.prompt_templates))
    size = cfg.eval.fid_image_size
    loader = DataLoader(dataset, batch_size=cfg.eval.batch_size, collate_fn=collate, num_workers=cfg.eval.num_workers,
                        pin_memory=device.startswith("cuda"))
    rows, counts, maps = [], {}, {}
    recon_dir = out / "recon"
    recon_dir.mkdir(parents=True, exist_ok=True)
    for batch in tqdm(loader, desc="tokenizer predictions", file=sys.stderr):
        tok, recon = model(batch["image"].to(device, non_blocking=True))
        recon = F.interpolate(recon, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        scores = zero_shot_scores(model, tok, class_emb)
        assignment = tok.clusters.assignment().view(-1, *tok.grid).cpu()  # (B, h, w)
        scores, num_tokens = scores.cpu(), tok.num_tokens.cpu()
        for i, (sid, img) in enumerate(zip(batch["id"], to_uint8(recon))):
            with atomic_path(recon_dir / f"{sid}.png") as tmp:
                Image.fromarray(img).save(tmp, format="PNG")
            rows.append({"id": sid, "scores": [round(float(s), 6) for s in scores[i]]})
            counts[sid] = int(num_tokens[i])
            if len(maps) < keep_maps:
                maps[sid] = assignment[i].numpy().astype(np.int16)
    write_jsonl(out / "imagenet.predictions.jsonl", rows)
    values = np.array(list(counts.values()))
    write_json(out / "tokens.json", {
        "mean": float(values.mean()), "std": float(values.std()), "min": int(values.min()), "max": int(values.max()),
        "n": int(values.size), "per_image": counts, "provenance": provenance.to_json(),
    })
    with atomic_path(out / "clusters.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **maps)
    log.info("%d images, %.2f tokens per image on average", values.size, values.mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.predict.tokenizer", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path)
    ap.add_argument("--config", required=True, type=Path, help="resolved base config (datasets, eval settings)")
    ap.add_argument("--classes", required=True, type=Path, help="classes.json written by setok.data.prepare")
    ap.add_argument("--out", required=True, type=Path)
    add_device_argument(ap)
    args = ap.parse_args(argv)
    return run(lambda: predict(args.model, args.config, args.classes, args.out,
                               device=require_device(args.device)))


if __name__ == "__main__":
    raise SystemExit(main())
