"""Tokenizer figures, generated from result files only (never edited by hand).

``python -m evaluation.report.tokenizer_figures --images results/data/<dataset>/images --variants V... --out DIR``

* ``token_masks.png``: each image with its token assignment as a coloured overlay and token boundaries
  (the paper's Figure 6), one row per variant;
* ``reconstructions.png``: originals next to each variant's reconstructions (Figure 7);
* ``token_counts.png``: the distribution of tokens per image for each variant (Table 5's "#Tokens"); a variant whose
  ``tokens.json`` records a provenance that is not clean (an evaluation set that is not ImageNet, a subset) gets its
  symbols after its name and the reasons in the figure's footer (:mod:`evaluation.provenance`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from evaluation.provenance import LEGEND_TITLE, Legend, read_marks  # noqa: E402
from setok.cli import run  # noqa: E402
from setok.io import DataError, atomic_path, read_json  # noqa: E402


def overlay(image: np.ndarray, assignment: np.ndarray, *, alpha: float = 0.45, seed: int = 0) -> np.ndarray:
    """Colour each token's region and darken the boundaries between tokens.

    Args:
        image: ``(H, W, 3)`` uint8.
        assignment: ``(h, w)`` token index per patch.

    Returns: ``(H, W, 3)`` uint8.
    """
    h, w = image.shape[:2]
    cells = np.asarray(Image.fromarray(assignment.astype(np.int32)).resize((w, h), Image.NEAREST))  # (H, W)
    palette = np.random.default_rng(seed).integers(40, 256, size=(int(assignment.max()) + 1, 3))
    out = (1 - alpha) * image + alpha * palette[cells]
    edge = np.zeros((h, w), dtype=bool)
    edge[:, 1:] |= cells[:, 1:] != cells[:, :-1]
    edge[1:, :] |= cells[1:, :] != cells[:-1, :]
    out[edge] = 0
    return out.clip(0, 255).astype(np.uint8)


def load_rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: image not found")
    return np.asarray(Image.open(path).convert("RGB"))


def save_figure(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def legend_footer(fig: plt.Figure, legend: Legend) -> None:
    """Below the panels, why the marked values of ``fig`` are not measured scores (nothing when none is marked);
    the panels are laid out first so that their labels stay inside the figure, above the footer, which
    :func:`save_figure`'s tight bounding box keeps."""
    if legend.lines():
        fig.tight_layout()
        fig.text(0.01, 0.0, "\n".join([LEGEND_TITLE, *legend.lines()]), ha="left", va="top", fontsize=7,
                 color="firebrick")


def token_masks(results: Path, images: Path, variants: list[str], out: Path, *, columns: int = 6) -> None:
    maps = {v: np.load(results / v / "tokenizer" / "clusters.npz") for v in variants}
    ids = sorted(set.intersection(*(set(m.files) for m in maps.values())))[:columns]
    if not ids:
        raise DataError(f"{results}: no token maps in common between the variants {variants}")
    fig, axes = plt.subplots(len(variants), len(ids), figsize=(2.2 * len(ids), 2.3 * len(variants)), squeeze=False)
    for r, v in enumerate(variants):
        for c, sid in enumerate(ids):
            a = maps[v][sid]
            axes[r, c].imshow(overlay(load_rgb(images / f"{sid}.png"), a))
            axes[r, c].set_title(f"{sid}: {len(np.unique(a))} tokens", fontsize=7)
            axes[r, c].axis("off")
        axes[r, 0].text(-0.08, 0.5, v, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=9)
    save_figure(fig, out / "token_masks.png")


def reconstructions(results: Path, images: Path, variants: list[str], out: Path, *, columns: int = 6) -> None:
    ids = sorted(p.stem for p in images.glob("*.png"))[:columns]
    rows = [("original", images)] + [(v, results / v / "tokenizer" / "recon") for v in variants]
    fig, axes = plt.subplots(len(rows), len(ids), figsize=(2.0 * len(ids), 2.1 * len(rows)), squeeze=False)
    for r, (name, folder) in enumerate(rows):
        for c, sid in enumerate(ids):
            axes[r, c].imshow(load_rgb(folder / f"{sid}.png"))
            axes[r, c].axis("off")
        axes[r, 0].text(-0.08, 0.5, name, transform=axes[r, 0].transAxes, rotation=90, va="center", ha="right",
                        fontsize=9)
    save_figure(fig, out / "reconstructions.png")


def token_counts(results: Path, variants: list[str], out: Path) -> None:
    files = [results / v / "tokenizer" / "tokens.json" for v in variants]
    counts = [list(read_json(f)["per_image"].values()) for f in files]
    legend = Legend()
    labels = [v + legend.add("tokens", read_marks(f)) for v, f in zip(variants, files)]
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(variants), 3.0))
    ax.boxplot(counts, showmeans=True)
    ax.set_xticks(range(1, len(variants) + 1), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("tokens per image")
    ax.grid(axis="y", alpha=0.3)
    legend_footer(fig, legend)
    save_figure(fig, out / "token_counts.png")


def figures_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """The command line both tokenizer figure scripts take: --results, --images (the originals), --variants, --out."""
    ap = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--images", type=Path, required=True, help="results/data/<dataset>/images (originals)")
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = figures_parser("python -m evaluation.report.tokenizer_figures", __doc__).parse_args(argv)

    def job() -> None:
        token_masks(args.results, args.images, args.variants, args.out)
        reconstructions(args.results, args.images, args.variants, args.out)
        token_counts(args.results, args.variants, args.out)

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
