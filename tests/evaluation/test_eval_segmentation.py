"""The refcoco / refcoco+ / refcocog / reasonseg benchmarks: LISA's cIoU and gIoU on hand-counted masks, the official
RefCOCO release and ReasonSeg layouts, and one-line input errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from evaluation.metrics.segmentation import ciou, giou, intersection_union, sample_iou
from evaluation.readers.segmentation import encode, reasonseg_mask, rle_string_counts
from evaluation.registry import score
from setok.io import DataError


def _mask(h: int, w: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """``(h, w)`` uint8 mask with rows ``box[0]:box[1]`` and columns ``box[2]:box[3]`` set."""
    m = np.zeros((h, w), dtype=np.uint8)
    if box is not None:
        m[box[0] : box[1], box[2] : box[3]] = 1
    return m


def _write(path: Path, masks: dict[Any, np.ndarray], ignore: dict[Any, np.ndarray] | None = None) -> Path:
    rows = [{"id": i, "segmentation": encode(m)} for i, m in masks.items()]
    for row in rows:
        if ignore and row["id"] in ignore:
            row["ignore"] = encode(ignore[row["id"]])
    path.write_text(json.dumps(rows))
    return path


# 4x5 samples. a: target rows 1-2 x cols 1-3 (6 px); prediction rows 1-2 x cols 2-3 (4 px) plus pixel (3, 4).
# b: target row 0 x cols 0-1 (2 px), empty prediction. c: both empty.
TARGETS = {"a": _mask(4, 5, (1, 3, 1, 4)), "b": _mask(4, 5, (0, 1, 0, 2)), "c": _mask(4, 5)}
PREDS = {"a": _mask(4, 5, (1, 3, 2, 4)) | _mask(4, 5, (3, 4, 4, 5)), "b": _mask(4, 5), "c": _mask(4, 5)}


def test_hand_counted_samples_give_lisa_ciou_and_giou(tmp_path: Path) -> None:
    # a: target 6 px, prediction 4 + 1 = 5 px, overlap 4 -> I = 4, U = 6 + 5 - 4 = 7, IoU = 4 / (7 + 1e-5).
    # b: empty prediction on a 2-px target -> I = 0, U = 2, IoU = 0.
    # c: empty target, empty prediction -> I = 0, U = 0, IoU = 0 / 1e-5 + 1 = 1 (and nothing added to the sums).
    # cIoU = (4 + 0 + 0) / (7 + 2 + 0 + 1e-10); gIoU = (4 / 7.00001 + 0 + 1) / (3 + 1e-5).
    result = score("refcoco", _write(tmp_path / "p.json", PREDS), _write(tmp_path / "r.json", TARGETS), n_bootstrap=0)
    assert [(r["id"], r["intersection"], r["union"]) for r in result.rows] == [("a", 4, 7), ("b", 0, 2), ("c", 0, 0)]
    assert [r["iou"] for r in result.rows] == pytest.approx([100 * 4 / 7.00001, 0.0, 100.0], rel=1e-12)
    assert result.metrics["ciou"] == pytest.approx(100 * 4 / (9 + 1e-10), rel=1e-12)
    assert result.metrics["giou"] == pytest.approx(100 * (4 / 7.00001 + 1) / (3 + 1e-5), rel=1e-12)
    assert result.n == 3 and result.ci95 == {}


def test_ciou_and_giou_differ_by_the_computed_amount_on_two_samples(tmp_path: Path) -> None:
    # small: I = 4, U = 7 (as above); large: 10x10 target, prediction covers 9 of its 10 rows -> I = 90, U = 100.
    # cIoU pools pixels: 94 / 107 = 87.850%; gIoU averages ratios: (4/7 + 0.9) / 2 = 73.571%; gap 14.279 points.
    targets = {"small": TARGETS["a"], "large": _mask(10, 10, (0, 10, 0, 10))}
    preds = {"small": PREDS["a"], "large": _mask(10, 10, (0, 9, 0, 10))}
    result = score("refcocog", _write(tmp_path / "p.json", preds), _write(tmp_path / "r.json", targets), n_bootstrap=0)
    assert result.metrics["ciou"] == pytest.approx(100 * 94 / 107, rel=1e-9)
    assert result.metrics["giou"] == pytest.approx(100 * (4 / 7 + 0.9) / 2, rel=1e-5)
    assert result.metrics["ciou"] - result.metrics["giou"] == pytest.approx(14.2790, abs=1e-3)


def test_one_pixel_hit_keeps_lisas_epsilons() -> None:
    i, u = np.array([1]), np.array([1])
    assert sample_iou(i, u)[0] == 1 / (1 + 1e-5)  # not exactly 1: LISA divides by U + 1e-5
    assert giou(sample_iou(i, u)) == pytest.approx((1 / 1.00001) / 1.00001, rel=1e-15)
    assert ciou(np.array([0]), np.array([0])) == 0.0  # nothing to pool: 0 / 1e-10


def test_ignore_pixels_leave_both_masks() -> None:
    target, pred = _mask(4, 4, (0, 2, 0, 4)), _mask(4, 4, (0, 4, 0, 2))  # 8 px each, overlap 4
    assert intersection_union(pred, target) == (4, 12)
    ignore = _mask(4, 4, (0, 4, 0, 1))  # column 0: removes 2 target px (both overlap) and 4 predicted px
    assert intersection_union(pred, target, ignore) == (2, 8)  # |P| = 4, |T| = 6, I = 2 -> U = 8


def test_scores_equal_a_two_class_histogram_with_label_255_ignored() -> None:
    """Independent check of the per-sample counts: label maps 0/1/255 and 2-bin histograms, LISA's formulation."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        target = rng.choice([0, 1, 255], size=(9, 11), p=[0.5, 0.4, 0.1]).astype(np.int64)
        pred = rng.integers(0, 2, size=(9, 11))
        pred = np.where(target == 255, 255, pred)
        hist = {name: np.bincount(a[a != 255].ravel(), minlength=2) for name, a in (("p", pred), ("t", target))}
        inter = np.bincount(pred[(pred == target) & (pred != 255)].ravel(), minlength=2)
        expected = (int(inter[1]), int(hist["p"][1] + hist["t"][1] - inter[1]))
        assert intersection_union(pred == 1, target == 1, target == 255) == expected


