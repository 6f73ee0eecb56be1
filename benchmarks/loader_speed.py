"""How fast the training readers feed a GPU: images/s per data worker, ours against the libraries, and the need.

    python benchmarks/loader_speed.py [--images 2000] [--size 384] [--workers 0 1] [--repeats 2] [--data DIR]

Writes an ImageNet-like set (``--images`` JPEGs of ImageNet's sizes, ~100 KB each, made from the bundled real
photographs; ``benchmarks/loaders/data.py``) twice, as ImageNet class folders and as img2dataset shards, then times,
with the training transform at ``--size`` px and ``--batch`` images per batch, each with ``num_workers`` 0 (decoding
in this process) and 1:

* our ImageNet reader (``setok.data.imagenet.ImageNetFolder`` in the trainers' DataLoader) against
  ``torchvision.datasets.ImageFolder`` with the same transform;
* our shard reader (``setok.data.image_shards.ImageShards``, likewise) against
  ``webdataset.WebDataset(shards).decode("pil").to_tuple("jpg", "txt")`` with the transform mapped over the image.

Each pair runs alternately ``--repeats`` times; the table keeps each loader's best wall-clock rate (the run least
disturbed by other processes) and its median CPU time per image (workers included), and prints the ratio
ours / theirs. It checks that ours and the references return identical tensors on the first images, then reads the
planned pace of the SeTok tokenizer stage from docs/scaling.md and the node's CPUs from docs/cluster.md and says
whether ``num_workers`` (config/paper.yaml) workers per GPU deliver it at the measured one-worker rate.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from loaders.data import prepare  # noqa: E402
from loaders.need import Plan, node_cpus, planned  # noqa: E402
from loaders.readers import (  # noqa: E402
    Rate,
    ours_folders,
    ours_shards,
    same_outputs,
    time_loader,
    torchvision_folders,
    webdataset_shards,
)

PAIRS = (
    ("ImageNet folders", "ImageNetFolder", ours_folders, "torchvision ImageFolder", torchvision_folders, "imagenet"),
    ("img2dataset shards", "ImageShards", ours_shards, "webdataset", webdataset_shards, "shards"),
)


def _best(rates: list[Rate]) -> tuple[float, float]:
    """Best images/s and median CPU ms per image of repeated runs."""
    return max(r.per_second for r in rates), statistics.median(r.cpu_ms for r in rates)


def measure(data: Path, *, size: int, batch: int, workers: list[int], repeats: int, images: int,
            have_wds: bool) -> list[dict[str, object]]:
    """One row per reader pair and worker count: best images/s and median CPU ms of ours and theirs."""
    rows = []
    for what, ours_name, ours, theirs_name, theirs, folder in PAIRS:
        for w in workers:
            def make(build: Callable[..., object]) -> Callable[[], object]:
                return lambda: build(data / folder, size=size, batch=batch, workers=w)

            runs: dict[str, list[Rate]] = {"ours": [], "theirs": []}
            for _ in range(repeats):
                runs["ours"].append(time_loader(make(ours), images))
                if theirs is not webdataset_shards or have_wds:
                    runs["theirs"].append(time_loader(make(theirs), images))
            row = {"what": what, "ours": ours_name, "theirs": theirs_name, "workers": w}
            row["ours_rate"], row["ours_cpu"] = _best(runs["ours"])
            row["theirs_rate"], row["theirs_cpu"] = _best(runs["theirs"]) if runs["theirs"] else (None, None)
            rows.append(row)
            print(f"  timed {what}, num_workers={w}", file=sys.stderr)
    return rows


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def table(rows: list[dict[str, object]]) -> str:
    """The measurements as a markdown table."""
    out = ["| data | ours | reference | num_workers | ours img/s | reference img/s | ours / reference | "
           "ours CPU ms/img | reference CPU ms/img |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = None if r["theirs_rate"] is None else r["ours_rate"] / r["theirs_rate"]
        out.append(f"| {r['what']} | {r['ours']} | {r['theirs']} | {r['workers']} | {r['ours_rate']:.1f} | "
                   f"{_num(r['theirs_rate'], '.1f')} | {_num(ratio, '.2f')} | {r['ours_cpu']:.1f} | "
                   f"{_num(r['theirs_cpu'], '.1f')} |")
    return "\n".join(out)


def verdict(plan: Plan, *, rate: float, workers: int, label: str) -> str:
    """Whether ``workers`` workers at ``rate`` images/s each deliver ``plan``'s images/s per GPU."""
    deliver = rate * workers
    margin = deliver / plan.per_gpu - 1
    return (f"- {label}: {workers} workers x {rate:.1f} img/s = {deliver:.0f} img/s per GPU against "
            f"{plan.per_gpu:.1f} needed: {'yes' if margin >= 0 else 'NO'} ({margin:+.0%})")


