"""The tokenizer table: per variant, #tokens (mean), rFID and zero-shot top-1, beside the paper's numbers.

``python -m evaluation.report.tokenizer_table --results results --variants V... --paper P --md OUT.md --tex OUT.tex``

Reads result JSON and paper numbers only (no model, no evaluation). A value that is missing shows "—", never 0.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

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


COLUMNS = (
    Column("#Tokens", "tokens", "mean", 1, False),
    Column("rFID ↓", "fid", "fid", 2, True),
    Column("Top-1 ↑", "imagenet", "top1", 1, False),
)


def paper_lookup(path: Path) -> dict[tuple[str, str], float]:
    """``(row, "benchmark.metric") -> value`` for the SeTok paper."""
    if not path.is_file():
        raise DataError(f"{path}: paper numbers file not found")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {(n["row"], n["column"]): float(n["value"]) for n in data["setok"]["numbers"]}


def ours(results: Path, variant: str, col: Column) -> tuple[float | None, list[float] | None]:
    """Our value and its 95% CI (None when the result file does not exist)."""
    if col.benchmark == "tokens":
        f = results / variant / "tokenizer" / "tokens.json"
        return (float(read_json(f)[col.metric]), None) if f.is_file() else (None, None)
    f = results / variant / "eval" / f"{col.benchmark}.json"
    if not f.is_file():
        return None, None
    r = read_json(f)
    value = r["metrics"].get(col.metric)
    return (None if value is None else float(value)), r.get("ci95", {}).get(col.metric)


def fmt(v: float | None, digits: int) -> str:
    return DASH if v is None else f"{v:.{digits}f}"


def build_rows(results: Path, variants: list[str], paper: dict[tuple[str, str], float]) -> list[list[str]]:
    rows = []
    for v in variants:
        row = [v]
        for col in COLUMNS:
            value, ci = ours(results, v, col)
            p = paper.get((v, f"{col.benchmark}.{col.metric}"))
            text = fmt(value, col.digits)
            if value is not None and ci is not None:
                text += f" [{ci[0]:.{col.digits}f}, {ci[1]:.{col.digits}f}]"
            delta = None if value is None or p is None else value - p
            row += [text, fmt(p, col.digits), DASH if delta is None else f"{delta:+.{col.digits}f}"]
        rows.append(row)
    return rows


def header() -> list[str]:
    h = ["Variant"]
    for col in COLUMNS:
        h += [f"{col.title} (ours)", f"{col.title} (paper)", "Δ"]
    return h


def markdown(rows: list[list[str]]) -> str:
    h = header()
    lines = ["| " + " | ".join(h) + " |", "|" + "|".join(["---"] + ["---:"] * (len(h) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    note = ("Ours: value [95% bootstrap CI]. Paper: SeTok Tables 3, 5, 6 (top-1 from the Sec. 4.1 text). "
            "— = not available.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def latex(rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("↓", r"$\downarrow$").replace("↑", r"$\uparrow$").replace(
            "Δ", r"$\Delta$").replace("—", "--").replace("#", r"\#")

    h = header()
    out = [r"\begin{tabular}{l" + "r" * (len(h) - 1) + "}", r"\toprule", " & ".join(esc(x) for x in h) + r" \\",
           r"\midrule"]
    out += [" & ".join(esc(x) for x in r) + r" \\" for r in rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.tokenizer_table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--paper", type=Path, default=Path("evaluation/paper_numbers.yaml"))
    ap.add_argument("--md", type=Path, required=True)
    ap.add_argument("--tex", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        rows = build_rows(args.results, args.variants, paper_lookup(args.paper))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_text(args.md, markdown(rows))
    write_text(args.tex, latex(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
