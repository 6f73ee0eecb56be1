"""Paper tables from fixed result files: byte-identical Markdown and LaTeX (golden files), and the arithmetic behind
each cell (ours ± half the interval, Δ and its shifted interval, bold best, "—" for anything missing)."""
from pathlib import Path

import pytest

from evaluation.report import paper_table
from evaluation.report.paper_table import Cell, fmt, mark_best, ours_cells
from evaluation.report.table_specs import Column, load_paper_numbers, load_specs, read_ours, result_file
from setok.io import DataError

FIX = Path(__file__).parents[2] / "fixtures" / "report" / "paper_table"


def render(tmp_path: Path, table: str, variants: list[str]) -> tuple[str, str]:
    md, tex = tmp_path / f"{table}.md", tmp_path / f"{table}.tex"
    argv = ["--specs", str(FIX / "tables.yaml"), "--paper", str(FIX / "paper_numbers.yaml"), "--results",
            str(FIX / "results"), "--table", table, "--variants", *variants, "--md", str(md), "--tex", str(tex)]
    assert paper_table.main(argv) == 0
    return md.read_text(encoding="utf-8"), tex.read_text(encoding="utf-8")


@pytest.mark.parametrize("table", ["setok_table6", "setok_table1"])
def test_golden_markdown_and_latex(tmp_path: Path, table: str) -> None:
    md, tex = render(tmp_path, table, ["hard_cluster", "no_pe"])
    assert md == (FIX / f"{table}.md").read_text(encoding="utf-8")
    assert tex == (FIX / f"{table}.tex").read_text(encoding="utf-8")


def test_cells_of_the_fixture_by_hand(tmp_path: Path) -> None:
    md, _ = render(tmp_path, "setok_table6", ["hard_cluster", "no_pe"])
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in md.splitlines() if line.startswith("| ")}
    setok = rows["SeTok (`hard_cluster`)"]
    # rFID: ours 2.5 with CI [2.25, 2.875] -> ± 0.3125; Δ = 2.5 - 2.07 = +0.43, interval [+0.18, +0.805]
    assert setok[1:4] == ["**2.07**", "**2.50 ± 0.31**", "+0.43 [+0.18, +0.81]"]
    # VQAv2: the paper's 78.5* ties LLaVA-1.5's, both bold; ours tie at 70.25, both bold
    assert setok[4] == "**78.5**\\*" and rows["LLaVA-1.5"][4] == "**78.5**\\*"
    assert setok[5].startswith("**70.2") and rows["w/o PE (`no_pe`)"][5].startswith("**70.2")
    # no_inter has a result file but was not run by this config (--variants): "—", not its 9.0
    assert rows["w/o inter-cluster (`no_inter`)"][2:4] == ["—", "—"]
    # a tiny TFLOPs value keeps two significant digits instead of printing 0.0
    assert setok[8] == "0.00063"
    # the info column prints the paper's string; no ours/Δ columns for it
    assert rows["LLaVA-1.5"][-1].rstrip(" |") == "Vicuna-7B"


def test_lost_table_is_declared_with_dashes_and_says_so(tmp_path: Path) -> None:
    md, _ = render(tmp_path, "setok_table1", ["hard_cluster"])
    assert "| SeTokIM (`hard_cluster`) | — | 43.8 | — |" in md  # usage_percent = 100 x 0.4375
    assert "lost this table's numbers" in md


def test_missing_result_is_a_dash_never_zero(tmp_path: Path) -> None:
    col = Column(key="gqa.accuracy", title="GQA", better="higher", digits=1)
    assert read_ours(FIX / "results", "hard_cluster", col) == (None, None)
    assert ours_cells(None, None, 62.0, col)[0].text == "—"


def test_delta_interval_is_the_ci_shifted_by_the_paper_value() -> None:
    col = Column(key="x.y", title="x", better="higher", digits=2)
    ours, delta = ours_cells(10.0, (9.0, 12.0), 8.5, col)
    assert ours.text == "10.00 ± 1.50" and delta.text == "+1.50 [+0.50, +3.50]"
    assert ours_cells(10.0, None, None, col)[1].text == "—"


def test_mark_best_respects_direction_and_needs_two_values() -> None:
    low = [Cell("a", 3.0), Cell("b", 1.0), Cell("c", 1.0), Cell("—")]
    mark_best(low, "lower")
    assert [c.bold for c in low] == [False, True, True, False]
    high = [Cell("a", 3.0), Cell("b", 1.0)]
    mark_best(high, "higher")
    assert [c.bold for c in high] == [True, False]
    single = [Cell("a", 3.0), Cell("—")]
    mark_best(single, "higher")
    assert not any(c.bold for c in single)


def test_fmt() -> None:
    assert fmt(None, 2) == "—" and fmt(1.0, 0) == "1" and fmt(-0.004, 2) == "-0.004" and fmt(0.0, 1) == "0.0"
    assert fmt(0.5, 1, sign=True) == "+0.5"


