"""The static report ``reports/index.html``: every table and figure, each variant's resolved config and result
provenance, and what differs from the paper. One self-contained page: no JavaScript, no external resources.

``python -m evaluation.report.html --tables T.md... --figures F.png... --results results --variants V...
--notes docs/paper-notes.md --title STR --out reports/index.html``

Tables and notes are Markdown (CommonMark plus pipe tables; raw HTML in them is shown as text); their marks and
legends (:mod:`evaluation.provenance`) come with them. The provenance section lists, per result file, why its values
are marked (precomputed grades, a subset, a shortcut) or "—" for a measured score. Figures are linked by
their path relative to the output's folder and grouped by their folder's name. The page holds no generation time, so
the same inputs give the same bytes; its header names the git revision of the working directory.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup

from evaluation import provenance as prov
from evaluation import results
from setok.cli import run
from setok.io import DataError, read_json, write_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
DASH = "—"
SHA_CHARS = 12


@dataclass(frozen=True)
class Table:
    anchor: str
    title: str
    html: Markup


@dataclass(frozen=True)
class Figure:
    src: str
    caption: str


@dataclass(frozen=True)
class ResultRow:
    benchmark: str
    n: str
    config_sha: str
    git_sha: str
    checkpoint: str
    marks: list[str]  # "<symbol> <why>" per reason its values are marked; empty for a measured score


@dataclass(frozen=True)
class Provenance:
    variant: str
    config: str
    results: list[ResultRow]


def markdown(text: str) -> Markup:
    """CommonMark with GitHub pipe tables; raw HTML in the source is escaped, not passed through."""
    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; a missing or undecodable file is a :class:`DataError` naming it."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_table(path: Path, index: int) -> Table:
    """A Markdown table file; its title is its first ``### Title`` line (else the file's stem)."""
    text = read_text(path)
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    title = first.lstrip("#").strip() if first.startswith("#") else path.stem
    return Table(anchor=f"table-{index}", title=title, html=markdown(text))


def figure_src(figure: Path, out: Path) -> str:
    """``figure``'s path relative to ``out``'s folder, with forward slashes, URL-quoted."""
    rel = os.path.relpath(figure, out.parent)
    return quote(rel.replace(os.sep, "/"))


def group_figures(figures: list[Path], out: Path) -> dict[str, list[Figure]]:
    """Figures by their folder's name, groups and figures in the order given; each file must exist."""
    groups: dict[str, list[Figure]] = {}
    for path in figures:
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        caption = path.stem.replace("_", " ")
        groups.setdefault(path.parent.name, []).append(Figure(figure_src(path, out), caption))
    return groups


def short(value: Any) -> str:
    """A sha's first characters, or "—" when there is none."""
    return DASH if value is None else str(value)[:SHA_CHARS]


def result_row(path: Path) -> ResultRow:
    """The provenance of one result file (``evaluation.results``' contract)."""
    record = read_json(path)
    if not isinstance(record, dict) or "benchmark" not in record:
        raise DataError(f"{path}: not a result file (no 'benchmark' key)")
    n, checkpoint = record.get("n"), record.get("checkpoint")
    why = prov.marks(prov.Provenance.from_json(record["provenance"], path)) if "provenance" in record else ()
    return ResultRow(benchmark=str(record["benchmark"]), n=DASH if n is None else str(n),
                     config_sha=short(record.get("config_sha")), git_sha=short(record.get("git_sha")),
                     checkpoint=DASH if checkpoint is None else str(checkpoint),
                     marks=[f"{m.symbol} {m.text}" for m in why])


def read_provenance(results_dir: Path, variant: str) -> Provenance:
    """``results/<variant>/config.yaml`` (required) and every ``eval/*.json`` result file (possibly none)."""
    folder = results_dir / variant
    paths = sorted((folder / "eval").glob("*.json"))  # R.samples.jsonl (per-sample scores) does not match
    return Provenance(variant=variant, config=read_text(folder / "config.yaml"),
                      results=[result_row(p) for p in paths])


def render(title: str, tables: list[Table], figures: dict[str, list[Figure]], provenance: list[Provenance],
           notes: Markup, revision: str) -> str:
    """The page from ``templates/index.html.j2`` (autoescaped; Markdown comes in as already-rendered HTML)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template("index.html.j2").render(title=title, tables=tables, figures=figures,
                                                     provenance=provenance, notes=notes, revision=revision,
                                                     meanings=prov.MEANINGS)


def build(args: argparse.Namespace) -> str:
    """Read every input named by ``args`` and render the page."""
    tables = [read_table(p, i) for i, p in enumerate(args.tables, start=1)]
    figures = group_figures(args.figures, args.out)
    provenance = [read_provenance(args.results, v) for v in args.variants]
    notes = markdown(read_text(args.notes))
    return render(args.title, tables, figures, provenance, notes, results.git_sha() or "unknown")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.html", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tables", type=Path, nargs="*", default=[], help="Markdown tables, each '### Title' first")
    ap.add_argument("--figures", type=Path, nargs="*", default=[], help="PNG figures, grouped by folder name")
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="*", default=[], help="variants whose config and results are shown")
    ap.add_argument("--notes", type=Path, default=Path("docs/paper-notes.md"))
    ap.add_argument("--title", default="Reproduction report")
    ap.add_argument("--out", type=Path, default=Path("reports/index.html"))
    args = ap.parse_args(argv)

    def job() -> None:
        try:
            write_text(args.out, build(args))
        except OSError as e:
            raise DataError(f"{e.filename or args.out}: {e.strerror or e}") from None
        print(args.out)

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
