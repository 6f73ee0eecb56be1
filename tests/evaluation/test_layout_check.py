"""Benchmark layout checks, declared on each benchmark's class: the CI fixtures pass them in their official layout,
a benchmark without a check of its own only needs its configured paths, and ``--benchmark`` needs the evaluation CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from evaluation.layout_check import check_benchmark
from evaluation.layout_check import main as layout_main
from setok.data.checks import main as dataset_main
from setok.io import DataError

ROOT = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((ROOT / "config/ci.yaml").read_text())["benchmarks"]


def rooted(value: Any) -> Any:
    """A CI config value with its ``tests/...`` paths made absolute (the test may run from anywhere)."""
    if isinstance(value, dict):
        return {k: rooted(v) for k, v in value.items()}
    return str(ROOT / value) if isinstance(value, str) and value.startswith("tests/") else value


@pytest.mark.parametrize("name", sorted(CI))
def test_every_ci_benchmark_fixture_passes_its_layout_check(name: str) -> None:
    report = check_benchmark(name, rooted(CI[name]))
    assert report.dataset == name and report.kind == "benchmark" and report.checked


def test_a_benchmark_without_a_check_of_its_own_needs_its_configured_paths(tmp_path: Path) -> None:
    (tmp_path / "refs.json").write_text("{}")
    report = check_benchmark("imagenet", {"annotations": str(tmp_path / "refs.json")})
    assert report.checked == [str(tmp_path / "refs.json")]
    with pytest.raises(DataError, match=r"benchmark imagenet: .*gone\.json missing \(expected benchmarks.imagenet"):
        check_benchmark("imagenet", {"annotations": str(tmp_path / "gone.json")})


def test_the_dataset_cli_sends_benchmarks_to_the_evaluation_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    raw["benchmarks"]["pope"] = rooted(CI["pope"])
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    out = tmp_path / "pope.json"
    assert dataset_main(["--config", str(cfg), "--benchmark", "pope", "--out", str(out)]) == 2
    assert "python -m evaluation.layout_check" in capsys.readouterr().err
    assert layout_main(["--config", str(cfg), "--benchmark", "pope", "--out", str(out)]) == 0 and out.is_file()
