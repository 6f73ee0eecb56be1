"""The result-file writer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.registry import ScoreResult
from evaluation.results import RESULT_KEYS, samples_path, write_result
from setok.io import DataError


def test_samples_path_replaces_the_json_suffix() -> None:
    assert samples_path(Path("out/R.json")) == Path("out/R.samples.jsonl")


def test_write_result_writes_the_contract_and_the_samples(tmp_path: Path) -> None:
    result = ScoreResult(
        metrics={"acc": 50.0},
        n=2,
        rows=[{"id": 1, "acc": 1}, {"id": 2, "acc": 0}],
        ci95={"acc": (0.0, 100.0)},
    )
    record = write_result(
        tmp_path / "R.json",
        benchmark="toy",
        variant=None,
        result=result,
        checkpoint=None,
        config_sha="s",
    )
    on_disk = json.loads((tmp_path / "R.json").read_text())
    assert on_disk == record and tuple(sorted(on_disk)) == tuple(sorted(RESULT_KEYS))
    assert on_disk["ci95"] == {"acc": [0.0, 100.0]} and on_disk["variant"] is None
    assert (
        tmp_path / "R.samples.jsonl"
    ).read_text() == '{"acc":1,"id":1}\n{"acc":0,"id":2}\n'  # compact, keys sorted
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "R.json",
        "R.samples.jsonl",
    ]  # no temp files left


def test_non_finite_metrics_are_refused(tmp_path: Path) -> None:
    result = ScoreResult(metrics={"fid": float("nan")}, n=None, rows=[])
    with pytest.raises(DataError, match="metric fid is nan"):
        write_result(
            tmp_path / "R.json",
            benchmark="fid",
            variant=None,
            result=result,
            checkpoint=None,
            config_sha=None,
        )
    assert not (tmp_path / "R.json").exists()
