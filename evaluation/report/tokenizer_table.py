"""The tokenizer tables, per variant beside the paper's numbers.

``--family setok`` (default): #tokens (mean), rFID and zero-shot top-1 (SeTok Tables 3, 5, 6).
``--family semhitok``: codes per image, flattened codebook size, codebook usage and rFID (SemHiTok Tables 2, 7, 9).

``python -m evaluation.report.tokenizer_table [--family F] --results results --variants V... --paper P --md OUT.md
--tex OUT.tex``

Reads result JSON and paper numbers only (no model, no evaluation). A value that is missing shows "—", never 0.
A value whose file (result JSON or ``tokens.json``) records a provenance that is not clean (an evaluation set that
is not ImageNet, a subset, a shortcut) carries its symbols, and so does its Δ; a legend under the table explains them
(:mod:`evaluation.provenance`).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from evaluation.provenance import Legend, read_marks, tex_marks
from evaluation.report.table_specs import load_paper_numbers
from setok.io import DataError, read_json, write_text

DASH = "—"


@dataclass(frozen=True)
class Column:
    """One measured quantity: where to read ours, how to find the paper's, how to print it."""

    title: str
    benchmark: str  # result file stem, or "tokens" for results/<v>/tokenizer/tokens.json
    metric: str
    digits: int
    lower_is_better: bool


FAMILIES: dict[str, tuple[Column, ...]] = {
    "setok": (
        Column("#Tokens", "tokens", "mean", 1, False),
        Column("rFID ↓", "fid", "fid", 2, True),
        Column("Top-1 ↑", "imagenet", "top1", 1, False),
    ),
    "semhitok": (
        Column("Code Num.", "tokens", "mean", 0, False),
        Column("Codebook Size", "tokens", "vocab_size", 0, False),
        Column("Usage % ↑", "tokens", "codebook_usage_percent", 1, False),
        Column("rFID ↓", "fid", "fid", 2, True),
    ),
}
NOTES = {
    "setok": "Paper: SeTok Tables 3, 5, 6 (top-1 from the Sec. 4.1 text).",
    "semhitok": "Paper: SemHiTok Tables 2, 7, 9 (usage: share of the K x m flattened codes used on the eval set).",
}
COLUMNS = FAMILIES["setok"]


def paper_lookup(path: Path, family: str = "setok") -> dict[tuple[str, str], float]:
    """``(row, "benchmark.metric") -> value`` for one paper (``family``'s section; empty when it has none).

    A row and column printed in several tables (SeTok's VQAv2 is 78.5 in Table 6, 78.7 in Table 13) take the first
    in file order; descriptive (string) values are left out. The per-table view is :mod:`evaluation.report.paper_table`.
    """
    out: dict[tuple[str, str], float] = {}
    for (paper, _table, row, column), p in load_paper_numbers(path).items():
        if paper == family and not isinstance(p.value, str):
            out.setdefault((row, column), p.value)
    return out


def source(results: Path, variant: str, col: Column) -> Path:
    """The file holding ``col`` of ``variant``: ``tokenizer/tokens.json`` or ``eval/<benchmark>.json``."""
    if col.benchmark == "tokens":
        return results / variant / "tokenizer" / "tokens.json"
    return results / variant / "eval" / f"{col.benchmark}.json"


def ours(results: Path, variant: str, col: Column) -> tuple[float | None, list[float] | None]:
    """Our value and its 95% CI (None when the result file does not exist)."""
    f = source(results, variant, col)
    if col.benchmark == "tokens":
        if not f.is_file():
            return None, None
        data = read_json(f)
        if col.metric.endswith("_percent"):
            value = data.get(col.metric.removesuffix("_percent"))
            return (None if value is None else 100.0 * float(value)), None
        return (None if data.get(col.metric) is None else float(data[col.metric])), None
    if not f.is_file():
        return None, None
    r = read_json(f)
    value = r["metrics"].get(col.metric)
    return (None if value is None else float(value)), r.get("ci95", {}).get(col.metric)


def fmt(v: float | None, digits: int) -> str:
    return DASH if v is None else f"{v:.{digits}f}"


def build_rows(
    results: Path, variants: list[str], paper: dict[tuple[str, str], float], columns: tuple[Column, ...] = COLUMNS,
    legend: Legend | None = None,
) -> list[list[str]]:
    """One row per variant: per column ours (with its marks, recorded in ``legend``), the paper's value and Δ."""
    legend = Legend() if legend is None else legend
    rows = []
    for v in variants:
        row = [v]
        for col in columns:
            value, ci = ours(results, v, col)
            p = paper.get((v, f"{col.benchmark}.{col.metric}"))
            text = fmt(value, col.digits)
            if value is not None and ci is not None:
                text += f" [{ci[0]:.{col.digits}f}, {ci[1]:.{col.digits}f}]"
            marks = legend.add(col.benchmark, read_marks(source(results, v, col))) if value is not None else ""
            delta = None if value is None or p is None else value - p
            row += [text + marks, fmt(p, col.digits), DASH if delta is None else f"{delta:+.{col.digits}f}{marks}"]
        rows.append(row)
    return rows


def header(columns: tuple[Column, ...] = COLUMNS) -> list[str]:
    h = ["Variant"]
    for col in columns:
        h += [f"{col.title} (ours)", f"{col.title} (paper)", "Δ"]
    return h


def markdown(rows: list[list[str]], family: str = "setok", legend: Legend | None = None) -> str:
    h = header(FAMILIES[family])
    lines = ["| " + " | ".join(h) + " |", "|" + "|".join(["---"] + ["---:"] * (len(h) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    note = f"Ours: value [95% bootstrap CI]. {NOTES[family]} — = not available."
    return "\n".join(lines) + "\n\n" + note + "\n" + (legend.markdown() if legend else "")


def esc(s: str) -> str:
    """LaTeX of a cell or legend line of the tokenizer tables."""
    return tex_marks(s.replace("_", r"\_").replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$").replace(
        "Δ", r"$\Delta$").replace("—", "--").replace("#", r"\#"))


def latex(rows: list[list[str]], family: str = "setok", legend: Legend | None = None) -> str:
    h = header(FAMILIES[family])
    out = [r"\begin{tabular}{l" + "r" * (len(h) - 1) + "}", r"\toprule", " & ".join(esc(x) for x in h) + r" \\",
           r"\midrule"]
    out += [" & ".join(esc(x) for x in r) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n" + (legend.latex(esc) if legend else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.tokenizer_table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=sorted(FAMILIES), default="setok", help="which tokenizer's columns")
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--paper", type=Path, default=Path("evaluation/paper_numbers.yaml"))
    ap.add_argument("--md", type=Path, required=True)
    ap.add_argument("--tex", type=Path, required=True)
    args = ap.parse_args(argv)
    legend = Legend()
    try:
        rows = build_rows(args.results, args.variants, paper_lookup(args.paper, args.family),
                          FAMILIES[args.family], legend)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_text(args.md, markdown(rows, args.family, legend))
    write_text(args.tex, latex(rows, args.family, legend))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
