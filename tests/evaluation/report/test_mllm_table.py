"""The SeTokIM benchmark table: headline values beside the paper, marks for values that were not measured."""
import json
from pathlib import Path

from evaluation.report.mllm_table import main

ROOT = Path(__file__).resolve().parents[3]
ORACLE = {"grader": {"name": "precomputed", "model": None, "judges_predictions": False,
                     "file": "tests/fixtures/benchmarks/mmvet/oracle-grade-1runs.json"}, "subset": [], "shortcuts": []}
MME_5 = {"grader": None, "subset": [{"kept": 5, "of": 14, "unit": "subtasks", "by": "subtasks option"}],
         "shortcuts": []}
CLEAN = {"grader": None, "subset": [], "shortcuts": []}


def write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_marked_values_carry_their_symbol_and_legend_and_clean_ones_do_not(tmp_path):
    res = tmp_path / "results"
    for v in ("hard_cluster", "semhitok"):
        write(res / v / "eval/mmvet.json", {"metrics": {"score": 100.0}, "n": 4, "provenance": ORACLE})
        write(res / v / "eval/gqa.json", {"metrics": {"accuracy": 61.5}, "n": 4, "provenance": CLEAN})
    write(res / "hard_cluster/eval/mme.json", {"metrics": {"perception": 800.0}, "n": 6, "provenance": MME_5})
    write(res / "semhitok/eval/mme.json", {"metrics": {"perception": 700.0}, "n": 6})  # from before provenance
    md, tex = tmp_path / "m.md", tmp_path / "m.tex"
    argv = ["--results", str(res), "--variants", "hard_cluster", "semhitok", "--benchmarks", "gqa", "mme", "mmvet",
            "--paper", str(ROOT / "evaluation/paper_numbers.yaml"), "--md", str(md), "--tex", str(tex)]
    assert main(argv) == 0
    lines = md.read_text().splitlines()
    assert lines[0] == "| Benchmark | Metric | hard_cluster | semhitok | Paper | Δ |"
    assert lines[2] == "| gqa | accuracy | 61.50 | 61.50 | 65.60 | -4.10 |"  # the paper's SeTokIM: 65.6
    assert lines[3] == "| mme | perception | 800.00ˢ | 700.00 | — | — |"
    assert lines[4] == "| mmvet | score | 100.00° | 100.00° | — | — |"
    text = md.read_text()
    assert ("- ° mmvet: precomputed grades (tests/fixtures/benchmarks/mmvet/oracle-grade-1runs.json), not judged "
            "from these predictions\n- ˢ mme: subset, 5 of 14 subtasks (subtasks option)\n") in text
    t = tex.read_text()
    assert r"mmvet & score & 100.00$^{\circ}$ & 100.00$^{\circ}$" in t and r"800.00$^{s}$ & 700.00" in t
    assert r"$^{\circ}$ mmvet: precomputed grades (tests/fixtures/benchmarks/mmvet/oracle-grade-1runs.json)" in t
    before = md.read_bytes(), tex.read_bytes()
    assert main(argv) == 0 and (md.read_bytes(), tex.read_bytes()) == before  # deterministic


def test_the_delta_of_a_marked_value_is_marked_too(tmp_path):
    res = tmp_path / "results"
    write(res / "hard_cluster/eval/gqa.json", {"metrics": {"accuracy": 61.5}, "n": 2, "provenance": {
        "grader": None, "subset": [{"kept": 2, "of": 12578, "unit": "queries", "by": "benchmarks.gqa.limit = 2"}],
        "shortcuts": []}})
    md, tex = tmp_path / "m.md", tmp_path / "m.tex"
    assert main(["--results", str(res), "--variants", "hard_cluster", "--benchmarks", "gqa", "--paper",
                 str(ROOT / "evaluation/paper_numbers.yaml"), "--md", str(md), "--tex", str(tex)]) == 0
    assert md.read_text().splitlines()[2] == "| gqa | accuracy | 61.50ˢ | 65.60 | -4.10ˢ |"
    assert "- ˢ gqa: subset, 2 of 12578 queries (benchmarks.gqa.limit = 2)" in md.read_text()


def test_a_table_of_clean_results_has_no_marks_and_no_legend(tmp_path):
    res = tmp_path / "results"
    write(res / "hard_cluster/eval/gqa.json", {"metrics": {"accuracy": 61.5}, "n": 4, "provenance": CLEAN})
    md, tex = tmp_path / "m.md", tmp_path / "m.tex"
    assert main(["--results", str(res), "--variants", "hard_cluster", "--benchmarks", "gqa", "pope", "--paper",
                 str(ROOT / "evaluation/paper_numbers.yaml"), "--md", str(md), "--tex", str(tex)]) == 0
    assert "Marked" not in md.read_text() and not any(s in md.read_text() for s in "°ˢ§")
    assert "footnotesize" not in tex.read_text()
