"""The SeTokIM benchmark table: one row per benchmark, its headline metric per variant, beside the paper's number.

``python -m evaluation.report.mllm_table --results results --variants V... --benchmarks B... --md OUT.md --tex OUT.tex``

Reads result JSON and paper numbers only. The paper column is the SeTok paper's value for the first variant's row
(``evaluation/paper_numbers.yaml``); a missing value shows "—", never 0. A value whose result records a provenance
that is not clean (precomputed grades, a subset, a shortcut) carries its symbols, and so does its Δ; a legend under
the table explains them (:mod:`evaluation.provenance`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from evaluation import registry
from evaluation.provenance import Legend, read_marks, tex_marks
from evaluation.report.tokenizer_table import DASH, fmt, paper_lookup
from setok.cli import run
from setok.io import read_json, write_text


def declared_headline(benchmark: str) -> str | None:
    """The metric the paper's tables report for ``benchmark`` (its class's ``headline``), or ``None``."""
    if benchmark not in registry.names():
        return None
    return registry.get(benchmark).headline or None


def headline(benchmark: str, metrics: dict[str, float]) -> str:
    """The metric shown for ``benchmark`` (its declared headline, else the first metric)."""
    return declared_headline(benchmark) or next(iter(metrics), "")


def build_rows(results: Path, variants: list[str], benchmarks: list[str], paper: dict[tuple[str, str], float],
               legend: Legend | None = None) -> list[list[str]]:
    """One row per benchmark: name, metric, each variant's value (with its marks, recorded in ``legend``), the
    paper's value and Δ (first variant - paper, with the first variant's marks)."""
    legend = Legend() if legend is None else legend
    rows = []
    for b in benchmarks:
        metric = declared_headline(b)
        cells, values, first_marks = [], [], ""
        for i, v in enumerate(variants):
            f = results / v / "eval" / f"{b}.json"
            if not f.is_file():
                cells.append(DASH)
                values.append(None)
                continue
            m = read_json(f)["metrics"]
            metric = metric or headline(b, m)
            value = m.get(metric)
            marks = legend.add(b, read_marks(f)) if value is not None else ""
            first_marks = marks if i == 0 else first_marks
            cells.append(fmt(value, 2) + marks)
            values.append(None if value is None else float(value))
        p = paper.get((variants[0], f"{b}.{metric}")) if variants else None
        ours = values[0] if values else None
        delta = DASH if p is None or ours is None else f"{float(fmt(ours, 2)) - p:+.2f}{first_marks}"
        rows.append([b, metric or DASH, *cells, fmt(p, 2), delta])
    return rows


def markdown(variants: list[str], rows: list[list[str]], legend: Legend | None = None) -> str:
    h = ["Benchmark", "Metric", *variants, "Paper", "Δ"]
    lines = ["| " + " | ".join(h) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(h) - 2)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    note = f"Paper: SeTokIM (SeTok Tables 1, 2, 4) for {variants[0] if variants else DASH}; Δ = first variant - paper."
    return "\n".join(lines) + "\n\n" + note + "\n" + (legend.markdown() if legend else "")


def esc(s: str) -> str:
    """LaTeX of a cell or legend line of this table."""
    return tex_marks(s.replace("_", r"\_").replace("Δ", r"$\Delta$").replace("—", "--"))


def latex(variants: list[str], rows: list[list[str]], legend: Legend | None = None) -> str:
    h = ["Benchmark", "Metric", *variants, "Paper", "Δ"]
    out = [r"\begin{tabular}{ll" + "r" * (len(h) - 2) + "}", r"\toprule", " & ".join(esc(x) for x in h) + r" \\",
           r"\midrule", *(" & ".join(esc(x) for x in r) + r" \\" for r in rows), r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n" + (legend.latex(esc) if legend else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.mllm_table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--benchmarks", nargs="+", required=True)
    ap.add_argument("--paper", type=Path, default=Path("evaluation/paper_numbers.yaml"))
    ap.add_argument("--md", type=Path, required=True)
    ap.add_argument("--tex", type=Path, required=True)
    args = ap.parse_args(argv)

    def job() -> None:
        legend = Legend()
        rows = build_rows(args.results, args.variants, args.benchmarks, paper_lookup(args.paper), legend)
        write_text(args.md, markdown(args.variants, rows, legend))
        write_text(args.tex, latex(args.variants, rows, legend))

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