def test_ignore_field_in_references_is_applied(tmp_path: Path) -> None:
    targets, preds = {"x": _mask(4, 4, (0, 2, 0, 4))}, {"x": _mask(4, 4, (0, 4, 0, 2))}
    refs = _write(tmp_path / "r.json", targets, ignore={"x": _mask(4, 4, (0, 4, 0, 1))})
    result = score("reasonseg", _write(tmp_path / "p.json", preds), refs, n_bootstrap=0)
    assert (result.rows[0]["intersection"], result.rows[0]["union"]) == (2, 8)


def test_bootstrap_interval_brackets_the_metrics_and_is_deterministic(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    targets = {k: (rng.random((6, 6)) < 0.5).astype(np.uint8) for k in range(12)}
    preds = {k: (rng.random((6, 6)) < 0.5).astype(np.uint8) for k in range(12)}
    args = (_write(tmp_path / "p.json", preds), _write(tmp_path / "r.json", targets))
    first, again = score("refcoco", *args, n_bootstrap=200, seed=1), score("refcoco", *args, n_bootstrap=200, seed=1)
    assert first.ci95 == again.ci95
    for name in ("ciou", "giou"):
        lo, hi = first.ci95[name]
        assert lo < first.metrics[name] < hi


def test_rle_string_parser_inverts_pycocotools_encoding() -> None:
    rng = np.random.default_rng(5)
    for shape in [(1, 1), (3, 7), (40, 33)]:
        m = (rng.random(shape) < 0.3).astype(np.uint8)
        runs = rle_string_counts(encode(m)["counts"])
        flat = np.repeat(np.arange(len(runs)) % 2, runs)  # runs alternate 0, 1, 0, ... in column-major order
        np.testing.assert_array_equal(flat.reshape(shape[::-1]).T, m)


def test_uncompressed_counts_equal_compressed(tmp_path: Path) -> None:
    # 4x5 target rows 1-2 x cols 1-3 in column-major runs: 5 zeros, then (2 ones, 2 zeros) x 3, then 5 zeros.
    refs = tmp_path / "r.json"
    refs.write_text(json.dumps([{"id": 1, "segmentation": {"size": [4, 5], "counts": [5, 2, 2, 2, 2, 2, 5]}}]))
    preds = _write(tmp_path / "p.json", {1: TARGETS["a"]})
    assert score("refcoco", preds, refs, n_bootstrap=0).rows[0] == {"id": 1, "intersection": 6, "union": 6,
                                                                    "iou": pytest.approx(100 * 6 / 6.00001)}


@pytest.mark.parametrize(
    ("pred_rows", "match"),
    [
        ([{"id": "a", "segmentation": encode(_mask(5, 4))}], r"p.json: id 'a' mask is 5x4 but the reference .* is 4x5"),
        ([{"id": "a", "segmentation": {"size": [4, 5], "counts": "9"}}], r"p.json: id 'a': RLE runs cover 9 pixels"),
        ([{"id": "a", "segmentation": {"size": [4, 5], "counts": "5{"}}], r"p.json: id 'a': malformed RLE counts"),
        ([{"id": "a", "segmentation": {"size": [4, 5], "counts": "5W"}}], r"malformed RLE counts \(truncated"),
        ([{"id": "b", "segmentation": encode(_mask(4, 5))}], r"p.json: missing masks for 1 of 1 ids of .*r.json: a"),
        ([{"id": k, "segmentation": encode(_mask(4, 5))} for k in "aa"], r"p.json: 1 duplicate ids: a"),
    ],
)
def test_bad_predictions_are_one_line_errors_naming_the_file(
    tmp_path: Path, pred_rows: list[dict], match: str
) -> None:
    preds = tmp_path / "p.json"
    preds.write_text(json.dumps(pred_rows))
    with pytest.raises(DataError, match=match) as e:
        score("refcoco", preds, _write(tmp_path / "r.json", {"a": TARGETS["a"]}))
    assert "\n" not in str(e.value)


@pytest.fixture
def refcoco_release(tmp_path: Path) -> Path:
    """A RefCOCO-layout folder: 2 images, 3 annotations, refs in val and testA (Python 2-era pickle protocol 2)."""
    folder = tmp_path / "refcoco"
    folder.mkdir()
    instances = {
        "images": [{"id": 10, "height": 6, "width": 8, "file_name": "a.jpg"}, {"id": 11, "height": 5, "width": 5}],
        "annotations": [
            # Two polygons of one instance: a 2x2 square (x 0-2, y 0-2) and a 3x2 block (x 4-7, y 3-5): 4 + 6 px.
            {"id": 100, "image_id": 10, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2], [4, 3, 7, 3, 7, 5, 4, 5]]},
            {"id": 101, "image_id": 10, "segmentation": []},  # empty -> all-zero target, as LISA
            {"id": 102, "image_id": 11, "segmentation": [[1, 1, 4, 1, 4, 4, 1, 4]]},
        ],
        "categories": [],
    }
    (folder / "instances.json").write_text(json.dumps(instances))
    refs = [
        {"ref_id": 0, "ann_id": 100, "image_id": 10, "split": "val",
         "sentences": [{"sent_id": 7, "sent": "left thing"}, {"sent_id": 8, "sent": "the square"}]},
        {"ref_id": 1, "ann_id": 101, "image_id": 10, "split": "val", "sentences": [{"sent_id": 9, "sent": "nothing"}]},
        {"ref_id": 2, "ann_id": 102, "image_id": 11, "split": "testA", "sentences": [{"sent_id": 3, "sent": "box"}]},
    ]
    with open(folder / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=2)
    return folder


