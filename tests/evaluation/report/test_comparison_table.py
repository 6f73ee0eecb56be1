"""The tokenizer comparison table: fixed result files give exactly these rows; missing values show "—"."""
import json
from pathlib import Path

import yaml

from evaluation.report.comparison_table import main


def write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def config(path: Path, kind: str, connector: str = "setok", num_tokens: int = 256) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"tokenizer": {"kind": kind},
                                    "mllm": {"connector": {"kind": connector, "num_tokens": num_tokens}}}))


def test_comparison_rows_from_fixed_results(tmp_path):
    res = tmp_path / "results"
    config(res / "hard_cluster/config.yaml", "setok")
    config(res / "semhitok/config.yaml", "semhitok")
    config(res / "mlp_connector/config.yaml", "setok", connector="mlp", num_tokens=576)
    write(res / "hard_cluster/tokenizer/tokens.json", {"mean": 24.25})
    write(res / "semhitok/tokenizer/tokens.json", {"mean": 256.0, "codebook_usage": 0.9375})
    write(res / "hard_cluster/eval/fid.json", {"metrics": {"fid": 2.5}})
    write(res / "semhitok/eval/fid.json", {"metrics": {"fid": 1.25}})
    for v, acc in (("hard_cluster", 61.5), ("semhitok", 60.25), ("mlp_connector", 62.0)):
        write(res / v / "eval/gqa.json", {"metrics": {"accuracy": acc}})
    write(res / "hard_cluster/eval/pope.json", {"metrics": {"f1": 85.0}})  # not shared by all: not a default row
    md, tex = tmp_path / "c.md", tmp_path / "c.tex"
    assert main(["--results", str(res), "--variants", "hard_cluster", "semhitok", "mlp_connector",
                 "--md", str(md), "--tex", str(tex)]) == 0
    lines = md.read_text().splitlines()
    assert lines[0] == ("| Row | Metric | hard_cluster (SeTok) | semhitok (SemHiTok) | mlp_connector (SigLIP + mlp) |")
    assert lines[2] == "| Tokens / image | mean | 24.2 | 256.0 | 576.0 |"
    assert lines[3] == "| Codebook usage | % | — | 93.8 | — |"
    assert lines[4] == "| Tokenizer rFID | fid | 2.50 | 1.25 | — |"
    assert lines[5] == "| gqa | accuracy | 61.50 | 60.25 | 62.00 |"
    assert len([x for x in lines if x.startswith("| ")]) == 5  # header + 4 rows: pope is not shared by all
    assert r"Codebook usage & \% & -- & 93.8 & --" in tex.read_text()


def test_marked_values_carry_their_symbols_and_a_legend(tmp_path):
    res = tmp_path / "results"
    config(res / "hard_cluster/config.yaml", "setok")
    config(res / "semhitok/config.yaml", "semhitok")
    oracle = {"grader": {"name": "precomputed", "model": None, "file": "grades.json", "judges_predictions": False},
              "subset": [], "shortcuts": []}
    bundled = {"grader": None, "subset": [], "shortcuts": ["evaluated on the bundled images, not ImageNet val"]}
    write(res / "hard_cluster/tokenizer/tokens.json", {"mean": 24.25, "provenance": bundled})
    write(res / "semhitok/tokenizer/tokens.json", {"mean": 256.0, "codebook_usage": 0.9375, "provenance": bundled})
    write(res / "hard_cluster/eval/fid.json", {"metrics": {"fid": 2.5}, "provenance": bundled})
    for v in ("hard_cluster", "semhitok"):
        write(res / v / "eval/mmvet.json", {"metrics": {"score": 100.0}, "provenance": oracle})
        write(res / v / "eval/gqa.json", {"metrics": {"accuracy": 60.25},
                                          "provenance": {"grader": None, "subset": [], "shortcuts": []}})
    md, tex = tmp_path / "c.md", tmp_path / "c.tex"
    assert main(["--results", str(res), "--variants", "hard_cluster", "semhitok", "--md", str(md),
                 "--tex", str(tex)]) == 0
    lines = md.read_text().splitlines()
    assert lines[2] == "| Tokens / image | mean | 24.2§ | 256.0§ |"
    assert lines[3] == "| Codebook usage | % | — | 93.8§ |"
    assert lines[4] == "| Tokenizer rFID | fid | 2.50§ | — |"
    assert lines[5] == "| gqa | accuracy | 60.25 | 60.25 |"
    assert lines[6] == "| mmvet | score | 100.00° | 100.00° |"
    assert "- ° mmvet: precomputed grades (grades.json), not judged from these predictions" in md.read_text()
    assert r"mmvet & score & 100.00$^{\circ}$ & 100.00$^{\circ}$" in tex.read_text()
