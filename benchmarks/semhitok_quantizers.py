"""SemHiTok quantization speed at paper scale, as ratios to baselines measured in the same run.

    python benchmarks/semhitok_quantizers.py [--batch 32] [--grid 16] [--codes 16384] [--repeats 10]

* Semantic EMA VQ (16,384 codes x 48, Eq. 2 + Eq. 4 update) over ``batch x grid^2`` patches, against one plain
  ``torch.cdist`` + ``argmin`` of the same sizes (the unavoidable distance computation). Target: <= 2.
* SGHC (Eq. 5, m = 12 sub-codes of width 8 per semantic code), batched by gathering each patch's sub-codebook,
  against a per-semantic-code Python loop (the obvious implementation: one small argmin per distinct code). The
  ratio is loop time / batched time (higher is better).

Timings are medians of ``repeats`` interleaved runs in one process, so the ratios are stable across machines.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from setok.modeling.hierarchical_codebook import HierarchicalCodebook
from setok.modeling.quantizers import EMAVectorQuantizer


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def sghc_loop(sghc: HierarchicalCodebook, z: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
    """The per-code baseline: for every distinct semantic code, quantize its patches in its sub-codebook."""
    codes = sghc.codes()
    z = torch.nn.functional.normalize(z, dim=-1)
    out = torch.empty(z.shape[0], dtype=torch.long)
    for k in semantic.unique().tolist():
        rows = (semantic == k).nonzero(as_tuple=True)[0]
        out[rows] = torch.cdist(z[rows], codes[k]).argmin(1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--grid", type=int, default=16)
    ap.add_argument("--codes", type=int, default=16384)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    n = args.batch * args.grid**2
    z_sem = torch.randn(n, 48)
    ema = EMAVectorQuantizer(num_codes=args.codes, dim=48).train()
    sghc = HierarchicalCodebook(num_semantic=args.codes, sub_codebook_size=12, dim=8)
    z_pix = torch.randn(n, 8)
    semantic = torch.randint(0, args.codes, (n,))
    with torch.no_grad():
        assert torch.equal(sghc(z_pix, semantic).indices, sghc_loop(sghc, z_pix, semantic))  # same answer
        t_ema, t_cdist, t_sghc, t_loop = [], [], [], []
        for _ in range(args.repeats):
            t_ema.append(timed(lambda: ema(z_sem)))
            t_cdist.append(timed(lambda: torch.cdist(z_sem, ema.embedding).argmin(1)))
            t_sghc.append(timed(lambda: sghc(z_pix, semantic)))
            t_loop.append(timed(lambda: sghc_loop(sghc, z_pix, semantic)))
    med = statistics.median
    print(f"{n} patches, {args.codes} semantic codes")
    print(f"EMA VQ (quantize + Eq. 4 update): {1e3 * med(t_ema):8.1f} ms   cdist+argmin: {1e3 * med(t_cdist):8.1f} ms"
          f"   ratio {med(t_ema) / med(t_cdist):.2f} (target <= 2)")
    print(f"SGHC batched: {1e3 * med(t_sghc):8.1f} ms   per-code loop: {1e3 * med(t_loop):8.1f} ms"
          f"   speed-up {med(t_loop) / med(t_sghc):.1f}x")


if __name__ == "__main__":
    main()