def test_refcoco_release_gives_one_sample_per_sentence_of_the_split(refcoco_release: Path, tmp_path: Path) -> None:
    ann100 = np.zeros((6, 8), dtype=np.uint8)
    ann100[0:2, 0:2] = 1  # pycocotools rasterises polygon x 0..2 as columns 0-1 (pixel centres inside)
    ann100[3:5, 4:7] = 1
    preds = _write(tmp_path / "p.json", {7: ann100, 8: _mask(6, 8, (0, 2, 0, 2)), 9: _mask(6, 8)})
    result = score("refcoco", preds, refcoco_release, split="val", n_bootstrap=0)
    # 7: exact (I = U = 10); 8: only the square (I = 4, U = 10); 9: empty/empty (IoU 1, no pixels pooled).
    assert [(r["id"], r["intersection"], r["union"]) for r in result.rows] == [(7, 10, 10), (8, 4, 10), (9, 0, 0)]
    assert result.metrics["ciou"] == pytest.approx(100 * 14 / 20, rel=1e-9)
    test_a = score("refcoco+", _write(tmp_path / "q.json", {3: _mask(5, 5, (1, 4, 1, 4))}), refcoco_release,
                   split="testA", n_bootstrap=0)
    assert test_a.rows[0]["intersection"] == test_a.rows[0]["union"] == 9


