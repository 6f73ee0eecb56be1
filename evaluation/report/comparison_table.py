"""The comparison no paper has: one MLLM recipe over different tokenizers (SeTok's continuous semantic-equivalent
tokens, SemHiTok's discrete hierarchical codes, a patch-level connector baseline), side by side.

``python -m evaluation.report.comparison_table --results results --variants V... --md OUT.md --tex OUT.tex``

Rows: tokens per image, codebook usage (discrete tokenizers only), then the headline metric of every benchmark that
EVERY listed variant was scored on. Columns: the variants, each labelled with its tokenizer. Reads result files only
(``results/<v>/config.yaml``, ``results/<v>/tokenizer/tokens.json``, ``results/<v>/eval/*.json``); a missing value
shows "—", never 0. A value whose file records a provenance that is not clean (precomputed grades, a subset, a
shortcut) carries its symbols, explained in a legend under the table (:mod:`evaluation.provenance`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from evaluation.provenance import Legend, read_marks, tex_marks
from evaluation.report.mllm_table import declared_headline, headline
from evaluation.report.tokenizer_table import DASH, fmt
from setok.cli import run
from setok.io import DataError, read_json, write_text

TOKENIZER_BENCHMARKS = ("fid", "imagenet")  # scored on the tokenizer, not the MLLM


def tokenizer_of(results: Path, variant: str) -> tuple[str, float | None, float | None]:
    """``(label, tokens per image, codebook usage in percent)`` of a variant, from its resolved config and
    ``tokens.json``. Connector baselines: the connector's fixed number of image tokens, no codebook."""
    f = results / variant / "config.yaml"
    if not f.is_file():
        raise DataError(f"{f}: resolved config not found (run the variant first)")
    cfg = yaml.safe_load(f.read_text(encoding="utf-8"))
    connector = cfg["mllm"]["connector"]
    if connector["kind"] != "setok" and cfg["tokenizer"]["kind"] == "setok":
        return f"SigLIP + {connector['kind']}", float(connector["num_tokens"]), None
    tokens = results / variant / "tokenizer" / "tokens.json"
    data = read_json(tokens) if tokens.is_file() else {}
    usage = data.get("codebook_usage")
    label = {"setok": "SeTok", "semhitok": "SemHiTok"}[cfg["tokenizer"]["kind"]]
    return label, data.get("mean"), None if usage is None else 100.0 * float(usage)


def shared_benchmarks(results: Path, variants: list[str]) -> list[str]:
    """Benchmarks with a result for every variant, in the order of the first variant's results (sorted)."""
    per = [{p.stem for p in (results / v / "eval").glob("*.json")} for v in variants]
    common = set.intersection(*per) if per else set()
    return sorted(common - set(TOKENIZER_BENCHMARKS))


def build_rows(
    results: Path, variants: list[str], benchmarks: list[str] | None = None, legend: Legend | None = None
) -> tuple[list[str], list[list[str]]]:
    """Returns ``(column labels, rows)``; the reasons for marked values go to ``legend``."""
    legend = Legend() if legend is None else legend

    def cell(value: float | None, digits: int, where: str, source: Path) -> str:
        return DASH if value is None else fmt(value, digits) + legend.add(where, read_marks(source))

    info = [tokenizer_of(results, v) for v in variants]
    labels = [f"{v} ({label})" for v, (label, _, _) in zip(variants, info)]
    tokens = [results / v / "tokenizer" / "tokens.json" for v in variants]
    rows = [["Tokens / image", "mean", *(cell(t, 1, "tokens", f) for (_, t, _), f in zip(info, tokens))],
            ["Codebook usage", "%", *(cell(u, 1, "tokens", f) for (_, _, u), f in zip(info, tokens))]]
    rfid = [results / v / "eval" / "fid.json" for v in variants]  # the tokenizer's own reconstruction
    rows.append(["Tokenizer rFID", "fid", *(cell(read_json(f)["metrics"].get("fid"), 2, "fid", f) if f.is_file()
                                            else DASH for f in rfid)])
    for b in benchmarks if benchmarks is not None else shared_benchmarks(results, variants):
        metric, cells = declared_headline(b), []
        for v in variants:
            f = results / v / "eval" / f"{b}.json"
            m = read_json(f)["metrics"] if f.is_file() else {}
            metric = metric or headline(b, m)
            cells.append(cell(m.get(metric), 2, b, f))
        rows.append([b, metric or DASH, *cells])
    return labels, rows


def markdown(labels: list[str], rows: list[list[str]], legend: Legend | None = None) -> str:
    h = ["Row", "Metric", *labels]
    lines = ["| " + " | ".join(h) + " |", "|" + "|".join(["---", "---"] + ["---:"] * len(labels)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    note = ("Same MLLM recipe, different tokenizers (no paper reports this). Usage: share of the flattened codebook "
            "used on the tokenizer's evaluation set; continuous tokenizers have none. — = not available.")
    return "\n".join(lines) + "\n\n" + note + "\n" + (legend.markdown() if legend else "")


def esc(s: str) -> str:
    """LaTeX of a cell or legend line of this table."""
    return tex_marks(s.replace("_", r"\_").replace("—", "--").replace("%", r"\%"))


def latex(labels: list[str], rows: list[list[str]], legend: Legend | None = None) -> str:
    h = ["Row", "Metric", *labels]
    out = [r"\begin{tabular}{ll" + "r" * len(labels) + "}", r"\toprule", " & ".join(esc(x) for x in h) + r" \\",
           r"\midrule", *(" & ".join(esc(x) for x in r) + r" \\" for r in rows), r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n" + (legend.latex(esc) if legend else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.comparison_table", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--benchmarks", nargs="*", help="rows to show (default: those every variant was scored on)")
    ap.add_argument("--md", type=Path, required=True)
    ap.add_argument("--tex", type=Path, required=True)
    args = ap.parse_args(argv)

    def job() -> None:
        legend = Legend()
        labels, rows = build_rows(args.results, args.variants, args.benchmarks, legend)
        write_text(args.md, markdown(labels, rows, legend))
        write_text(args.tex, latex(labels, rows, legend))

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
