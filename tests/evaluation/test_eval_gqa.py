"""GQA: LLaVA's prediction conversion and GQA eval.py's balanced exact match, on the official file layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluation.metrics.gqa import gqa_answer_kind, gqa_correct, llava_gqa_prediction
from evaluation.registry import get, score
from setok.io import DataError


def test_llava_conversion_strips_trailing_periods_then_lowercases() -> None:
    assert llava_gqa_prediction("Yes.") == "yes"
    assert llava_gqa_prediction("Yes...") == "yes"  # rstrip('.') removes every trailing period
    assert llava_gqa_prediction("Yes. ") == "yes. "  # no whitespace strip: the period is not trailing
    assert llava_gqa_prediction("T-shirt") == "t-shirt" and llava_gqa_prediction("3.5") == "3.5"
    assert llava_gqa_prediction(llava_gqa_prediction("Left.")) == "left"  # idempotent


def test_exact_match_is_string_equality_after_conversion() -> None:
    assert gqa_correct(["Yes.", "the table", "Left"], ["yes", "table", "left"]).tolist() == [True, False, True]
    assert gqa_correct(["Yes."], ["yes"], convert=False).tolist() == [False]
    assert gqa_answer_kind("query") == "open" and gqa_answer_kind("verify") == "binary"


def _question(answer: str, structural: str, semantic: str, balanced: bool = True) -> dict[str, Any]:
    return {"imageId": "n1", "question": "?", "answer": answer, "fullAnswer": "", "isBalanced": balanced,
            "types": {"structural": structural, "semantic": semantic, "detailed": "x"}, "groups": {}}


QUESTIONS = {
    "201": _question("yes", "verify", "attr"),  # "Yes." -> "yes": correct
    "202": _question("table", "query", "cat"),  # "the table": wrong (no article removal in GQA)
    "203": _question("left", "choose", "rel"),  # "Left" -> "left": correct
    "204": _question("red", "query", "attr"),  # "Red. " -> "red. ": wrong (whitespace kept)
    "205": _question("no", "logical", "obj", balanced=False),  # not balanced: ignored, needs no prediction
}
PREDICTIONS = [{"questionId": "204", "prediction": "Red. "}, {"questionId": "201", "prediction": "Yes."},
               {"questionId": "202", "prediction": "the table"}, {"questionId": "203", "prediction": "Left"}]


def _files(tmp_path: Path, preds: Any = None, questions: Any = None) -> tuple[Path, Path]:
    (tmp_path / "testdev_balanced_questions.json").write_text(json.dumps(QUESTIONS if questions is None else questions))
    (tmp_path / "testdev_balanced_predictions.json").write_text(json.dumps(PREDICTIONS if preds is None else preds))
    return tmp_path / "testdev_balanced_predictions.json", tmp_path / "testdev_balanced_questions.json"


def test_gqa_files_score_known_accuracy_over_balanced_questions(tmp_path: Path) -> None:
    preds, questions = _files(tmp_path)
    result = score("gqa", preds, questions=questions, n_bootstrap=0)
    # 2 of the 4 balanced questions correct; binary (verify, choose) 2/2; open (query) 0/2
    assert result.metrics == {
        "accuracy": 50.0, "accuracy_binary": 100.0, "accuracy_open": 0.0,
        "accuracy_choose": 100.0, "accuracy_query": 0.0, "accuracy_verify": 100.0,
        "accuracy_attr": 50.0, "accuracy_cat": 0.0, "accuracy_rel": 100.0,
    }
    assert result.n == 4 and [r["questionId"] for r in result.rows] == ["201", "202", "203", "204"]
    assert result.rows[3] == {"questionId": "204", "prediction": "red. ", "answer": "red", "structural": "query",
                              "semantic": "attr", "correct": 0}


def test_no_convert_compares_predictions_as_stored(tmp_path: Path) -> None:
    preds, questions = _files(tmp_path)
    # only "the table" vs "table" and friends are compared raw: "Yes.", "Left", "Red. " all fail -> 0
    assert score("gqa", preds, questions=questions, n_bootstrap=0, no_convert=True).metrics["accuracy"] == 0.0


def test_annotations_is_accepted_as_the_questions_file(tmp_path: Path) -> None:
    preds, questions = _files(tmp_path)
    assert score("gqa", preds, questions, n_bootstrap=0).metrics["accuracy"] == 50.0


def test_prediction_for_an_unbalanced_question_is_ignored_and_int_ids_are_read_as_strings(tmp_path: Path) -> None:
    preds = [{"questionId": int(p["questionId"]), "prediction": p["prediction"]} for p in PREDICTIONS]
    preds.append({"questionId": "205", "prediction": "yes"})
    files = _files(tmp_path, preds)
    result = score("gqa", files[0], questions=files[1], n_bootstrap=100)
    assert result.n == 4 and result.metrics["accuracy"] == 50.0 and "accuracy" in result.ci95


@pytest.mark.parametrize(
    ("preds", "message"),
    [
        (PREDICTIONS[1:], r"predictions\.json: predictions cover 3 of 4 balanced questions of .*; missing "
                          r"questionId 204$"),
        (PREDICTIONS + [PREDICTIONS[0]], r"predictions\.json: 1 duplicate questionId values: 204$"),
        (PREDICTIONS + [{"questionId": "999", "prediction": "x"}], r"1 questionId values are not in .*: 999$"),
        ([{"questionId": "201", "answer": "x"}], r"record 0 is not an object with 'questionId' and 'prediction'"),
        (PREDICTIONS[1:] + [{"questionId": "204", "prediction": None}], r"'prediction' is not a string for "
                                                                        r"questionId 204$"),
    ],
)
def test_bad_predictions_are_named_in_one_line(tmp_path: Path, preds: Any, message: str) -> None:
    files = _files(tmp_path, preds)
    with pytest.raises(DataError, match=message) as e:
        score("gqa", files[0], questions=files[1])
    assert "\n" not in str(e.value)


def test_bad_questions_are_named_in_one_line(tmp_path: Path) -> None:
    broken = dict(QUESTIONS, **{"202": {"answer": "table", "isBalanced": True}})
    files = _files(tmp_path, questions=broken)
    with pytest.raises(DataError, match=r"questions\.json: balanced question 202 lacks 'types'"):
        score("gqa", files[0], questions=files[1])
    files = _files(tmp_path, questions=[QUESTIONS["201"]])
    with pytest.raises(DataError, match=r"questions\.json: expected a non-empty JSON object"):
        score("gqa", files[0], questions=files[1])
    with pytest.raises(DataError, match="gqa needs --questions"):
        score("gqa", files[0])


def test_gqa_documents_its_formats() -> None:
    bench = get("gqa")
    assert '"questionId"' in bench.help and '"prediction"' in bench.help and "isBalanced" in bench.help
    assert bench.takes_questions and not bench.needs_annotations and bench.metrics[0].name == "accuracy"


def test_cli_scores_gqa_with_questions_only(tmp_path: Path, cli: Any) -> None:
    preds, questions = _files(tmp_path)
    out = tmp_path / "gqa.json"
    proc = cli("score", "gqa", "--predictions", preds, "--questions", questions, "--out", out, "--bootstrap", "0")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["metrics"]["accuracy"] == 50.0


def test_typed_fast_path_reads_what_the_generic_reader_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evaluation.readers.gqa as reader

    preds, questions = _files(tmp_path, preds=[*PREDICTIONS, {"questionId": 205, "prediction": "no"}])
    fast = reader._read_gqa_typed(preds, questions)
    assert fast is not None  # an integer questionId is read as its decimal string on both paths
    monkeypatch.setattr(reader, "read_json_typed", lambda path, kind: None)
    assert reader.read_gqa(preds, questions) == fast


def test_typed_fast_path_leaves_a_non_boolean_isbalanced_to_the_generic_reader(tmp_path: Path) -> None:
    import evaluation.readers.gqa as reader

    questions = {**QUESTIONS, "205": {**QUESTIONS["205"], "isBalanced": 0}}  # falsy, not a bool: eval.py skips it
    preds, qpath = _files(tmp_path, questions=questions)
    assert reader._read_gqa_typed(preds, qpath) is None
    assert reader.read_gqa(preds, qpath).ids == ["201", "202", "203", "204"]
