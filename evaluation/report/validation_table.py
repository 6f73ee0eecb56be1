"""The evaluation pipeline's validation table: a public checkpoint's scores beside its published numbers.

    python -m evaluation.report.validation_table --results results --variants llava15_7b \
        --references evaluation/references.yaml --paper evaluation/paper_numbers.yaml \
        --md reports/tables/validation.md --tex reports/tables/validation.tex

A reference variant (config ``reference_variants``) runs a released checkpoint through the same task builders,
prompts, prediction writers and scorers as the harness's own models. Where its scores land on the numbers its authors
published, the pipeline measures what the papers measure; where they do not, the verdict says by how much.

One row per benchmark the variant is scored on (its ``mllm_benchmarks``, read from ``results/<variant>/config.yaml``)
and per benchmark with a published number it is not scored on: benchmark, metric, published value and where it is
printed, ours with its 95% bootstrap interval, Δ = ours - published, and the verdict:

* ``within the 95% CI``: the published value lies inside our interval;
* ``off by +x.xx (k.k× the CI half-width)``: it does not (the half-width is the larger side's distance);
* ``not comparable``: the published number measures something else than the configured scorer
  (``evaluation/references.yaml`` ``not_comparable``, with its note);
* ``—``: nothing to hold against (no result, or no published number).

Published numbers are rows of ``evaluation/paper_numbers.yaml`` (checked against the papers' text), named by
``evaluation/references.yaml``: the first source printing a benchmark wins unless ``prefer`` names another, and a
source that prints a different value is listed beside it. A result with a marked provenance (precomputed grades, a
subset) carries its symbols, explained in the legend (:mod:`evaluation.provenance`).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evaluation.provenance import Legend, read_marks, tex_marks
from evaluation.report.mllm_table import declared_headline
from evaluation.report.table_specs import load_paper_numbers
from evaluation.report.tokenizer_table import DASH, fmt
from setok.cli import run
from setok.io import DataError, read_json, write_text

PAPER_NAMES = {"setok": "SeTok", "semhitok": "SemHiTok"}
TITLE = "Validation of the evaluation pipeline on public checkpoints"
HEADER = ["Benchmark", "Metric", "Published", "Source", "Ours (95% CI)", "Δ", "Verdict"]


@dataclass(frozen=True)
class Published:
    """A published number and where it is printed (``"SeTok T14"``); ``others``: sources printing another value."""

    value: float
    source: str
    others: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReferenceSpec:
    """One reference variant's entry of ``evaluation/references.yaml``."""

    variant: str
    model: str
    sources: tuple[tuple[str, str, str], ...]  # (paper, table, row) of paper_numbers.yaml, in order of precedence
    prefer: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (paper, table)
    notes: dict[str, str] = field(default_factory=dict)  # benchmark -> how the published protocol differs
    not_comparable: tuple[str, ...] = ()


def _where(paper: str, table: str) -> str:
    return f"{PAPER_NAMES.get(paper, paper)} T{table}"


def load_references(path: Path, numbers: dict[tuple[str, str, str, str], Any]) -> dict[str, ReferenceSpec]:
    """``evaluation/references.yaml`` -> variant -> spec, each source checked to name rows of ``numbers``.

    Raises:
        DataError: A missing file, a malformed entry or a source that names no row (one line naming the key).
    """
    if not path.is_file():
        raise DataError(f"{path}: references file not found")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    rows = {(p, t, r) for p, t, r, _c in numbers}
    out = {}
    for variant, entry in data.items():
        where = f"{path}: {variant}"
        if not isinstance(entry, dict) or not entry.get("sources"):
            raise DataError(f"{where}: needs a non-empty 'sources' list")
        sources = []
        for i, s in enumerate(entry["sources"]):
            key = (str(s.get("paper")), str(s.get("table")), str(s.get("row")))
            if key not in rows:
                raise DataError(f"{where}.sources[{i}]: no row {key[2]!r} in {key[0]} table {key[1]} of the paper "
                                "numbers")
            sources.append(key)
        prefer = {}
        for column, s in (entry.get("prefer") or {}).items():
            pt = (str(s.get("paper")), str(s.get("table")))
            if not any(k[:2] == pt for k in sources):
                raise DataError(f"{where}.prefer.{column}: {pt[0]} table {pt[1]} is not one of its sources")
            prefer[column] = pt
        out[variant] = ReferenceSpec(variant=variant, model=str(entry.get("model", variant)), sources=tuple(sources),
                                     prefer=prefer, notes={k: " ".join(str(v).split())
                                                           for k, v in (entry.get("notes") or {}).items()},
                                     not_comparable=tuple(entry.get("not_comparable") or ()))
    return out


def published_numbers(spec: ReferenceSpec, numbers: dict[tuple[str, str, str, str], Any]) -> dict[str, Published]:
    """``benchmark.metric`` -> the published number of ``spec``'s checkpoint (descriptive ``info.*`` left out)."""
    by_column: dict[str, list[tuple[tuple[str, str], float]]] = {}
    for paper, table, row in spec.sources:
        for (p, t, r, column), v in numbers.items():
            if (p, t, r) == (paper, table, row) and not isinstance(v.value, str) and not column.startswith("info."):
                by_column.setdefault(column, []).append(((paper, table), float(v.value)))
    out = {}
    for column, printed in by_column.items():
        chosen = next((x for x in printed if x[0] == spec.prefer.get(column)), printed[0])
        others = tuple(f"{_where(*pt)}: {fmt(v, 1)}" for pt, v in printed if v != chosen[1])
        out[column] = Published(value=chosen[1], source=_where(*chosen[0]), others=others)
    return out


