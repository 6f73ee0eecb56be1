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