def need(rows: list[dict[str, object]], *, scaling: Path, cluster: Path, workers: int, semhitok_batch: int,
         semhitok_size: int, size: int) -> str:
    """The planned pace of the tokenizer stages on 8 GPUs and whether the measured one-worker rates meet it."""
    one: dict[str, dict[str, object]] = {}  # per data: the one-worker row, else the first timed
    for r in rows:
        if r["what"] not in one or r["workers"] == 1:
            one[r["what"]] = r
    folders, shards = one["ImageNet folders"], one["img2dataset shards"]
    folders_rate, shards_rate = (r["ours_rate"] / max(1, r["workers"]) for r in (folders, shards))
    cpu_rate = 1000.0 / folders["ours_cpu"]
    gpus, cpus = node_cpus(cluster)
    lines = ["", f"Need on one {gpus}-GPU node ({cpus} CPUs, docs/cluster.md: {cpus / gpus:g} per GPU = {workers} "
             f"data workers + the training process, one core each), {workers} workers per GPU (config/paper.yaml):"]
    for stage in ("tokenizer", "tokenizer (skewed clusters)"):
        plan = planned(scaling, stage)
        lines.append(f"- SeTok {stage} (docs/scaling.md): batch {plan.batch} on {plan.gpus} GPUs at {plan.per_gpu:.2f} "
                     f"img/s per GPU = {plan.step_seconds:.2f} s per step; {plan.per_gpu * plan.gpus:,.0f} img/s per "
                     f"node, {plan.per_worker(workers):.1f} img/s per worker")
    plan = planned(scaling, "tokenizer")
    lines.append(verdict(plan, rate=folders_rate, workers=workers,
                         label=f"ImageNetFolder at {size} px, measured wall clock, num_workers={folders['workers']}"))
    lines.append(verdict(plan, rate=cpu_rate, workers=workers,
                         label=f"ImageNetFolder at {size} px, one dedicated core (1000 / CPU ms per image)"))
    step = semhitok_batch / (gpus * workers * shards_rate)
    lines.append(f"- SemHiTok stages (ImageShards, batch {semhitok_batch} on {gpus} GPUs at {semhitok_size} px): no "
                 f"step time is planned in docs/scaling.md; {workers} workers per GPU at the measured "
                 f"{shards_rate:.1f} img/s (at {size} px) keep up with any step of {step:.2f} s or more.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from setok.config import load_config

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=2000, help="images in the generated set (and timed per run)")
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--per-shard", type=int, default=500, help="samples per img2dataset shard")
    ap.add_argument("--size", type=int, default=384, help="training transform size (SeTok: 384)")
    ap.add_argument("--batch", type=int, default=32, help="images per batch")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1], help="num_workers values to time")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--data", type=Path, help="keep the generated set here and reuse it (default: a temporary folder)")
    ap.add_argument("--config", default=str(ROOT / "config" / "paper.yaml"))
    ap.add_argument("--scaling", type=Path, default=ROOT / "docs" / "scaling.md")
    ap.add_argument("--cluster", type=Path, default=ROOT / "docs" / "cluster.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # one core per worker, as on the node; the workers are single-threaded anyway
    cfg = load_config([args.config])
    try:
        import webdataset  # noqa: F401
        have_wds = True
    except ImportError:
        have_wds = False
        print("webdataset is not installed (pip install webdataset==1.0.2, pyproject's test extra): shard rows show "
              "ours only")
    with tempfile.TemporaryDirectory(prefix="loader_speed_") as tmp:
        data = args.data or Path(tmp)
        os.environ["SETOK_CACHE"] = str(data / "cache")  # ImageShards' index, kept beside the set
        stats = prepare(data, images=args.images, classes=args.classes, per_shard=args.per_shard)
        folders_ok, shards_ok = same_outputs(data / "imagenet", data / "shards", size=args.size, count=8)
        rows = measure(data, size=args.size, batch=args.batch, workers=args.workers, repeats=args.repeats,
                       images=args.images, have_wds=have_wds)
    print(f"{stats['images']} ImageNet-like JPEGs (mean {stats['mean_kb']:.0f} KB, {stats['mean_megapixels']:.3f} "
          f"megapixels) in {args.classes} class folders and {-(-args.images // args.per_shard)} img2dataset shards; "
          f"transform to {args.size} px, batch {args.batch}, best of {args.repeats} runs, {os.cpu_count()} CPUs here")
    print(f"identical tensors on the first 8 images: folders {folders_ok}, shards "
          f"{'(no webdataset)' if shards_ok is None else shards_ok}")
    print()
    print(table(rows))
    print(need(rows, scaling=args.scaling, cluster=args.cluster, workers=cfg.train_tokenizer.num_workers,
               semhitok_batch=cfg.train_semantic_codebook.batch_size,
               semhitok_size=cfg.tokenizer.semhitok.semantic.backbone.image_size, size=args.size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