def verdict(published: float | None, ours: float | None, ci: list[float] | None, *, comparable: bool = True) -> str:
    """Whether ``published`` lies in our 95% interval ``ci``, or how far off it is (module docstring)."""
    if published is None or ours is None:
        return DASH
    if not comparable:
        return "not comparable (see note)"
    if ci is None:
        return f"off by {ours - published:+.2f} (no interval)" if ours != published else "equal (no interval)"
    lo, hi = float(ci[0]), float(ci[1])
    if lo <= published <= hi:
        return "within the 95% CI"
    half = (hi - ours) if published > ours else (ours - lo)
    scale = f"{abs(ours - published) / half:.1f}× the CI half-width" if half > 0 else "CI of zero width"
    return f"off by {ours - published:+.2f} ({scale})"


def configured_benchmarks(results: Path, variant: str) -> list[str]:
    """The variant's ``mllm_benchmarks`` from its resolved config (``results/<variant>/config.yaml``)."""
    path = results / variant / "config.yaml"
    if not path.is_file():
        raise DataError(f"{path}: resolved config not found (run `snakemake {path}`)")
    return list((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("mllm_benchmarks") or [])


def build_rows(results: Path, spec: ReferenceSpec, benchmarks: list[str], published: dict[str, Published],
               legend: Legend) -> list[list[str]]:
    """One row per benchmark: configured ones first (in config order), then those only published."""
    extra = [c.split(".", 1)[0] for c in published if c.split(".", 1)[0] not in benchmarks]
    rows = []
    for b in [*benchmarks, *dict.fromkeys(extra)]:
        column = next((c for c in published if c.split(".", 1)[0] == b), None)
        metric = column.split(".", 1)[1] if column else declared_headline(b)
        pub = published.get(column) if column else None
        f = results / spec.variant / "eval" / f"{b}.json"
        ours, ci, marks = None, None, ""
        if b in benchmarks and f.is_file():
            data = read_json(f)
            value = data.get("metrics", {}).get(metric)
            if value is not None:
                ours, ci = float(value), data.get("ci95", {}).get(metric)
                marks = legend.add(b, read_marks(f))
        cell = DASH if ours is None else fmt(ours, 2) + marks + (
            f" [{fmt(ci[0], 2)}, {fmt(ci[1], 2)}]" if ci else "")
        delta = DASH if ours is None or pub is None else f"{ours - pub.value:+.2f}{marks}"
        source = DASH if pub is None else pub.source + "".join(f" ({o})" for o in pub.others)
        note = " †" if b in spec.notes else ""
        rows.append([b + note, metric or DASH, DASH if pub is None else fmt(pub.value, 2), source, cell, delta,
                     verdict(None if pub is None else pub.value, ours, ci, comparable=b not in spec.not_comparable)])
    return rows


def markdown(spec: ReferenceSpec, rows: list[list[str]], legend: Legend) -> str:
    lines = [f"#### {spec.variant}: {spec.model}", "", "| " + " | ".join(HEADER) + " |",
             "|" + "|".join(["---", "---", "---:", "---", "---:", "---:", "---"]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = [f"- † {b}: {n}" for b, n in spec.notes.items() if any(r[0] == f"{b} †" for r in rows)]
    return "\n".join(lines) + "\n\n" + ("\n".join(notes) + "\n" if notes else "")


def esc(s: str) -> str:
    return tex_marks(s.replace("_", r"\_").replace("Δ", r"$\Delta$").replace("—", "--").replace("†", r"$^\dagger$")
                     .replace("×", r"$\times$").replace("%", r"\%"))


def latex(spec: ReferenceSpec, rows: list[list[str]]) -> str:
    out = [r"\begin{tabular}{llrlrrl}", r"\toprule", " & ".join(esc(x) for x in HEADER) + r" \\", r"\midrule",
           *(" & ".join(esc(x) for x in r) + r" \\" for r in rows), r"\bottomrule", r"\end{tabular}"]
    return f"% {esc(spec.variant)}: {esc(spec.model)}\n" + "\n".join(out) + "\n"


def write_tables(results: Path, variants: list[str], references: Path, paper: Path, md: Path, tex: Path) -> None:
    numbers = load_paper_numbers(paper)
    specs = load_references(references, numbers)
    legend = Legend()
    md_parts = [f"### {TITLE}", "",
                "Public checkpoints through this harness's prompts, predictors and scorers, beside their published "
                "numbers (Δ = ours - published; verdict: is the published value inside our 95% bootstrap interval).",
                ""]
    tex_parts = []
    for v in variants:
        if v not in specs:
            raise DataError(f"{references}: no entry for reference variant {v!r} (its published rows)")
        rows = build_rows(results, specs[v], configured_benchmarks(results, v), published_numbers(specs[v], numbers),
                          legend)
        md_parts.append(markdown(specs[v], rows, legend))
        tex_parts.append(latex(specs[v], rows))
    write_text(md, "\n".join(md_parts) + legend.markdown())
    write_text(tex, "\n".join(tex_parts) + legend.latex(esc))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.validation_table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="*", default=[], help="the reference variants (config reference_variants)")
    ap.add_argument("--references", type=Path, default=Path("evaluation/references.yaml"))
    ap.add_argument("--paper", type=Path, default=Path("evaluation/paper_numbers.yaml"))
    ap.add_argument("--md", type=Path, required=True)
    ap.add_argument("--tex", type=Path, required=True)
    args = ap.parse_args(argv)
    return run(lambda: write_tables(args.results, args.variants, args.references, args.paper, args.md, args.tex))


if __name__ == "__main__":
    raise SystemExit(main())