def test_result_files_per_column() -> None:
    assert result_file("r", "v", "tokens.mean") == Path("r/v/tokenizer/tokens.json")
    assert result_file("r", "v", "cost.tflops") == Path("r/v/cost.json")
    assert result_file("r", "v", "refcoco+.ciou") == Path("r/v/eval/refcoco+.json")
    assert result_file("r", "v", "info.llm") is None


@pytest.mark.parametrize("bad, message", [
    ({"key": "fid.fid", "title": "rFID", "better": "smaller", "digits": 2}, "better: 'smaller'"),
    ({"key": "fid.fid", "title": "rFID", "better": "lower"}, "digits: missing"),
    ({"key": "fid", "title": "rFID", "better": "lower", "digits": 2}, "is not benchmark.metric"),
    ({"key": "fid.fid", "title": "rFID", "better": "lower", "digits": 2, "colour": "red"}, "unknown keys ['colour']"),
])
def test_bad_spec_names_the_key(tmp_path: Path, bad: dict, message: str) -> None:
    import yaml

    path = tmp_path / "tables.yaml"
    path.write_text(yaml.safe_dump({"tables": {"t": {"paper": "setok", "table": "1", "title": "T", "columns": [bad],
                                                     "rows": [{"key": "a", "label": "A"}]}}}))
    with pytest.raises(DataError, match="tables.t.columns\\[0\\]") as e:
        load_specs(path)
    assert message in str(e.value)


def test_duplicate_paper_number_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    entry = "{table: '6', row: a, column: fid.fid, value: 1.0}"
    path.write_text(f"setok:\n  numbers:\n    - {entry}\n    - {entry}\n")
    with pytest.raises(DataError, match="duplicate entry for table 6, row a, column fid.fid"):
        load_paper_numbers(path)


def test_unknown_table_lists_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = paper_table.main(["--specs", str(FIX / "tables.yaml"), "--paper", str(FIX / "paper_numbers.yaml"),
                             "--table", "setok_table99", "--md", str(tmp_path / "a.md"),
                             "--tex", str(tmp_path / "a.tex")])
    assert code != 0 and "setok_table1, setok_table6" in capsys.readouterr().err


ORACLE = {"grader": {"name": "precomputed", "model": None, "judges_predictions": False,
                     "file": "tests/fixtures/benchmarks/mmvet/oracle-grade-1runs.json"}, "subset": [], "shortcuts": []}
CLEAN = {"grader": None, "subset": [], "shortcuts": []}


def test_the_golden_tables_mark_the_subset_and_the_shortcut_and_explain_them(tmp_path: Path) -> None:
    md, tex = render(tmp_path, "setok_table6", ["hard_cluster", "no_pe"])
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in md.splitlines() if line.startswith("| ")}
    assert rows["SeTok (`hard_cluster`)"][5:7] == ["**70.2 ± 2.2**ˢ", "-8.2 [-10.5, -6.0]ˢ"]  # a limited VQAv2
    assert rows["w/o PE (`no_pe`)"][2:4] == ["3.25 ± 0.25§", "-0.31 [-0.56, -0.06]§"]  # rFID on bundled photos
    assert rows["w/o PE (`no_pe`)"][5] == "**70.2 ± 2.0**"  # a clean result: no mark
    assert "- ˢ vqav2: subset, 200 of 214354 queries (benchmarks.vqav2.limit = 200)" in md
    assert r"\S{} fid: shortcut: evaluated on the bundled images" in tex and r"2.2}$^{s}$ &" in tex
    md1, _ = render(tmp_path, "setok_table1", ["hard_cluster"])
    assert "Marked values" not in md1  # nothing marked, no legend


def test_precomputed_grades_are_marked_in_both_formats_and_a_clean_column_is_not(tmp_path: Path) -> None:
    import json

    import yaml

    specs = tmp_path / "tables.yaml"
    specs.write_text(yaml.safe_dump({"tables": {"t": {
        "paper": "setok", "table": "99", "title": "Graded",
        "columns": [{"key": "mmvet.score", "title": "MM-Vet", "better": "higher", "digits": 1},
                    {"key": "gqa.accuracy", "title": "GQA", "better": "higher", "digits": 1}],
        "rows": [{"key": "a", "label": "A", "variant": "a"}]}}}))
    for name, metrics, prov in (("mmvet", {"score": 100.0}, ORACLE), ("gqa", {"accuracy": 50.0}, CLEAN)):
        path = tmp_path / "results/a/eval" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"metrics": metrics, "ci95": {}, "n": 4, "provenance": prov}))
    args = (specs, "t", FIX / "paper_numbers.yaml", tmp_path / "results", ["a"])
    md, tex = paper_table.render(*args)
    assert "| A (`a`) | — | 100.0° | — | — | 50.0 | — |" in md
    assert ("- ° mmvet: precomputed grades (tests/fixtures/benchmarks/mmvet/oracle-grade-1runs.json), not judged "
            "from these predictions") in md
    assert r"100.0$^{\circ}$ & -- & -- & 50.0 & --" in tex and r"$^{\circ}$ mmvet: precomputed grades" in tex
    assert paper_table.render(*args) == (md, tex)  # deterministic
