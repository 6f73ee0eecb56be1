"""Prepare an evaluation set for the tokenizer benchmarks.

``python -m setok.data.prepare --config C --dataset NAME --out results/data/NAME`` writes

* ``images/<id>.png``: every image at ``eval.fid_image_size`` (the rFID reference set; same centre crop as the
  tokenizer's input);
* ``labels.jsonl``: ``{"id", "label"}`` per image (the ``imagenet`` benchmark's references);
* ``classes.json``: the class names, in label order (the zero-shot classifier's vocabulary).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from torch.utils.data import Dataset, Subset

from setok.cli import run
from setok.config import ConfigError, load_config
from setok.data import build_dataset, write_reference_images
from setok.io import DataError, write_json, write_jsonl

log = logging.getLogger("setok.data.prepare")


def eval_subset(dataset: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` images (all when None), keeping ``ids`` for the reference writer."""
    if limit is None or limit >= len(dataset):
        return dataset
    sub = Subset(dataset, range(limit))
    sub.ids = list(dataset.ids[:limit])  # type: ignore[attr-defined]
    return sub


def prepare(config: Path, name: str, out: Path, *, size: int | None = None, images_only: bool = False) -> None:
    """Write the reference images (at ``size``, default ``eval.fid_image_size``) and, unless ``images_only``, the
    labels and class names."""
    cfg = load_config(config)
    if name not in cfg.datasets:
        raise ConfigError(f"datasets.{name}: not in {config}")
    size = size or cfg.eval.fid_image_size
    full = build_dataset(cfg.datasets[name], image_size=size)
    dataset = eval_subset(full, cfg.eval.limit)
    if images_only:  # the rFID references of a variant evaluated at another resolution (SemHiTok at 384 px)
        write_reference_images(dataset, out / "images", size=size)
        log.info("prepared %d reference images of %s at %d px in %s", len(dataset), name, size, out)
        return
    classes = list(getattr(full, "classes", []))
    if not classes:
        raise DataError(f"dataset {name!r} has no class names; zero-shot top-1 needs a classification set")
    write_reference_images(dataset, out / "images", size=size)
    targets = getattr(full, "targets", None)
    ids = list(dataset.ids)  # type: ignore[attr-defined]
    labels = list(targets[: len(ids)]) if targets is not None else [int(dataset[i]["label"]) for i in range(len(ids))]
    if any(lab < 0 for lab in labels):
        raise DataError(f"dataset {name!r}: some images have no class label")
    write_jsonl(out / "labels.jsonl", [{"id": i, "label": int(lab)} for i, lab in zip(ids, labels)])
    write_json(out / "classes.json", classes)
    log.info("prepared %d images of %s (%d classes) in %s", len(ids), name, len(classes), out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m setok.data.prepare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--size", type=int, help="image side (default: the config's eval.fid_image_size)")
    ap.add_argument("--images-only", action="store_true", help="write only images/ (rFID references)")
    args = ap.parse_args(argv)
    return run(lambda: prepare(args.config, args.dataset, args.out, size=args.size, images_only=args.images_only))


if __name__ == "__main__":
    raise SystemExit(main())