def test_refcoco_release_errors_name_the_split_and_the_refs_file(refcoco_release: Path, tmp_path: Path) -> None:
    preds = _write(tmp_path / "p.json", {3: _mask(5, 5)})
    with pytest.raises(DataError, match=r"refs\(unc\).p: no refs in split 'testB'; splits present: testA, val"):
        score("refcoco", preds, refcoco_release, split="testB")
    with pytest.raises(DataError, match=r"refs\(umd\).p: file not found"):
        score("refcocog", preds, refcoco_release)  # RefCOCOg defaults to the UMD partition
    with pytest.raises(DataError, match=r"p.json: missing masks for 3 of 3 ids"):
        score("refcoco", preds, refcoco_release)


def test_refs_pickle_with_code_is_refused(refcoco_release: Path) -> None:
    (refcoco_release / "refs(unc).p").write_bytes(pickle.dumps(Path("x")))
    with pytest.raises(DataError, match=r"cannot read refs pickle \(refusing to load pathlib"):
        score("refcoco", refcoco_release / "instances.json", refcoco_release)


def test_reasonseg_folder_masks_follow_lisas_drawing(tmp_path: Path) -> None:
    folder = tmp_path / "val"
    folder.mkdir()
    Image.new("RGB", (8, 6)).save(folder / "cat_1.jpg")
    shapes = [
        {"label": "target", "points": [[1.0, 1.0], [5.9, 1.0], [5.9, 4.0], [1.0, 4.0]]},  # x 1..5 (5.9 -> 5), y 1..4
        {"label": "ignore", "points": [[4, 0], [6, 0], [6, 2], [4, 2]]},  # smaller: drawn later, over the target
        {"label": "flag", "points": [[0, 0], [7, 0], [7, 5], [0, 5]]},  # skipped
    ]
    (folder / "cat_1.json").write_text(json.dumps({"shapes": shapes, "text": ["the cat"], "is_sentence": False}))
    mask, texts = reasonseg_mask(folder / "cat_1.json", 6, 8)
    expected = np.zeros((6, 8), dtype=np.uint8)
    expected[1:5, 1:6] = 1  # polylines + fillPoly include the boundary pixels: 4 rows x 5 columns
    expected[0:3, 4:7] = 255
    np.testing.assert_array_equal(mask, expected)
    assert texts == ["the cat"]
    preds = _write(tmp_path / "p.json", {"cat_1": (expected == 1).astype(np.uint8)})
    result = score("reasonseg", preds, folder, n_bootstrap=0)
    assert result.rows[0]["intersection"] == result.rows[0]["union"] == 16  # 20 minus 4 under the ignore
