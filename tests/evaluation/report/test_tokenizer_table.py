"""The generated tokenizer table: fixed result files give exactly this Markdown; missing values show "—"."""
import json
from pathlib import Path

from evaluation.report.tokenizer_table import main

ROOT = Path(__file__).resolve().parents[3]


def write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_table_from_fixed_results_is_byte_identical(tmp_path):
    res = tmp_path / "results"
    write(res / "hard_cluster/tokenizer/tokens.json", {"mean": 24.5})
    write(res / "hard_cluster/eval/fid.json", {"metrics": {"fid": 2.5}, "ci95": {}})
    write(res / "hard_cluster/eval/imagenet.json", {"metrics": {"top1": 70.25}, "ci95": {"top1": [68.0, 72.5]}})
    write(res / "no_pe/eval/fid.json", {"metrics": {"fid": 3.0}, "ci95": {}})  # no tokens, no top-1
    md, tex = tmp_path / "t.md", tmp_path / "t.tex"
    assert main(["--results", str(res), "--variants", "hard_cluster", "no_pe", "--paper",
                 str(ROOT / "evaluation/paper_numbers.yaml"), "--md", str(md), "--tex", str(tex)]) == 0
    lines = md.read_text().splitlines()
    assert lines[2] == ("| hard_cluster | 24.5 | 25.0 | -0.5 | 2.50 | 2.07 | +0.43 | 70.2 [68.0, 72.5] | 75.4 | -5.2 |")
    assert lines[3] == "| no_pe | — | — | — | 3.00 | 3.56 | -0.56 | — | — | — |"
    t = tex.read_text()
    assert r"\toprule" in t and r"hard\_cluster & 24.5 & 25.0 & -0.5 & 2.50 & 2.07 & +0.43" in t
    assert " 0.0 " not in md.read_text()  # a missing value is never printed as 0
    before = md.read_bytes()
    main(["--results", str(res), "--variants", "hard_cluster", "no_pe", "--paper",
          str(ROOT / "evaluation/paper_numbers.yaml"), "--md", str(md), "--tex", str(tex)])
    assert md.read_bytes() == before


def test_semhitok_table_reports_usage_in_percent_beside_the_paper(tmp_path):
    res = tmp_path / "results"
    write(res / "semhitok_concat_dim_16/tokenizer/tokens.json",
          {"mean": 256.0, "vocab_size": 262144, "codebook_usage": 0.813})
    write(res / "semhitok_concat_dim_16/eval/fid.json", {"metrics": {"fid": 1.5}, "ci95": {"fid": [1.25, 1.75]}})
    md, tex = tmp_path / "s.md", tmp_path / "s.tex"
    assert main(["--family", "semhitok", "--results", str(res), "--variants", "semhitok_concat_dim_16", "semhitok",
                 "--paper", str(ROOT / "evaluation/paper_numbers.yaml"), "--md", str(md), "--tex", str(tex)]) == 0
    lines = md.read_text().splitlines()
    assert lines[0].startswith("| Variant | Code Num. (ours) | Code Num. (paper) | Δ | Codebook Size (ours)")
    # Table 9 "Dim 16": rFID 1.19, usage 79.3%; code count and codebook size are not in Table 9.
    assert lines[2] == ("| semhitok_concat_dim_16 | 256 | — | — | 262144 | — | — | 81.3 | 79.3 | +2.0 | "
                        "1.50 [1.25, 1.75] | 1.19 | +0.31 |")
    # Table 2 gives the default model's codes, codebook size and rFID; nothing of ours exists yet.
    assert lines[3] == "| semhitok | — | 256 | — | — | 196608 | — | — | — | — | — | 1.16 | — |"


BUNDLED = {"grader": None, "subset": [], "shortcuts": [
    "evaluated on the bundled images (datasets.bundled.kind = bundled), not ImageNet val"]}
CLEAN = {"grader": None, "subset": [], "shortcuts": []}


def test_values_from_a_stand_in_evaluation_set_are_marked_with_a_legend(tmp_path):
    res = tmp_path / "results"
    write(res / "hard_cluster/tokenizer/tokens.json", {"mean": 24.5, "provenance": BUNDLED})
    write(res / "hard_cluster/eval/fid.json", {"metrics": {"fid": 2.5}, "ci95": {}, "provenance": BUNDLED})
    write(res / "hard_cluster/eval/imagenet.json", {"metrics": {"top1": 70.25}, "ci95": {}, "provenance": {
        **BUNDLED, "shortcuts": [*BUNDLED["shortcuts"], "top-k over 9 classes, not ImageNet-1k's 1000"]}})
    write(res / "no_pe/eval/fid.json", {"metrics": {"fid": 3.0}, "ci95": {}, "provenance": CLEAN})
    md, tex = tmp_path / "t.md", tmp_path / "t.tex"
    assert main(["--results", str(res), "--variants", "hard_cluster", "no_pe", "--paper",
                 str(ROOT / "evaluation/paper_numbers.yaml"), "--md", str(md), "--tex", str(tex)]) == 0
    lines = md.read_text().splitlines()
    assert lines[2] == "| hard_cluster | 24.5§ | 25.0 | -0.5§ | 2.50§ | 2.07 | +0.43§ | 70.2§ | 75.4 | -5.2§ |"
    assert lines[3] == "| no_pe | — | — | — | 3.00 | 3.56 | -0.56 | — | — | — |"  # clean: no mark
    text = md.read_text()
    assert "- § imagenet: shortcut: top-k over 9 classes, not ImageNet-1k's 1000" in text
    assert "- § fid: shortcut: evaluated on the bundled images" in text and "- § tokens: shortcut:" in text
    t = tex.read_text()
    assert r"hard\_cluster & 24.5\S{} & 25.0 & -0.5\S{} & 2.50\S{}" in t and r"\S{} imagenet: shortcut" in t
