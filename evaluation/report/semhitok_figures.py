"""SemHiTok figures, generated from result files only (never edited by hand).

``python -m evaluation.report.semhitok_figures --images results/data/<dataset>/images --variants V... --out DIR``

* ``codebook_usage.png``: for each variant, how often each flattened code was chosen on the evaluation set, codes
  ranked by frequency (log scale), with the usage of Table 9 (share of codes used at least once) in the legend, marked
  (and explained in the footer) when the variant's ``tokens.json`` records a provenance that is not clean;
* ``code_maps.png``: each image with its patches coloured by semantic code (the paper's Figure 5: patches that share
  a semantic code share a colour);
* ``reconstructions.png``: originals next to each variant's reconstructions (Figures 6 and 8).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluation.provenance import Legend, read_marks
from evaluation.report.tokenizer_figures import (
    figures_parser,
    legend_footer,
    load_rgb,
    overlay,
    plt,
    reconstructions,
    save_figure,
)
from setok.cli import run
from setok.io import DataError


def rank_frequency(counts: np.ndarray) -> tuple[np.ndarray, float]:
    """``(K,)`` code counts -> (the used codes' frequencies, descending, summing to 1; usage = used / K)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() <= 0:
        raise DataError("no code was chosen: the counts are all zero")
    used = np.sort(counts[counts > 0])[::-1]
    return used / used.sum(), float(len(used)) / len(counts)


def compact(codes: np.ndarray) -> np.ndarray:
    """Relabel a code map ``(h, w)`` to ``0 .. n-1`` in order of first appearance (colours per distinct code)."""
    _, first, inverse = np.unique(codes.ravel(), return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # rank of each distinct code by first appearance
    return order[inverse].reshape(codes.shape)


def codebook_usage(results: Path, variants: list[str], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    legend = Legend()
    for v in variants:
        with np.load(results / v / "tokenizer" / "codes.npz") as z:
            freq, usage = rank_frequency(z["flat_counts"])
        marks = legend.add("tokens", read_marks(results / v / "tokenizer" / "tokens.json"))
        ax.plot(np.arange(1, len(freq) + 1), freq, label=f"{v} (usage {100 * usage:.1f}%{marks})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("code rank")
    ax.set_ylabel("share of tokens")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    legend_footer(fig, legend)
    save_figure(fig, out / "codebook_usage.png")


def code_maps(results: Path, images: Path, variants: list[str], out: Path, *, columns: int = 6) -> None:
    maps = {}
    for v in variants:
        with np.load(results / v / "tokenizer" / "codes.npz") as z:
            maps[v] = {k.removeprefix("map/"): z[k] for k in z.files if k.startswith("map/")}
    ids = sorted(set.intersection(*(set(m) for m in maps.values())))[:columns]
    if not ids:
        raise DataError(f"{results}: no code maps in common between the variants {variants}")
    fig, axes = plt.subplots(len(variants), len(ids), figsize=(2.2 * len(ids), 2.3 * len(variants)), squeeze=False)
    for r, v in enumerate(variants):
        for c, sid in enumerate(ids):
            a = maps[v][sid]
            axes[r, c].imshow(overlay(load_rgb(images / f"{sid}.png"), compact(a)))
            axes[r, c].set_title(f"{sid}: {len(np.unique(a))} codes", fontsize=7)
            axes[r, c].axis("off")
        axes[r, 0].text(-0.08, 0.5, v, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=9)
    save_figure(fig, out / "code_maps.png")


def main(argv: list[str] | None = None) -> int:
    args = figures_parser("python -m evaluation.report.semhitok_figures", __doc__).parse_args(argv)

    def job() -> None:
        codebook_usage(args.results, args.variants, args.out)
        code_maps(args.results, args.images, args.variants, args.out)
        reconstructions(args.results, args.images, args.variants, args.out)

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
