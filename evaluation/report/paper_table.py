"""One paper table regenerated from results: the paper's number, ours (± half its 95% interval) and the difference
with its interval, per metric column; descriptive columns as the paper prints them. Markdown and LaTeX (booktabs).

``python -m evaluation.report.paper_table --specs reports/tables.yaml --table setok_table6
--paper evaluation/paper_numbers.yaml --results results [--variants V...] --md OUT.md --tex OUT.tex``

Reads table specs, paper numbers and result JSON only (no model, no evaluation). A value that is missing shows "—",
never 0. The best value of each column is bold (as the papers print theirs), among the paper's numbers and among ours
separately, when the column has two or more. ``--variants`` (the variants the workflow ran) limits whose results are
shown; a row of another variant reads "—". A value whose result file records a provenance that is not clean
(precomputed grades, a subset, a shortcut: :mod:`evaluation.provenance`) carries its symbols after "ours" and "Δ",
and the table's notes end with a legend explaining each.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from evaluation import provenance
from evaluation.provenance import Legend, read_marks
from evaluation.report.table_specs import (
    Column,
    PaperValue,
    TableSpec,
    load_paper_numbers,
    load_specs,
    read_ours,
    result_file,
)
from setok.cli import run
from setok.io import DataError, write_text

DASH = "—"
PAPER_TITLES = {"setok": "SeTok", "semhitok": "SemHiTok"}


@dataclass
class Cell:
    text: str
    value: float | None = None  # what "best" compares (None: not a candidate)
    bold: bool = False
    mark: str = ""  # footnote symbols after the number: the paper's ("*": training set observed), ours' provenance


def fmt(value: float | None, digits: int, *, sign: bool = False) -> str:
    """``value`` with ``digits`` decimals; a nonzero value that would print as zero keeps two significant digits (the
    CI-sized models' TFLOPs); ``None`` is "—"."""
    if value is None:
        return DASH
    if value != 0 and abs(value) < 0.5 * 10.0**-digits:
        return f"{value:+.2g}" if sign else f"{value:.2g}"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def paper_cell(p: PaperValue | None, column: Column) -> Cell:
    if p is None:
        return Cell(DASH)
    if isinstance(p.value, str):
        return Cell(p.value, mark=p.mark)
    if column.kind == "info":
        return Cell(f"{p.value:g}", mark=p.mark)
    return Cell(fmt(p.value, column.digits), p.value, mark=p.mark)


def ours_cells(value: float | None, ci: tuple[float, float] | None, paper: float | None, column: Column
               ) -> tuple[Cell, Cell]:
    """``(ours, Δ)``: ours ± half the interval's width; Δ = ours - paper with the interval shifted by the paper."""
    if value is None:
        return Cell(DASH), Cell(DASH)
    d = column.digits
    text = fmt(value, d)
    if ci is not None and math.isfinite(ci[1] - ci[0]) and ci[1] > ci[0]:
        text += f" ± {fmt((ci[1] - ci[0]) / 2, d)}"
    if paper is None:
        return Cell(text, value), Cell(DASH)
    delta = fmt(value - paper, d, sign=True)
    if ci is not None:
        delta += f" [{fmt(ci[0] - paper, d, sign=True)}, {fmt(ci[1] - paper, d, sign=True)}]"
    return Cell(text, value), Cell(delta)


def mark_best(cells: list[Cell], better: str | None) -> None:
    """Bold every cell holding the best value (ties included) when two or more cells hold values."""
    values = [c.value for c in cells if c.value is not None]
    if better is None or len(values) < 2:
        return
    best = min(values) if better == "lower" else max(values)
    for c in cells:
        c.bold = c.value is not None and c.value == best


@dataclass
class TableData:
    spec: TableSpec
    header: list[tuple[str, int]]  # (group title, span) over the data columns
    subheader: list[str]
    rows: list[list[Cell]]  # label cell first
    legend: Legend  # why values of ours are marked

def build(spec: TableSpec, paper: dict[tuple[str, str, str, str], PaperValue], results: Path,
          variants: list[str] | None = None) -> TableData:
    """The cells of ``spec``: per metric column paper / ours / Δ, per info column the paper's value."""
    shown = None if variants is None else set(variants)
    legend = Legend()
    rows: list[list[Cell]] = []
    header: list[tuple[str, int]] = []
    subheader: list[str] = []
    for c in spec.columns:
        arrow = {"lower": " ↓", "higher": " ↑"}.get(c.better or "", "")
        header.append((c.title + arrow, 1 if c.kind == "info" else 3))
        subheader += ["Paper"] if c.kind == "info" else ["Paper", "Ours", "Δ (95% CI)"]
    for r in spec.rows:
        label = r.label if r.variant is None else f"{r.label} (`{r.variant}`)"
        cells = [Cell(label)]
        for c in spec.columns:
            p = paper.get((spec.paper, spec.table, r.key, c.key))
            pc = paper_cell(p, c)
            if c.kind == "info":
                cells.append(pc)
                continue
            measured = r.variant is not None and (shown is None or r.variant in shown)
            value, ci = read_ours(results, r.variant, c) if measured else (None, None)
            ours, delta = ours_cells(value, ci, pc.value, c)
            if value is not None:
                ours.mark = legend.add(c.benchmark, read_marks(result_file(results, r.variant, c.key)))
                delta.mark = ours.mark if delta.text != DASH else ""
            cells += [pc, ours, delta]
        rows.append(cells)
    # Bold the best paper value and the best of ours per metric column.
    col = 1
    for c in spec.columns:
        if c.kind == "metric":
            mark_best([row[col] for row in rows], c.better)
            mark_best([row[col + 1] for row in rows], c.better)
            col += 3
        else:
            col += 1
    return TableData(spec=spec, header=header, subheader=subheader, rows=rows, legend=legend)


def caption(spec: TableSpec) -> str:
    return f"{PAPER_TITLES.get(spec.paper, spec.paper)} Table {spec.table}: {spec.title}"


def notes(spec: TableSpec) -> str:
    lost = (" The extracted paper text lost this table's numbers: its paper column holds only what the prose quotes"
            " (— elsewhere), and the rows and columns are the ones the prose names.") if spec.lost else ""
    return (f"Paper: `evaluation/paper_numbers.yaml` ({spec.paper}, Table {spec.table}). Ours: `results/<variant>/`; "
            "± is half the 95% bootstrap interval, Δ = ours − paper with the interval shifted by the paper's value. "
            f"Bold: best per column (paper and ours separately). — = not available.{lost}\n")


def markdown(data: TableData) -> str:
    def md(c: Cell) -> str:
        text = c.text.replace("|", "\\|")
        text = f"**{text}**" if c.bold and text != DASH else text
        return text + "".join("\\" + m if m in "*_" else m for m in c.mark)

    head = ["Model"]
    for (title, span), sub in zip(_expand(data.header), data.subheader):
        head.append(title if span == 1 else sub if sub.startswith("Δ") else f"{title} ({sub.lower()})")
    lines = [f"### {caption(data.spec)}", "", "| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(md(c) for c in row) + " |" for row in data.rows]
    return "\n".join(lines) + "\n\n" + notes(data.spec) + data.legend.markdown()


def _expand(header: list[tuple[str, int]]) -> list[tuple[str, int]]:
    return [h for h in header for _ in range(h[1])]


LATEX_SUBS = (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
              ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}"))
LATEX_SYMBOLS = (("↓", r"$\downarrow$"), ("↑", r"$\uparrow$"), ("Δ", r"$\Delta$"), ("±", r"$\pm$"), ("—", "--"),
                 ("−", "-"), ("×", r"$\times$"), ("‡", r"$\ddagger$"), ("†", r"$\dagger$"),
                 *provenance.LATEX_SYMBOLS.items())


def tex_escape(s: str) -> str:
    s = s.replace("`", "")
    for a, b in LATEX_SUBS:
        s = s.replace(a, b)
    for a, b in LATEX_SYMBOLS:
        s = s.replace(a, b)
    return s


def latex(data: TableData) -> str:
    def tex(c: Cell) -> str:
        text = tex_escape(c.text)
        text = rf"\textbf{{{text}}}" if c.bold and c.text != DASH else text
        return text + tex_escape(c.mark).replace("*", "$^*$")

    ncols = 1 + sum(span for _, span in data.header)
    top, rules, col = [""], [], 2
    for title, span in data.header:
        top.append(rf"\multicolumn{{{span}}}{{c}}{{{tex_escape(title)}}}")
        rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
        col += span
    out = [rf"% {tex_escape(caption(data.spec))}", r"\begin{tabular}{l" + "r" * (ncols - 1) + "}", r"\toprule",
           " & ".join(top) + r" \\", " ".join(rules),
           " & ".join(["Model", *(tex_escape(s) for s in data.subheader)]) + r" \\", r"\midrule"]
    out += [" & ".join(tex(c) for c in row) + r" \\" for row in data.rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n" + data.legend.latex(tex_escape)


def render(specs: Path, table: str, paper: Path, results: Path, variants: list[str] | None) -> tuple[str, str]:
    """Markdown and LaTeX of table ``table``."""
    all_specs = load_specs(specs)
    if table not in all_specs:
        raise DataError(f"{specs}: no table {table!r} (known: {', '.join(sorted(all_specs))})")
    data = build(all_specs[table], load_paper_numbers(paper), results, variants)
    return markdown(data), latex(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.paper_table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--specs", type=Path, default=Path("reports/tables.yaml"))
    ap.add_argument("--table", required=True, help="a table id of the specs, e.g. setok_table6")
    ap.add_argument("--paper", type=Path, default=Path("evaluation/paper_numbers.yaml"))
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="*", help="the variants whose results are shown (default: all)")
    ap.add_argument("--md", type=Path, required=True)
    ap.add_argument("--tex", type=Path, required=True)
    args = ap.parse_args(argv)

    def job() -> None:
        md, tex = render(args.specs, args.table, args.paper, args.results, args.variants)
        write_text(args.md, md)
        write_text(args.tex, tex)

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
