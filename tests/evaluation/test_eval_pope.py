"""POPE: the official evaluate.py answer rule, per-split metrics, split layouts, lmms-eval's differences, errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from evaluation.metrics.pope import (
    confusion_cells,
    parse_pope_answer,
    pope_metrics,
    pope_metrics_from_cells,
    pope_metrics_on,
)
from evaluation.registry import get
from setok.io import DataError, write_jsonl

Cli = Callable[..., subprocess.CompletedProcess[str]]
YES, NO = "Yes, there is.", "No, there is not."

# Per split: reference labels and the answers given. Counts worked out by hand in the tests below.
SPLITS = {
    # labels y y y y n n n n, parsed y y y n y y n n: TP 3, FN 1, FP 2, TN 2
    "adversarial": ("yyyynnnn", [YES, YES, YES, NO, YES, YES, NO, NO]),
    # all right: TP 2, TN 2
    "popular": ("yynn", [YES, "Yes", "No.", "There is no dog."]),
    # labels y n, parsed y y ("I cannot tell" -> yes): TP 1, FP 1
    "random": ("yn", [YES, "I cannot tell"]),
}


def _lmms_pope() -> ModuleType:
    """lmms-eval's installed ``tasks/pope/utils.py``, loaded by path (it has no imports of its own)."""
    root = Path(importlib.util.find_spec("lmms_eval").origin).parent
    spec = importlib.util.spec_from_file_location("lmms_pope_utils", root / "tasks" / "pope" / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_refs(folder: Path, split: str, labels: str) -> Path:
    rows = [
        {"question_id": i + 1, "image": f"COCO_val2014_{i:012d}.jpg", "text": "Is there a dog in the image?",
         "label": "yes" if c == "y" else "no"}
        for i, c in enumerate(labels)
    ]
    path = folder / f"coco_pope_{split}.json"
    write_jsonl(path, rows)
    return path


@pytest.fixture
def pope_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Official reference folder (3 split files) and a predictions folder of <split>.jsonl (ids restart at 1)."""
    refs, preds = tmp_path / "refs", tmp_path / "preds"
    refs.mkdir()
    preds.mkdir()
    for split, (labels, answers) in SPLITS.items():
        _write_refs(refs, split, labels)
        write_jsonl(preds / f"{split}.jsonl", [{"question_id": i + 1, "text": a} for i, a in enumerate(answers)])
    return preds, refs


@pytest.mark.parametrize(
    ("answer", "parsed"),
    [
        ("Yes, there is a dog in the image.", "yes"),
        ("No, there is not.", "no"),
        ("No.", "no"),  # the text before the first "." is "No"
        ("There is not a dog", "no"),
        ("Yes. There is no cat.", "yes"),  # only the first sentence counts
        ("I cannot tell", "yes"),  # neither yes nor no -> yes
        ("", "yes"),
        ("NO", "yes"),  # the match is case-sensitive
        ("No!", "yes"),  # only "." and "," are handled, so the word is "No!"
        ("Not at all", "yes"),  # "Not" is not in {"No", "not", "no"}
        ("No,there is none", "yes"),  # commas are deleted, not replaced: the word becomes "Nothere"
        ("no dog", "no"),
    ],
)
def test_answers_are_parsed_by_the_official_first_sentence_word_rule(answer: str, parsed: str) -> None:
    assert parse_pope_answer(answer) == parsed


def test_metrics_of_a_split_match_hand_counts() -> None:
    # TP 3, FN 1, FP 2, TN 2: acc 5/8, precision 3/5, recall 3/4, F1 2*.6*.75/1.35 = 2/3, yes-ratio 5/8.
    labels = [c == "y" for c in "yyyynnnn"]
    preds = [c == "y" for c in "yyynyynn"]
    m = pope_metrics(preds, labels)
    assert m["accuracy"] == 62.5 and m["precision"] == pytest.approx(60.0) and m["recall"] == 75.0
    assert m["f1"] == pytest.approx(200.0 / 3.0) and m["yes_ratio"] == 62.5


def test_all_no_answers_give_zero_precision_instead_of_dividing_by_zero() -> None:
    m = pope_metrics([False] * 4, [True, True, False, False])
    assert m == {"accuracy": 50.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "yes_ratio": 0.0}


def test_folder_of_three_splits_reports_per_split_metrics_and_mean_f1(pope_dirs: tuple[Path, Path]) -> None:
    result = get("pope").score(*pope_dirs, n_bootstrap=0)
    m = result.metrics
    # adversarial F1 2/3; popular F1 1; random: P 1/2, R 1, F1 2/3.
    assert m["f1_adversarial"] == pytest.approx(200 / 3) and m["f1_popular"] == 100.0
    assert m["f1_random"] == pytest.approx(200 / 3)
    assert m["f1"] == pytest.approx((200 / 3 + 100 + 200 / 3) / 3)
    assert m["yes_ratio_random"] == 100.0 and m["accuracy_random"] == 50.0
    assert m["accuracy"] == pytest.approx((62.5 + 100 + 50) / 3)
    assert result.n == 14 and result.ci95 == {}
    assert result.rows[-1] == {"split": "random", "id": 2, "label": "no", "parsed": "yes", "correct": 0}


def test_annotation_files_given_one_by_one_score_like_the_folder(pope_dirs: tuple[Path, Path]) -> None:
    preds, refs = pope_dirs
    files = sorted(refs.iterdir(), reverse=True)
    one_by_one = get("pope").score(preds, files, n_bootstrap=0)
    assert one_by_one.metrics == get("pope").score(preds, refs, n_bootstrap=0).metrics


def test_one_predictions_file_is_routed_by_category(pope_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    preds, refs = pope_dirs
    rows = [dict(json.loads(x), category=s) for s in SPLITS for x in (preds / f"{s}.jsonl").read_text().splitlines()]
    write_jsonl(tmp_path / "all.jsonl", rows)
    by_file = get("pope").score(tmp_path / "all.jsonl", refs, n_bootstrap=0)
    assert by_file.metrics == get("pope").score(preds, refs, n_bootstrap=0).metrics


def test_single_split_plain_file_reports_the_split_and_the_same_means(pope_dirs: tuple[Path, Path]) -> None:
    preds, refs = pope_dirs
    m = get("pope").score(preds / "adversarial.jsonl", refs / "coco_pope_adversarial.json", n_bootstrap=0).metrics
    assert m["f1"] == m["f1_adversarial"] == pytest.approx(200 / 3) and "f1_random" not in m


def test_lmms_eval_yes_ratio_counts_references_where_official_counts_answers(pope_dirs: tuple[Path, Path]) -> None:
    lmms = _lmms_pope()
    labels, answers = SPLITS["adversarial"]
    items = [
        {"score": 0.0, "prediction": parse_pope_answer(a), "ground_truth": "yes" if c == "y" else "no"}
        for c, a in zip(labels, answers)
    ]
    for it in items:
        it["score"] = float(it["prediction"] == it["ground_truth"])
    ours = get("pope").score(pope_dirs[0] / "adversarial.jsonl", pope_dirs[1] / "coco_pope_adversarial.json",
                             n_bootstrap=0).metrics
    # Same parsed answers: accuracy, precision, recall and F1 agree (lmms-eval reports fractions) ...
    assert 100 * lmms.pope_aggregate_accuracy(items) == ours["accuracy"] == 62.5
    assert 100 * lmms.pope_aggregate_f1_score(items) == pytest.approx(ours["f1"])
    # ... but lmms-eval's yes-ratio is the share of "yes" labels (4/8), the official one the share of "yes" answers.
    assert 100 * lmms.pope_aggregate_yes_ratio(items) == 50.0 and ours["yes_ratio"] == 62.5


def test_lmms_eval_exact_match_rejects_a_sentence_the_official_rule_reads_as_yes() -> None:
    lmms = _lmms_pope()
    doc = {"question_id": 1, "answer": "yes"}
    assert lmms.pope_process_results(doc, ["Yes, there is a dog."])["pope_accuracy"]["score"] == 0.0
    assert parse_pope_answer("Yes, there is a dog.") == "yes"


def test_bootstrap_intervals_are_deterministic_and_bracket_the_means(pope_dirs: tuple[Path, Path]) -> None:
    a = get("pope").score(*pope_dirs, n_bootstrap=200, seed=3)
    b = get("pope").score(*pope_dirs, n_bootstrap=200, seed=3)
    assert a.ci95 == b.ci95 and set(a.ci95) == set(a.metrics)
    assert all(lo <= hi for lo, hi in a.ci95.values())
    for name in ("accuracy", "yes_ratio", "accuracy_adversarial"):
        assert a.ci95[name][0] <= a.metrics[name] <= a.ci95[name][1]
    assert a.ci95["accuracy_popular"] == (100.0, 100.0)  # every resample of an all-right split is all right
    assert a.ci95 != get("pope").score(*pope_dirs, n_bootstrap=200, seed=4).ci95


def test_missing_prediction_ids_are_named_with_their_split(pope_dirs: tuple[Path, Path]) -> None:
    preds, refs = pope_dirs
    write_jsonl(preds / "random.jsonl", [{"question_id": 2, "text": "no"}])
    with pytest.raises(DataError, match=r"random\.jsonl: missing predictions for 1 of 2 question_ids .*: 1$"):
        get("pope").score(preds, refs)


def test_duplicate_and_extra_prediction_ids_are_errors(pope_dirs: tuple[Path, Path]) -> None:
    preds, refs = pope_dirs
    write_jsonl(preds / "random.jsonl", [{"question_id": 1, "text": "no"}, {"question_id": 1, "text": "no"}])
    with pytest.raises(DataError, match="1 duplicate question_ids: 1"):
        get("pope").score(preds, refs)
    write_jsonl(preds / "random.jsonl", [{"question_id": q, "text": "no"} for q in (1, 2, 9)])
    with pytest.raises(DataError, match="1 question_ids are not in .*coco_pope_random.json: 9"):
        get("pope").score(preds, refs)


def test_several_splits_need_category_or_a_folder(pope_dirs: tuple[Path, Path]) -> None:
    preds, refs = pope_dirs
    with pytest.raises(DataError, match="3 splits are scored but rows have no 'category'"):
        get("pope").score(preds / "random.jsonl", refs)
    (preds / "popular.jsonl").unlink()
    with pytest.raises(DataError, match=r"no prediction file for splits popular \(expected <split>.jsonl\)"):
        get("pope").score(preds, refs)


def test_labels_other_than_yes_or_no_are_rejected(pope_dirs: tuple[Path, Path]) -> None:
    preds, refs = pope_dirs
    path = refs / "coco_pope_random.json"
    write_jsonl(path, [{"question_id": 1, "label": "Yes"}, {"question_id": 2, "label": "no"}])
    with pytest.raises(DataError, match=r"coco_pope_random\.json: label must be 'yes' or 'no' for question_ids 1"):
        get("pope").score(preds, refs)


def test_cli_takes_repeated_annotations_and_writes_split_metrics(
    pope_dirs: tuple[Path, Path], cli: Cli, tmp_path: Path
) -> None:
    preds, refs = pope_dirs
    out = tmp_path / "pope.json"
    args = ["score", "pope", "--predictions", preds, "--out", out, "--bootstrap", "50"]
    for split in ("adversarial", "popular"):
        args += ["--annotations", refs / f"coco_pope_{split}.json"]
    (preds / "random.jsonl").unlink()  # only the two given splits are read
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(out.read_text())["metrics"]
    assert metrics["f1"] == pytest.approx((200 / 3 + 100) / 2) and "f1_random" not in metrics


def test_metrics_from_confusion_counts_equal_the_metrics_of_the_resampled_questions() -> None:
    rng = np.random.default_rng(0)
    pred, label = rng.uniform(size=40) < 0.5, rng.uniform(size=40) < 0.5
    idx = rng.integers(0, 40, size=(25, 40))
    cells = np.stack([np.bincount(row, minlength=4) for row in confusion_cells(pred, label)[idx]])
    on_idx, on_cells = pope_metrics_on(pred, label, idx), pope_metrics_from_cells(cells)
    for name in on_idx:
        np.testing.assert_array_equal(on_idx[name], on_cells[name])
