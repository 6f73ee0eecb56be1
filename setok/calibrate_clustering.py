"""Calibrate Algorithm 1 before SeTok trains: ``python -m setok.calibrate_clustering --config C --out DIR``.

The paper gives no ``kernel_c``, ``min_seed_score`` or ``beta``, only the mean token counts they lead to (Table 5:
25 hard, 23 soft). This builds the variant's vision encoder exactly as ``setok.train.tokenizer`` does (the same
factory, seeded with ``train_tokenizer.seed``, at the stage's precision), encodes a fixed-seed sample of
``tokenizer.calibration.images`` images of ``train_tokenizer.sources`` once, clusters them under every setting of
``tokenizer.calibration.grid`` and keeps the one whose mean is closest to the mode's target
(:mod:`setok.calibration.sweep` has the rule; docs/paper-notes.md C7). Writes into ``DIR``, each atomically:

* ``clustering.yaml``: the overlay the workflow merges into ``results/{variant}/config.yaml``
  (:mod:`setok.calibration.overlay`), read by training and by every later consumer of the tokenizer;
* ``report.json``: per setting mean, std, min, max and histogram of tokens per image; the chosen one with the
  relation of its counts to image content (:mod:`setok.calibration.content`).

``--config`` is the variant's resolved config before calibration (the workflow's
``results/{variant}/calibration/config.yaml``), or config files with ``--variant``.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset

from setok.calibration.content import complexity, content_relation
from setok.calibration.overlay import SWEPT, overlay_text
from setok.calibration.sweep import choose, grid_settings, summarize, token_counts
from setok.cli import config_parser, run
from setok.config import Config, ConfigError, config_sha, load_config
from setok.devices import add_device_argument, require_device
from setok.io import write_json, write_text
from setok.modeling.build import build_setok

log = logging.getLogger("setok.calibrate_clustering")

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def sample_indices(size: int, images: int, seed: int) -> list[int]:
    """A fixed-seed sample of ``min(images, size)`` dataset indices, in ascending order."""
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(size, generator=g)[:images].tolist())


@torch.no_grad()
def encode(cfg: Config, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, list[str]]:
    """The sampled images through the variant's initial vision encoder.

    Returns:
        ``(features (N, h, w, d), objects (N,) or None, edge density (N,), image ids)``.
    """
    from setok.data import build_datasets, collate

    cal, tc = cfg.tokenizer.calibration, cfg.train_tokenizer
    torch.manual_seed(tc.seed)  # as setok.train.loop.start_run: the weights training starts from
    model, _ = build_setok(cfg.tokenizer)
    dtype = DTYPES[tc.precision] if device.type != "cpu" else torch.float32
    encoder = model.encoder.to(device=device, dtype=dtype).eval()
    dataset = build_datasets([cfg.datasets[s] for s in tc.sources], image_size=cfg.tokenizer.backbone.image_size)
    subset = Subset(dataset, sample_indices(len(dataset), cal.images, cal.seed))
    loader = DataLoader(subset, batch_size=cal.batch_size, collate_fn=collate, num_workers=min(tc.num_workers, 8))
    feats, objects, edges, ids = [], [], [], []
    for batch in loader:
        images = batch["image"]
        edges.append(complexity(images))
        feats.append(encoder(images.to(device=device, dtype=dtype)))  # (b, h, w, d)
        objects += [len(set(labels)) for labels in batch["labels"]]
        ids += list(batch["id"])
    labelled = any(n > 0 for n in objects)
    return (torch.cat(feats), torch.tensor(objects) if labelled else None, torch.cat(edges), ids)


def calibrate(cfg: Config, out: Path, *, device: torch.device | str) -> dict[str, Any]:
    """Run the calibration of ``cfg``'s variant and write ``out/clustering.yaml`` and ``out/report.json``.

    ``device`` is checked after the config and before the encoder loads: a CUDA device that is not there is a
    one-line :class:`setok.devices.DeviceError` (no CPU fallback)."""
    tok = cfg.tokenizer
    if not tok.calibrates:
        raise ConfigError(f"tokenizer.calibration: nothing to calibrate for variant {cfg.name!r} (kind "
                          f"{tok.kind!r}, clustering.mode {tok.clustering.mode!r}, enabled {tok.calibration.enabled})")
    device = torch.device(require_device(str(device)))
    cal, mode = tok.calibration, tok.clustering.mode
    features, objects, edges, ids = encode(cfg, device)
    log.info("encoded %d images: features %s", len(ids), tuple(features.shape))
    settings = grid_settings(cal.grid.kernel_c, cal.grid.min_seed_score, cal.grid.beta)
    clustering = dataclasses.asdict(tok.clustering)
    counts = token_counts(features, settings, clustering=clustering, batch_size=cal.batch_size)  # (S, N)
    summaries = [summarize(c, max_tokens=tok.clustering.max_tokens) for c in counts]
    target = getattr(cal.target_tokens, mode)
    best = choose(summaries, target=target, tolerance=cal.tolerance)
    chosen = settings[best].as_dict()
    log.info("chose %s: mean %.2f tokens (target %.1f)", chosen, summaries[best].mean, target)
    report = {
        "variant": cfg.name,
        "mode": mode,
        "target_tokens": target,
        "tolerance": cal.tolerance,
        "max_tokens": tok.clustering.max_tokens,
        "images": len(ids),
        "sample_seed": cal.seed,
        "sources": list(cfg.train_tokenizer.sources),
        "encoder": {"model_name": tok.backbone.model_name, "pretrained": tok.backbone.pretrained,
                    "image_size": tok.backbone.image_size, "grid": list(features.shape[1:3]),
                    "init_seed": cfg.train_tokenizer.seed},
        "fixed": {k: v for k, v in clustering.items() if k not in SWEPT},
        "config_sha": config_sha(cfg),  # of the config before calibration
        "rule": "closest mean to target_tokens; within tolerance: fewest images at 1 or max_tokens tokens, then the "
                "larger std, then grid order",
        "settings": [{**s.as_dict(), **summaries[i].as_dict()} for i, s in enumerate(settings)],
        "chosen": {"index": best, **chosen, **summaries[best].as_dict(),
                   "content": content_relation(counts[best], objects=objects, edge_density=edges),
                   "per_image": {i: int(n) for i, n in zip(ids, counts[best])}},
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    write_text(out / "clustering.yaml", overlay_text(chosen))  # last: the workflow's output marker
    return report


def main(argv: list[str] | None = None) -> int:
    ap = config_parser("python -m setok.calibrate_clustering", __doc__)
    ap.add_argument("--out", required=True, type=Path, help="output folder, e.g. results/<variant>/calibration")
    add_device_argument(ap)
    args = ap.parse_args(argv)
    return run(lambda: calibrate(load_config(args.config, args.variant), args.out, device=args.device))


if __name__ == "__main__":
    raise SystemExit(main())
