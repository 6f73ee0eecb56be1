"""MME: the official calculation.py parse and acc + acc+ scores, subtask selection, coverage checks, errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from evaluation.metrics.mme import COGNITION, PERCEPTION, SUBTASKS, image_points, parse_mme_answer, subtask_score
from evaluation.registry import get
from setok.io import DataError

Cli = Callable[..., subprocess.CompletedProcess[str]]
Pair = tuple[tuple[str, str], tuple[str, str]]  # ((gt, prediction), (gt, prediction)) of one image

RIGHT: Pair = (("Yes", "Yes"), ("No", "No"))
# Non-default subtasks; every other subtask is one image with both answers right (200 points).
SPECIAL: dict[str, list[Pair]] = {
    # image 1 both right (200), image 2 one right (acc counts 1, acc+ 0: 50) -> acc 75 + acc+ 50 = 125
    "existence": [RIGHT, (("Yes", "Yes"), ("No", "Yes, it is."))],
    # "maybe" parses to "other", always wrong -> acc 50 + acc+ 0 = 50
    "count": [(("Yes", "yes"), ("No", "maybe"))],
    # both wrong -> 0
    "OCR": [(("Yes", "No"), ("No", "Yes"))],
    # one image both right, one both wrong ("  yes" parses to "other") -> acc 50 + acc+ 50 = 100
    "code_reasoning": [RIGHT, (("Yes", "  yes"), ("No", "Yes"))],
}
PERCEPTION_TOTAL = 125 + 50 + 0 + 200 * 7  # 1575
COGNITION_TOTAL = 200 * 3 + 100  # 700


def _lines(pairs: list[Pair]) -> str:
    out = []
    for k, pair in enumerate(pairs):
        for j, (gt, pred) in enumerate(pair):
            out.append(f"img{k}.jpg\tQuestion {j} about img{k}? Please answer yes or no.\t{gt}\t{pred}\n")
    return "".join(out)


def _template(pairs: list[Pair]) -> str:
    return "".join(line.rsplit("\t", 1)[0] + "\n" for line in _lines(pairs).splitlines())


@pytest.fixture
def mme_dir(tmp_path: Path) -> Path:
    """An eval_tool results folder with all 14 <subtask>.txt files."""
    folder = tmp_path / "results"
    folder.mkdir()
    for s in SUBTASKS:
        (folder / f"{s}.txt").write_text(_lines(SPECIAL.get(s, [RIGHT])), encoding="utf-8")
    return folder


def _lmms_mme() -> ModuleType:
    """lmms-eval's installed ``tasks/mme/utils.py``, loaded by path."""
    root = Path(importlib.util.find_spec("lmms_eval").origin).parent
    spec = importlib.util.spec_from_file_location("lmms_mme_utils", root / "tasks" / "mme" / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("prediction", "parsed"),
    [
        ("Yes", "yes"),
        ("no", "no"),
        ("Yes, there is a dog.", "yes"),
        ("No.", "no"),
        ("Not really", "no"),  # the 4-character prefix "not " contains "no"
        ("noted", "no"),
        (" yes", "yes"),  # prefix " yes"
        ("  yes", "other"),  # prefix "  ye": nothing is stripped
        ("y", "other"),
        ("I think yes", "other"),  # prefix "i th"
        ("The answer is no", "other"),
        ("", "other"),
    ],
)
def test_predictions_are_parsed_by_the_official_four_character_prefix_rule(prediction: str, parsed: str) -> None:
    assert parse_mme_answer(prediction) == parsed


def test_lmms_eval_parse_differs_on_single_letters_and_leading_spaces() -> None:
    lmms = _lmms_mme()
    for prediction in ("y", "  yes"):
        assert lmms.parse_pred_ans(prediction) == "yes" and parse_mme_answer(prediction) == "other"
    for prediction in ("Yes, there is a dog.", "Not really", "no"):
        assert lmms.parse_pred_ans(prediction) == parse_mme_answer(prediction)


def test_image_with_one_of_two_answers_right_counts_for_acc_but_not_acc_plus() -> None:
    correct = np.array([[True, True], [True, False]])
    assert subtask_score(correct) == (75.0, 50.0, 125.0)  # 3 of 4 questions, 1 of 2 images
    assert image_points(correct).tolist() == [200.0, 50.0]


def test_all_subtasks_give_hand_computed_scores_and_group_sums(mme_dir: Path) -> None:
    result = get("mme").score(mme_dir, n_bootstrap=0)
    m = result.metrics
    assert (m["existence"], m["count"], m["OCR"], m["code_reasoning"]) == (125.0, 50.0, 0.0, 100.0)
    assert m["perception"] == PERCEPTION_TOTAL and m["cognition"] == COGNITION_TOTAL
    assert m["total"] == PERCEPTION_TOTAL + COGNITION_TOTAL  # the "MME" column beside "MME-P"
    assert list(m)[:3] == ["perception", "cognition", "total"]
    assert set(m) == {"perception", "cognition", "total", *SUBTASKS}
    assert result.n == 16  # images: 12 subtasks x 1, existence and code_reasoning x 2


