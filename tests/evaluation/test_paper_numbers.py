"""evaluation/paper_numbers.yaml against the papers' text, and reports/tables.yaml against it, the configs and the
benchmark registry: a mistyped number, a row under the wrong variant or a column no scorer produces fails here.

The papers' text is the table lines vendored in tests/fixtures/papers/ (verbatim excerpts of the text extracted from
the PDFs, written by tests/fixtures/papers/excerpts.py), so these checks run wherever the repository is checked out.
Where the full extracted text sits beside the checkout (../shared/papers/), one more test checks the excerpts
against it; ``SETOK_REQUIRE_PAPERS=1`` makes that test fail instead of skip when the text is absent.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from evaluation import registry
from evaluation.report.table_specs import load_paper_numbers, load_specs

ROOT = Path(__file__).parents[2]
PAPERS = ROOT.parent / "shared" / "papers"  # the full extracted text, outside the repository (optional)


def _load_excerpts() -> ModuleType:
    path = ROOT / "tests" / "fixtures" / "papers" / "excerpts.py"
    spec = importlib.util.spec_from_file_location("paper_excerpts", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_excerpts"] = module
    spec.loader.exec_module(module)
    return module


EXCERPTS = _load_excerpts()
NUMBERS = load_paper_numbers(ROOT / "evaluation" / "paper_numbers.yaml")
SPECS = load_specs(ROOT / "reports" / "tables.yaml")
# Columns that are not benchmark results: the tokenizer's statistics, the MLLM's cost, the paper's descriptive text.
SIDE_METRICS = {"tokens": {"mean", "vocab_size", "codebook_usage_percent"}, "cost": {"tokens", "tflops"}}


def paper_lines(paper: str) -> list[str]:
    """The vendored table lines of ``paper`` (tests/fixtures/papers/<paper>_tables.txt)."""
    return EXCERPTS.excerpt_lines(paper)


def by_row() -> dict[tuple[str, str, str], dict[str, object]]:
    rows: dict[tuple[str, str, str], dict[str, object]] = defaultdict(dict)
    for (paper, table, row, column), p in NUMBERS.items():
        rows[paper, table, row][column] = p.value
    return rows


@pytest.mark.parametrize("key", sorted(by_row()), ids=lambda k: "/".join(k))
def test_every_row_is_one_line_of_the_paper(key: tuple[str, str, str]) -> None:
    """All the numbers and words of one table row occur together on one line of the extracted text (the row as
    printed), so a number typed under the wrong row or column of a neighbouring row is caught."""
    values = by_row()[key]
    numbers = {float(v) for v in values.values() if not isinstance(v, str)}
    words = {v for v in values.values() if isinstance(v, str)}
    hits = [line for line in paper_lines(key[0]) if EXCERPTS.holds_row(line, numbers, words)]
    assert hits, f"no line of {EXCERPTS.PAPERS[key[0]].excerpt} holds {sorted(numbers)} {sorted(words)}"


@pytest.mark.parametrize("paper", sorted(EXCERPTS.PAPERS))
def test_excerpts_are_verbatim_lines_of_the_extracted_text(paper: str) -> None:
    """Every vendored block is the lines it names of the full extracted text, and the excerpt is what
    tests/fixtures/papers/excerpts.py writes from it today (so it holds every table row paper_numbers.yaml needs)."""
    source = PAPERS / EXCERPTS.PAPERS[paper].source
    if not source.is_file():
        message = f"{source} is not beside this checkout: the vendored excerpt cannot be checked against it"
        if os.environ.get("SETOK_REQUIRE_PAPERS") == "1":
            pytest.fail(message + " (SETOK_REQUIRE_PAPERS=1)")
        pytest.skip(message)
    lines = source.read_text(encoding="utf-8").splitlines()
    excerpt = ROOT / "tests" / "fixtures" / "papers" / EXCERPTS.PAPERS[paper].excerpt
    blocks = EXCERPTS.read_excerpt(excerpt)
    assert blocks
    for first, body in blocks:
        assert body == lines[first - 1:first - 1 + len(body)], f"{excerpt.name}: block at line {first} is not verbatim"
    rows = [v for k, v in EXCERPTS.paper_rows().items() if k[0] == paper]
    want = EXCERPTS.render(paper, lines, EXCERPTS.blocks(lines, EXCERPTS.row_lines(lines, rows)))
    assert excerpt.read_text(encoding="utf-8") == want, \
        f"{excerpt.name} is stale: rerun .venv/bin/python tests/fixtures/papers/excerpts.py"


def test_nothing_outside_tests_reads_the_papers_folder_beside_the_checkout() -> None:
    """The repository is self-contained: only tests/ (optionally) looks at ../shared; code, configs and docs cite the
    vendored excerpts instead."""
    skip = {".venv", ".git", ".cache", ".snakemake", "results", "logs", "tests", "__pycache__"}
    offenders = []
    stack = [ROOT]
    while stack:
        for path in stack.pop().iterdir():
            if path.name in skip or path.is_symlink():
                continue
            if path.is_dir():
                stack.append(path)
            elif path.suffix in {".py", ".yaml", ".yml", ".md", ".smk", ".toml", ".txt", ".j2", ".cfg", ".sh", ""}:
                if "../shared" in path.read_text(encoding="utf-8", errors="replace"):
                    offenders.append(str(path.relative_to(ROOT)))
    assert not offenders


def test_excerpt_headers_name_the_paper() -> None:
    setok = (ROOT / "tests/fixtures/papers/setok_tables.txt").read_text(encoding="utf-8")
    semhitok = (ROOT / "tests/fixtures/papers/semhitok_tables.txt").read_text(encoding="utf-8")
    assert setok.startswith("# Towards Semantic Equivalence of Tokenization in Multimodal LLM")
    assert "arXiv 2406.05127" in setok.splitlines()[0]
    assert semhitok.startswith("# SemHiTok: A Unified Image Tokenizer via Semantic-Guided Hierarchical Codebook")
    for text in (setok, semhitok):
        assert "of the text extracted from the PDF, verbatim @@" in text


@pytest.mark.parametrize("paper, table, row, column, value", [
    # SeTok, read off the extracted text (tests/fixtures/papers/setok_tables.txt) by hand
    ("setok", "6", "hard_cluster", "fid.fid", 2.07),
    ("setok", "6", "no_contrastive", "vqav2.accuracy", 65.8),
    ("setok", "6", "no_inter", "coco_fid.fid", 13.9),
    ("setok", "6", "no_merger", "gqa.accuracy", 50.5),
    ("setok", "6", "no_pe", "flickr30k.cider", 86.1),
    ("setok", "5", "soft_cluster", "okvqa.accuracy", 58.9),
    ("setok", "5", "fixed_256", "cost.tflops", 15.7),
    ("setok", "5", "fixed_8", "flickr30k.cider", 82.1),
    ("setok", "5", "hard_cluster", "tokens.mean", 25),
    ("setok", "3", "titok", "imagenet.top1", 72.6),
    ("setok", "11", "only_contrastive", "gqa.accuracy", 63.4),
    ("setok", "13", "qformer_connector", "cost.tflops", 12.4),
    ("setok", "13", "hard_cluster", "vqav2.accuracy", 78.7),
    ("setok", "14", "setok_llava", "mmvet.score", 40.3),
    ("setok", "14", "llava_1_5", "mme.perception", 1510.7),
    # SemHiTok, read off the extracted text (tests/fixtures/papers/semhitok_tables.txt) by hand
    ("semhitok", "2", "semhitok", "fid.fid", 1.16),
    ("semhitok", "2", "vqgan_lc_100k", "tokens.vocab_size", 100000),
    ("semhitok", "2", "semhitok_384", "tokens.mean", 729),
    ("semhitok", "4", "siglip", "pope.f1", 83.76),
    ("semhitok", "4", "semhitok_t7_sghc", "mme.perception", 1355.8),
    ("semhitok", "5", "semhitok", "mme.total", 1775.9),
    ("semhitok", "5", "semhitok_384", "mmbench.accuracy", 75.2),
    ("semhitok", "5", "emu3", "mmvet.score", 37.2),
    ("semhitok", "7", "semhitok_t7_dual_mlp", "fid.fid", 1.42),
    ("semhitok", "8", "semhitok", "mjhq_fid.fid", 5.40),
    ("semhitok", "8", "liquid", "genai_bench.advanced", 0.65),
    ("semhitok", "9", "semhitok_concat_dim_16", "tokens.codebook_usage_percent", 79.3),
    ("semhitok", "9b", "semhitok_vq_norm_48", "mme.perception", 1249.6),
])
def test_hand_checked_numbers(paper: str, table: str, row: str, column: str, value: float) -> None:
    assert NUMBERS[paper, table, row, column].value == pytest.approx(value)


def test_marks_and_words_of_the_paper_are_kept() -> None:
    assert NUMBERS["setok", "14", "setok_llava", "vqav2.accuracy"].mark == "*"
    assert NUMBERS["setok", "14", "setok_llava", "vizwiz.accuracy"].mark == ""
    assert NUMBERS["setok", "5", "soft_cluster", "tokens.mean"].mark == "*"
    assert NUMBERS["setok", "13", "hard_cluster", "cost.tokens"].value == "Dynamic"
    assert NUMBERS["semhitok", "2", "rqvae_1024", "tokens.mean"].mark == "‡"
    assert NUMBERS["semhitok", "4", "toklip", "info.llm"].value == "Qwen2.5-7B-Ins"
    # a dash in the paper is no entry, never 0
    assert ("semhitok", "5", "llava_phi", "seed.accuracy") not in NUMBERS
    assert ("semhitok", "8", "janus", "genai_bench.basic") not in NUMBERS


def test_every_number_belongs_to_a_declared_table_row_and_column() -> None:
    declared = {(s.paper, s.table): s for s in SPECS.values()}
    for paper, table, row, column in NUMBERS:
        spec = declared.get((paper, table))
        assert spec is not None, f"{paper} Table {table} has numbers but no spec in reports/tables.yaml"
        assert row in {r.key for r in spec.rows}, f"{spec.id}: row {row} has numbers but is not declared"
        assert column in {c.key for c in spec.columns}, f"{spec.id}: column {column} has numbers but is not declared"


def test_every_table_of_both_papers_with_results_is_specified() -> None:
    tables = {(s.paper, s.table) for s in SPECS.values()}
    setok = {("setok", t) for t in ("1", "2", "3", "4", "5", "6", "11", "12", "13", "14")}
    semhitok = {("semhitok", t) for t in ("2", "4", "5", "7", "8", "9", "9b")}
    assert setok | semhitok <= tables
    lost = {s.table for s in SPECS.values() if s.paper == "setok" and s.lost}
    assert lost == {"1", "2", "3", "4", "12"}


def test_row_variants_are_variants_of_the_paper_config() -> None:
    variants = set(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())["variants"])
    for spec in SPECS.values():
        for r in spec.rows:
            assert r.variant is None or r.variant in variants, f"{spec.id}: unknown variant {r.variant}"


def test_columns_are_metrics_some_scorer_writes() -> None:
    for spec in SPECS.values():
        for c in spec.columns:
            if c.benchmark == "info":
                assert c.kind == "info", f"{spec.id}: {c.key} is descriptive text, not a metric"
            elif c.benchmark in SIDE_METRICS:
                assert c.metric in SIDE_METRICS[c.benchmark], f"{spec.id}: {c.key}"
            else:
                assert c.benchmark in registry.names(), f"{spec.id}: no benchmark {c.benchmark}"
                metrics = {m.name for m in registry.get(c.benchmark).metrics}
                assert c.metric in metrics, f"{spec.id}: {c.benchmark} writes {sorted(metrics)}, not {c.metric}"
