"""A trained SeTok in fp32 against bf16 (``mllm.tokenizer_precision``, paper-notes S8): speed and agreement.

    python benchmarks/tokenizer_precision.py --tokenizer results/<v>/tokenizer/model.pt [--images DIR]
        [--device cuda] [--batch 8] [--repeats 5]

Tokenizes the same images (the bundled real photos, or every image of ``--images``) at both precisions in the same
process and prints images/s of each and their ratio (the fp32 run is the baseline), the share of images with the same
token count, the share of patches whose token (seed) is the same, and the relative error of the tokens the LLM would
read (tokens matched by seed).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from setok.data.transforms import image_transform
from setok.io import load_image
from setok.modeling.build import load_setok
from setok.modeling.clustering import cluster_agreement


def image_files(folder: Path | None) -> list[Path]:
    if folder is None:
        from setok.data.bundled import BundledPhotos

        return BundledPhotos(image_size=32).paths
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not files:
        raise SystemExit(f"error: {folder}: no .jpg / .png images")
    return files


@torch.no_grad()
def token_error(a: object, b: object) -> float:
    """``||v_b - v_a|| / ||v_a||`` over the tokens whose seed is the same in both tokenizations (``Tokens``)."""
    num = den = 0.0
    for i in range(a.tokens.shape[0]):
        seeds_b = {int(s): j for j, s in enumerate(b.clusters.seeds[i, : int(b.num_tokens[i])])}
        for j, s in enumerate(a.clusters.seeds[i, : int(a.num_tokens[i])].tolist()):
            if s in seeds_b:
                va, vb = a.tokens[i, j].float(), b.tokens[i, seeds_b[s]].float()
                num += (vb - va).square().sum().item()
                den += va.square().sum().item()
    return (num / max(den, 1e-30)) ** 0.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", type=Path, required=True, help="a SeTok model.pt")
    ap.add_argument("--images", type=Path, help="a folder of images (default: the bundled photos)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    setok, _, cfg = load_setok(args.tokenizer)
    setok.to(args.device)
    transform = image_transform(cfg.tokenizer.backbone.image_size)
    images = torch.stack([transform(load_image(p)) for p in image_files(args.images)]).to(args.device)
    batches = list(images.split(args.batch))
    results, speed = {}, {}
    for dtype in (torch.float32, torch.bfloat16):
        setok.to(dtype)
        with torch.no_grad():
            results[dtype] = [setok.tokenize(x.to(dtype)) for x in batches]
            times = []
            for _ in range(args.repeats):
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                for x in batches:
                    setok.tokenize(x.to(dtype))
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        speed[dtype] = len(images) / statistics.median(times)
    n = len(images)
    agree = [cluster_agreement(a.clusters, b.clusters) for a, b in zip(results[torch.float32],
                                                                         results[torch.bfloat16])]
    sizes = [x.shape[0] for x in batches]
    count = sum(g["count"] * k for g, k in zip(agree, sizes)) / n
    patch = sum(g["patch"] * k for g, k in zip(agree, sizes)) / n
    err = statistics.fmean(token_error(a, b) for a, b in zip(results[torch.float32], results[torch.bfloat16]))
    tokens = torch.cat([t.num_tokens for t in results[torch.float32]]).float().mean().item()
    print(f"{args.tokenizer} on {n} images ({args.device}, {tokens:.1f} tokens per image in fp32)")
    print(f"fp32: {speed[torch.float32]:,.1f} images/s   bf16: {speed[torch.bfloat16]:,.1f} images/s   "
          f"bf16 / fp32: {speed[torch.bfloat16] / speed[torch.float32]:.2f}x")
    print(f"same token count: {count:.1%} of images; same token at a patch: {patch:.1%} of patches; "
          f"relative error of matched tokens: {err:.2%}")


if __name__ == "__main__":
    main()