def test_rows_are_images_and_rederive_the_subtask_scores(mme_dir: Path) -> None:
    result = get("mme").score(mme_dir, n_bootstrap=0)
    existence = [r for r in result.rows if r["subtask"] == "existence"]
    assert existence[1] == {
        "id": "existence/img1.jpg", "subtask": "existence", "image": "img1.jpg", "gt": ["yes", "no"],
        "parsed": ["yes", "yes"], "correct": 1, "both": 0, "points": 50.0,
    }
    for s in SUBTASKS:
        points = [r["points"] for r in result.rows if r["subtask"] == s]
        assert np.mean(points) == result.metrics[s]


def test_subtasks_option_scores_only_those_and_omits_an_unscored_group(mme_dir: Path) -> None:
    for s in ("color", "code_reasoning"):
        (mme_dir / f"{s}.txt").unlink()
    m = get("mme").score(mme_dir, n_bootstrap=0, subtasks=["existence", "count"]).metrics
    assert m == {"perception": 175.0, "existence": 125.0, "count": 50.0}


def test_missing_subtask_files_are_all_named(mme_dir: Path) -> None:
    for s in ("color", "code_reasoning"):
        (mme_dir / f"{s}.txt").unlink()
    with pytest.raises(DataError, match=r"results: missing subtask files color\.txt, code_reasoning\.txt$"):
        get("mme").score(mme_dir)


def test_an_image_without_exactly_two_questions_is_an_error(mme_dir: Path) -> None:
    path = mme_dir / "count.txt"
    path.write_text(path.read_text() + "img9.jpg\tLonely question?\tYes\tYes\n")
    with pytest.raises(DataError, match=r"count\.txt: every image needs exactly 2 questions; not so for img9\.jpg"):
        get("mme").score(mme_dir)


def test_a_line_with_a_tab_in_the_answer_names_the_line(mme_dir: Path) -> None:
    path = mme_dir / "scene.txt"
    path.write_text("img0.jpg\tQ0?\tYes\tYes\tand more\nimg0.jpg\tQ1?\tNo\tNo\n")
    with pytest.raises(DataError, match=r"scene\.txt: line 1 has 5 tab-separated fields, expected 4"):
        get("mme").score(mme_dir)


def test_template_annotations_catch_unanswered_questions_and_changed_gt(mme_dir: Path, tmp_path: Path) -> None:
    template = tmp_path / "Your_Results"
    template.mkdir()
    for s in SUBTASKS:
        (template / f"{s}.txt").write_text(_template(SPECIAL.get(s, [RIGHT])))
    assert get("mme").score(mme_dir, template, n_bootstrap=0).metrics["perception"] == PERCEPTION_TOTAL
    (template / "artwork.txt").write_text(_template([RIGHT, RIGHT]))
    with pytest.raises(DataError, match=r"artwork\.txt: missing answers for 2 of 4 questions of .*artwork\.txt"):
        get("mme").score(mme_dir, template)
    (template / "artwork.txt").write_text(_template([(("No", ""), ("No", ""))]))
    with pytest.raises(DataError, match=r"artwork\.txt: gt differs from .* for img0\.jpg: Question 0"):
        get("mme").score(mme_dir, template)


def test_bootstrap_resamples_images_within_subtasks_and_sums_group_replicates(mme_dir: Path) -> None:
    result = get("mme").score(mme_dir, n_bootstrap=300, seed=1)
    ci = result.ci95
    assert ci["scene"] == (200.0, 200.0) and ci["OCR"] == (0.0, 0.0)  # one-image subtasks never vary
    lo, hi = ci["existence"]
    assert 50.0 <= lo <= 125.0 <= hi <= 200.0 and lo < hi  # resampled images score 200 or 50
    # perception varies only through existence and count; count is a single image, so the spread is existence's.
    assert ci["perception"] == (PERCEPTION_TOTAL - 125.0 + lo, PERCEPTION_TOTAL - 125.0 + hi)
    assert result.ci95 == get("mme").score(mme_dir, n_bootstrap=300, seed=1).ci95


def test_group_members_are_the_official_ten_and_four() -> None:
    assert len(PERCEPTION) == 10 and len(COGNITION) == 4 and "OCR" in PERCEPTION


def test_cli_scores_a_folder_without_annotations(mme_dir: Path, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "mme.json"
    proc = cli("score", "mme", "--predictions", mme_dir, "--out", out, "--bootstrap", "0",
               "--subtasks", "OCR", "code_reasoning")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["metrics"] == {
        "perception": 0.0, "cognition": 100.0, "total": 100.0, "OCR": 0.0, "code_reasoning": 100.0
    }
