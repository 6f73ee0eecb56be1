"""The validation table (issue 20): published numbers of the reference checkpoint, the verdict arithmetic, and the
rendered table with "—" where nothing was measured."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from evaluation.report.table_specs import load_paper_numbers
from evaluation.report.validation_table import (
    load_references,
    published_numbers,
    verdict,
    write_tables,
)
from setok.io import DataError, write_json

ROOT = Path(__file__).parents[3]
PAPER = ROOT / "evaluation" / "paper_numbers.yaml"
REFERENCES = ROOT / "evaluation" / "references.yaml"

# LLaVA-1.5-7B as its model zoo (haotian-liu/LLaVA docs/MODEL_ZOO.md, llava-v1.5-7b) and the MMMU number SemHiTok
# Table 5 prints: what the table must hold up against our scores.
LLAVA15_7B = {"vqav2.accuracy": 78.5, "gqa.accuracy": 62.0, "vizwiz.accuracy": 50.0, "pope.f1": 85.9,
              "mme.perception": 1510.7, "mmbench.accuracy": 64.3, "seed.accuracy": 58.6, "mmvet.score": 31.1,
              "mmmu.accuracy": 35.4}


def test_published_numbers_of_llava15_7b_are_its_model_zoo_row_with_the_misprint_listed_beside_it() -> None:
    numbers = load_paper_numbers(PAPER)
    spec = load_references(REFERENCES, numbers)["llava15_7b"]
    published = published_numbers(spec, numbers)
    assert {c: p.value for c, p in published.items()} == LLAVA15_7B
    assert published["mmvet.score"].source == "SemHiTok T5"
    assert published["mmvet.score"].others == ("SeTok T14: 33.1",)  # SeTok Table 14's misprint, shown, not used
    assert published["vizwiz.accuracy"].source == "SeTok T14" and published["mmbench.accuracy"].source == "SemHiTok T5"
    assert published["mme.perception"].others == ()  # both papers print 1510.7
    assert spec.not_comparable == ("seed",)


@pytest.mark.parametrize(("pub", "ours", "ci", "expected"), [
    (62.0, 61.5, [61.0, 62.5], "within the 95% CI"),
    (62.0, 62.5, [62.0, 63.0], "within the 95% CI"),  # the bound itself is inside
    (62.0, 60.0, [59.0, 61.0], "off by -2.00 (2.0× the CI half-width)"),
    (50.0, 53.0, [52.0, 55.0], "off by +3.00 (3.0× the CI half-width)"),  # the lower side's distance: 1.0
    (50.0, 53.0, [53.0, 53.0], "off by +3.00 (CI of zero width)"),
    (50.0, 53.0, None, "off by +3.00 (no interval)"),
    (None, 53.0, [52.0, 54.0], "—"),
    (50.0, None, None, "—"),
])
def test_verdict(pub, ours, ci, expected) -> None:
    assert verdict(pub, ours, ci) == expected


def test_a_benchmark_that_measures_something_else_is_not_held_against_its_published_number() -> None:
    assert verdict(58.6, 66.0, [65.0, 67.0], comparable=False) == "not comparable (see note)"


def _result(path: Path, metrics: dict[str, float], ci: dict[str, list[float]], **extra) -> None:
    write_json(path, {"benchmark": path.stem, "metrics": metrics, "ci95": ci, **extra})


def test_table_renders_measured_rows_with_intervals_and_dashes_where_nothing_was_measured(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (results / "llava15_7b" / "eval").mkdir(parents=True)
    (results / "llava15_7b" / "config.yaml").write_text(yaml.safe_dump(
        {"mllm_benchmarks": ["gqa", "okvqa", "pope", "seed"]}))
    ev = results / "llava15_7b" / "eval"
    _result(ev / "gqa.json", {"accuracy": 61.5}, {"accuracy": [61.0, 62.5]})
    _result(ev / "pope.json", {"f1": 80.0, "accuracy": 81.0}, {"f1": [79.0, 81.0]})
    _result(ev / "seed.json", {"accuracy": 66.1}, {"accuracy": [65.0, 67.2]})
    md, tex = tmp_path / "v.md", tmp_path / "v.tex"
    write_tables(results, ["llava15_7b"], REFERENCES, PAPER, md, tex)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in md.read_text().splitlines() if line.startswith("| ")}
    assert rows["gqa"] == ("| gqa | accuracy | 62.00 | SeTok T14 | 61.50 [61.00, 62.50] | -0.50 | "
                           "within the 95% CI |")
    assert rows["pope"].endswith("| 80.00 [79.00, 81.00] | -5.90 | off by -5.90 (5.9× the CI half-width) |")
    assert rows["seed †"].endswith("| not comparable (see note) |")
    # configured but not measured: "—" for ours, Δ and verdict; no published number for OK-VQA either
    assert rows["okvqa"] == "| okvqa | accuracy | — | — | — | — | — |"
    # published but not configured: the row is there, ours "—"
    assert rows["vqav2 †"] == "| vqav2 † | accuracy | 78.50 | SeTok T14 | — | — | — |"
    assert "SemHiTok T5 (SeTok T14: 33.1)" in rows["mmvet †"]
    assert "- † seed: published over SEED-Bench's image and video questions" in md.read_text()
    assert r"\begin{tabular}" in tex.read_text() and r"within the 95\% CI" in tex.read_text()


def test_a_reference_with_a_source_the_paper_numbers_lack_is_refused_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "references.yaml"
    bad.write_text(yaml.safe_dump({"llava15_7b": {"sources": [{"paper": "setok", "table": "14", "row": "llava"}]}}))
    with pytest.raises(DataError, match=r"llava15_7b.sources\[0\]: no row 'llava' in setok table 14"):
        load_references(bad, load_paper_numbers(PAPER))
    bad.write_text(yaml.safe_dump({"llava15_7b": {"sources": [{"paper": "setok", "table": "14", "row": "llava_1_5"}],
                                                  "prefer": {"mmvet.score": {"paper": "semhitok", "table": "5"}}}}))
    with pytest.raises(DataError, match=r"prefer.mmvet.score: semhitok table 5 is not one of its sources"):
        load_references(bad, load_paper_numbers(PAPER))


def test_a_variant_without_an_entry_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r" / "other").mkdir(parents=True)
    with pytest.raises(DataError, match="no entry for reference variant 'other'"):
        write_tables(tmp_path / "r", ["other"], REFERENCES, PAPER, tmp_path / "a.md", tmp_path / "a.tex")
