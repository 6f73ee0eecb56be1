"""Clustering speed at paper scale, as a ratio to one batched ``torch.cdist`` of the same features.

    python benchmarks/clustering.py [--batch 8] [--grid 27] [--width 1152] [--repeats 15]

SigLIP-SO400M-patch14-384 gives 27 x 27 patches of width 1152; the paper's batch per GPU is 8. Both timings run
interleaved in the same process (median of ``repeats``), so the ratio is stable across machines. Target: <= 1.5.
The features are random, which is the worst case for Algorithm 1: every location is far from every other, so the
loop runs to ``max_tokens``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from setok.modeling.clustering import cluster


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--grid", type=int, default=27)
    ap.add_argument("--width", type=int, default=1152)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--mode", default="hard", choices=["hard", "soft", "fixed"])
    args = ap.parse_args()
    torch.manual_seed(0)
    feats = torch.randn(args.batch, args.grid, args.grid, args.width)
    flat = feats.reshape(args.batch, -1, args.width)
    kw = {"num_clusters": 64} if args.mode == "fixed" else {}
    for _ in range(2):  # warm-up
        cluster(feats, mode=args.mode, **kw)
        torch.cdist(flat, flat)
    ours, base = [], []
    for _ in range(args.repeats):
        ours.append(timed(cluster, feats, mode=args.mode, **kw))
        base.append(timed(torch.cdist, flat, flat))
    tokens = cluster(feats, mode=args.mode, **kw).num_tokens.float().mean()
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    print(f"features (B={args.batch}, {args.grid}x{args.grid}, D={args.width}), mode={args.mode}, "
          f"threads={torch.get_num_threads()}, mean tokens={tokens:.1f}")
    print(f"cluster      median {m_ours * 1e3:8.1f} ms")
    print(f"torch.cdist  median {m_base * 1e3:8.1f} ms")
    print(f"ratio cluster / cdist = {m_ours / m_base:.2f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
