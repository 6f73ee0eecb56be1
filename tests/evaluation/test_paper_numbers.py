"""evaluation/paper_numbers.yaml against the papers' text, and reports/tables.yaml against it, the configs and the
benchmark registry: a mistyped number, a row under the wrong variant or a column no scorer produces fails here."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from evaluation import registry
from evaluation.report.table_specs import load_paper_numbers, load_specs

ROOT = Path(__file__).parents[2]
PAPERS = ROOT.parent / "shared" / "papers"
TEXT = {"setok": "000_2d8bdd59b4f1fab1.txt", "semhitok": "003_7b9ee9d214d78a1c.txt"}
NUMBERS = load_paper_numbers(ROOT / "evaluation" / "paper_numbers.yaml")
SPECS = load_specs(ROOT / "reports" / "tables.yaml")
# Columns that are not benchmark results: the tokenizer's statistics, the MLLM's cost, the paper's descriptive text.
SIDE_METRICS = {"tokens": {"mean", "vocab_size", "codebook_usage_percent"}, "cost": {"tokens", "tflops"}}
NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")


def line_numbers(line: str) -> set[float]:
    """Every number printed on ``line`` ("16,384" -> 16384, "$25*$" -> 25, "\\overline{51.7}" -> 51.7)."""
    return {float(m.replace(",", "")) for m in NUMBER.findall(line)}


def paper_lines(paper: str) -> list[str]:
    path = PAPERS / TEXT[paper]
    if not path.is_file():
        pytest.skip(f"{path} is not beside this checkout")
    return path.read_text(encoding="utf-8").splitlines()


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
    hits = [line for line in paper_lines(key[0]) if numbers <= line_numbers(line) and all(w in line for w in words)]
    assert hits, f"no line of {TEXT[key[0]]} holds {sorted(numbers)} {sorted(words)}"


@pytest.mark.parametrize("paper, table, row, column, value", [
    # SeTok, read off ../shared/papers/000_*.txt by hand
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
    # SemHiTok, read off ../shared/papers/003_*.txt by hand
    ("semhitok", "2", "semhitok", "fid.fid", 1.16),
    ("semhitok", "2", "vqgan_lc_100k", "tokens.vocab_size", 100000),
    ("semhitok", "2", "semhitok_384", "tokens.mean", 729),
    ("semhitok", "4", "siglip", "pope.f1", 83.76),
    ("semhitok", "4", "semhitok_llava", "mme.perception", 1355.8),
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
