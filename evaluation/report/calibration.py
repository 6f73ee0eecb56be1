"""The clustering calibration in the report: a table and the token-count histograms (docs/paper-notes.md C7).

``python -m evaluation.report.calibration --results results --variants V... --md OUT.md --figure OUT.png``

Reads ``results/{variant}/calibration/report.json`` (written by ``python -m setok.calibrate_clustering``) and nothing
else. The table gives, per calibrated variant, the target, the chosen grid point, the token counts it gives on the
sampled training images (mean ± std, range, share of images at 1 token or at the cap) and how the counts follow the
image content (Spearman's rho with the labelled objects per image and with an edge-density proxy); the figure, per
variant, the histogram of tokens per image under the chosen setting with the target marked.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from setok.cli import run  # noqa: E402
from setok.io import DataError, atomic_path, read_json, write_text  # noqa: E402

DASH = "—"
# What the report page reads of each report.json (tests/evaluation/report/test_calibration_report.py checks the
# calibration command writes them).
REPORT_KEYS = ("variant", "mode", "target_tokens", "max_tokens", "images", "settings", "chosen")
CHOSEN_KEYS = ("kernel_c", "min_seed_score", "beta", "mean", "std", "min", "max", "histogram", "degenerate",
               "content")


def report_path(results: Path, variant: str) -> Path:
    return results / variant / "calibration" / "report.json"


def read_report(results: Path, variant: str) -> dict[str, Any]:
    """One variant's calibration report, with the keys this page reads checked."""
    path = report_path(results, variant)
    report = read_json(path)
    missing = [k for k in REPORT_KEYS if k not in report] + [f"chosen.{k}" for k in CHOSEN_KEYS
                                                            if k not in report.get("chosen", {})]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}")
    return report


def rho(entry: dict[str, Any]) -> str:
    """A correlation, or "—" with the reason it is undefined."""
    r = entry.get("spearman")
    return DASH if r is None else f"{r:+.2f}"


def table(reports: list[dict[str, Any]]) -> str:
    """The Markdown table (a '### Title' first, as the report page expects)."""
    lines = [
        "### Clustering calibration (kernel_c, min_seed_score, beta; paper-notes C7)",
        "",
        "| variant | mode | images | target | kernel_c | min_seed_score | beta | tokens (mean ± std) | range | "
        "at 1 or cap | ρ objects | ρ edges | settings |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in reports:
        c = r["chosen"]
        lines.append(
            f"| {r['variant']} | {r['mode']} | {r['images']} | {r['target_tokens']:g} | {c['kernel_c']:g} | "
            f"{c['min_seed_score']:g} | {c['beta']:g} | {c['mean']:.2f} ± {c['std']:.2f} | {c['min']}–{c['max']} | "
            f"{100 * c['degenerate']:.0f}% | {rho(c['content']['objects'])} | {rho(c['content']['complexity'])} | "
            f"{len(r['settings'])} |")
    if not reports:
        lines.append("| " + " | ".join([DASH] * 13) + " |")
    lines += ["", "Tokens per image on a fixed-seed sample of each variant's training images, through its vision "
              "encoder as training starts; the chosen grid point has the mean closest to the target (ties within "
              "the tolerance: fewest images at 1 token or at the cap, then the larger spread). ρ: Spearman's "
              "correlation of the token count with the labelled objects per image (— where every image has the "
              "same number, e.g. ImageNet's one class) and with the edge density of the image.", ""]
    return "\n".join(lines)


def histograms(reports: list[dict[str, Any]], out: Path) -> None:
    """Per variant, the chosen setting's histogram of tokens per image, the target as a dashed line."""
    n = max(len(reports), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.0), squeeze=False)
    for ax, r in zip(axes[0], reports):
        c = r["chosen"]
        ax.bar(range(1, len(c["histogram"]) + 1), c["histogram"], width=0.9, color="tab:blue")
        ax.axvline(r["target_tokens"], color="tab:red", linestyle="--", label=f"target {r['target_tokens']:g}")
        ax.axvline(c["mean"], color="black", linewidth=1, label=f"mean {c['mean']:.1f}")
        ax.set_title(f"{r['variant']} ({r['mode']}): C={c['kernel_c']:g}, s_min={c['min_seed_score']:g}, "
                     f"β={c['beta']:g}", fontsize=8)
        ax.set_xlabel("tokens per image")
        ax.set_ylabel("images")
        ax.legend(fontsize=7)
    if not reports:
        axes[0][0].text(0.5, 0.5, "no calibrated variant", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.calibration", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="*", default=[])
    ap.add_argument("--md", type=Path, required=True)
    ap.add_argument("--figure", type=Path, required=True)
    args = ap.parse_args(argv)

    def job() -> None:
        reports = [read_report(args.results, v) for v in args.variants]
        write_text(args.md, table(reports))
        histograms(reports, args.figure)

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
