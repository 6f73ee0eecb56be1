"""The imagenet benchmark through the Python API: known answers and one-line input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.registry import get, score
from setok.io import DataError, write_jsonl


def test_imagenet_fixture_scores_known_top1_and_top5(
    imagenet_files: tuple[Path, Path],
) -> None:
    preds, refs = imagenet_files
    result = score("imagenet", preds, refs, n_bootstrap=0)
    assert result.metrics == {"top1": 50.0, "top5": 75.0}
    assert result.n == 4 and result.ci95 == {}


def test_rows_follow_reference_order_with_per_sample_correctness(
    imagenet_files: tuple[Path, Path],
) -> None:
    result = score("imagenet", *imagenet_files, n_bootstrap=0)
    assert result.rows == [
        {"id": "a", "top1": 1, "top5": 1},
        {"id": "b", "top1": 1, "top5": 1},
        {"id": "c", "top1": 0, "top5": 1},
        {"id": "d", "top1": 0, "top5": 0},
    ]


def test_default_bootstrap_gives_intervals_around_the_metrics(
    imagenet_files: tuple[Path, Path],
) -> None:
    result = score("imagenet", *imagenet_files)
    for name, value in result.metrics.items():
        lo, hi = result.ci95[name]
        assert 0.0 <= lo <= value <= hi <= 100.0
    assert result.ci95["top1"] != result.ci95["top5"]


def _rewrite(path: Path, rows: list[dict]) -> Path:
    write_jsonl(path, rows)
    return path


def test_missing_prediction_ids_are_named(imagenet_files: tuple[Path, Path]) -> None:
    preds, refs = imagenet_files
    rows = [
        json.loads(x)
        for x in preds.read_text().splitlines()
        if json.loads(x)["id"] not in ("a", "c")
    ]
    _rewrite(preds, rows)
    with pytest.raises(DataError) as e:
        score("imagenet", preds, refs)
    msg = str(e.value)
    assert (
        "\n" not in msg and str(preds) in msg and "missing predictions for 2 ids" in msg
    )
    assert "a" in msg.split(":")[-1] and "c" in msg.split(":")[-1]


def test_duplicate_prediction_ids_are_named(imagenet_files: tuple[Path, Path]) -> None:
    preds, refs = imagenet_files
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    _rewrite(preds, rows + [rows[1]])
    with pytest.raises(DataError, match=r"preds\.jsonl: 1 duplicate ids: c$"):
        score("imagenet", preds, refs)


def test_extra_prediction_ids_are_named(imagenet_files: tuple[Path, Path]) -> None:
    preds, refs = imagenet_files
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    _rewrite(preds, rows + [{"id": "zzz", "scores": [0.0] * 10}])
    with pytest.raises(
        DataError, match=r"preds\.jsonl: 1 ids are not in .*refs\.jsonl: zzz"
    ):
        score("imagenet", preds, refs)


def test_wrong_length_score_vectors_are_named(
    imagenet_files: tuple[Path, Path],
) -> None:
    preds, refs = imagenet_files
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    rows[2]["scores"] = rows[2]["scores"][:9]  # id "b"
    _rewrite(preds, rows)
    with pytest.raises(
        DataError,
        match=r"preds\.jsonl: scores must have 10 entries .* have 9 for ids b$",
    ):
        score("imagenet", preds, refs)


def test_num_classes_option_checks_every_vector(
    imagenet_files: tuple[Path, Path],
) -> None:
    with pytest.raises(DataError, match="scores must have 1000 entries"):
        score("imagenet", *imagenet_files, num_classes=1000)


def test_labels_beyond_the_score_vector_are_named(
    imagenet_files: tuple[Path, Path],
) -> None:
    preds, refs = imagenet_files
    _rewrite(refs, [{"id": i, "label": 12 if i == "d" else 0} for i in "abcd"])
    with pytest.raises(
        DataError, match=r"refs\.jsonl: labels must be < 10 .* for ids d$"
    ):
        score("imagenet", preds, refs)


def test_non_integer_labels_and_non_numeric_scores_are_rejected(
    imagenet_files: tuple[Path, Path],
) -> None:
    preds, refs = imagenet_files
    _rewrite(refs, [{"id": i, "label": "3"} for i in "abcd"])
    with pytest.raises(DataError, match="label is not a non-negative integer"):
        score("imagenet", preds, refs)


def test_malformed_json_line_names_file_and_line(
    imagenet_files: tuple[Path, Path],
) -> None:
    preds, refs = imagenet_files
    preds.write_text(preds.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"preds\.jsonl: line 5 is not valid JSON"):
        score("imagenet", preds, refs)


def test_imagenet_documents_its_formats_and_metric_directions() -> None:
    bench = get("imagenet")
    assert (
        '"scores"' in bench.help
        and '"label"' in bench.help
        and "lower class index" in bench.help
    )
    assert [(m.name, m.higher_is_better) for m in bench.metrics] == [
        ("top1", True),
        ("top5", True),
    ]
