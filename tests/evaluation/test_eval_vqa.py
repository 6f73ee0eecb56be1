"""VQAv2 / OK-VQA / VizWiz: hand-checked answers against the official vqaEval.py rules, LLaVA's EvalAI processor
(cross-checked with the copy lmms-eval ships), the official file layouts and one-line input errors."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from evaluation.metrics.vqa import (
    CONTRACTIONS,
    VIZWIZ_CONTRACTIONS,
    evalai_normalize,
    process_punctuation,
    sanitize_type,
    vqa_accuracy,
    vqa_normalize,
)
from evaluation.registry import get, score
from setok.io import DataError


def _acc(pred: str, humans: list[str], **kw: Any) -> float:
    return float(vqa_accuracy([pred], [humans], **kw).accuracy[0])


# ----------------------------------------------------------------------------------------------- the soft score


def test_one_to_four_matching_humans_give_the_leave_one_out_scores() -> None:
    # m humans equal the prediction; human i scores min(1, matching others / 3), averaged over the 10:
    # m=1: 9 humans see 1 -> 1/3, the matching one sees 0      -> (9/3)/10           = 0.3
    # m=2: 8 humans see 2 -> 2/3, the 2 matching see 1 -> 1/3 -> (8*2/3 + 2*1/3)/10 = 0.6
    # m=3: 7 humans see 3 -> 1, the 3 matching see 2 -> 2/3   -> (7 + 3*2/3)/10     = 0.9
    # m=4: everyone sees >= 3                                 -> 1
    for m, expected in [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)]:
        assert _acc("dog", ["dog"] * m + ["cat"] * (10 - m)) == pytest.approx(expected, abs=1e-12)


def test_two_is_normalised_to_2() -> None:
    # "Two" -> EvalAI processor -> "2"; 3 of 10 humans said "2" -> 0.9
    assert evalai_normalize("Two") == "2"
    assert _acc("Two", ["2"] * 3 + ["3"] * 7) == pytest.approx(0.9)


def test_a_dog_with_period_matches_dog() -> None:
    # article and final period removed: "a dog." -> "dog"; 2 of 10 humans -> 0.6
    assert evalai_normalize("a dog.") == "dog"
    assert _acc("a dog.", ["dog"] * 2 + ["cat"] * 8) == pytest.approx(0.6)


def test_dont_is_normalised_to_do_not_contraction() -> None:
    # prediction "dont" -> "don't"; a human "dont" is normalised too (humans disagree) -> 2 matches -> 0.6
    assert evalai_normalize("dont") == "don't" and vqa_normalize("dont") == "don't"
    assert _acc("dont", ["don't", "dont"] + ["no"] * 8) == pytest.approx(0.6)


def test_punctuation_yes_period_matches_yes() -> None:
    assert evalai_normalize("Yes.") == "yes" and evalai_normalize("yes!") == "yes"
    assert _acc("Yes.", ["yes"] * 10) == 1.0


def test_empty_answer_scores_zero_unless_a_human_left_it_empty() -> None:
    # "" equals no human answer -> 0; one empty human answer -> it matches like any string -> 0.3
    assert _acc("", ["yes"] * 10) == 0.0
    assert _acc("", [""] + ["yes"] * 9) == pytest.approx(0.3)


def test_unanimous_humans_are_compared_unnormalised_as_in_vqaeval() -> None:
    # vqaEval.py normalises only when the humans disagree. "t-shirt" x10 stays "t-shirt" while the EvalAI processor
    # has made the prediction "t shirt" -> 0; with one dissenting human both sides become "t shirt" -> 9 match -> 1.
    assert evalai_normalize("t-shirt") == "t shirt"
    assert _acc("t-shirt", ["t-shirt"] * 10) == 0.0
    assert _acc("t-shirt", ["t-shirt"] * 9 + ["shirt"]) == 1.0
    # Without the EvalAI step (--raw-predictions) "yes." is not normalised against unanimous "yes" -> 0.
    assert _acc("yes.", ["yes"] * 10, evalai=False) == 0.0
    assert _acc("yes.", ["yes"] * 9 + ["no"], evalai=False) == 1.0


def test_comma_in_number_and_digit_rules() -> None:
    # EvalAI deletes commas: "1,000" -> "1000". A human "1,000" among disagreeing humans: vqaEval's comma-in-number
    # rule deletes all marks -> "1000". So 1 "1,000" + 2 "1000" humans = 3 matches -> 0.9.
    assert evalai_normalize("1,000") == "1000" and vqa_normalize("1,000") == "1000"
    assert _acc("1,000", ["1,000", "1000", "1000"] + ["many"] * 7) == pytest.approx(0.9)
    # without a digit-comma-digit, a mark with no space beside it becomes a space: "red,white" -> "red white"
    assert vqa_normalize("red,white") == "red white" and vqa_normalize("red, white") == "red white"
    assert vqa_normalize("2.5") == "2.5" and vqa_normalize("none") == "0" and vqa_normalize("The Ten") == "10"


def test_only_the_first_32_periods_are_stripped() -> None:
    # vqaEval.py calls periodStrip.sub("", text, re.UNICODE): re.UNICODE == 32 is taken as the count.
    assert process_punctuation("x" + "." * 40) == "x" + "." * 8


def test_possessive_s_is_split_by_the_evalai_processor() -> None:
    # word_tokenize turns "'s" into " 's": "dog's" -> "dog 's", which equals no human "dog's" (pipeline quirk).
    assert evalai_normalize("dog's") == "dog 's"
    assert _acc("dog's", ["dog's"] * 5 + ["dog"] * 5) == 0.0


def test_equal_answer_dicts_leave_each_other_out_as_in_vqaeval() -> None:
    # vqaEval.py drops `item != gtAnsDatum`: 2 matching humans with identical dicts drop each other, so each sees
    # 0 matches; the other 8 see 2 -> (8 * 2/3 + 2 * 0) / 10 = 16/30. With distinct dicts it is 0.6.
    humans = ["dog", "dog"] + ["cat"] * 8
    same = [("yes", 1), ("yes", 1)] + [("yes", k) for k in range(2, 10)]
    assert float(vqa_accuracy(["dog"], [humans], answer_identity=[same]).accuracy[0]) == pytest.approx(16 / 30)
    assert float(vqa_accuracy(["dog"], [humans], answer_identity=[None]).accuracy[0]) == pytest.approx(0.6)


def test_vizwiz_rule_normalises_the_prediction_only_and_leaves_one_out_by_index() -> None:
    # VizWiz: no unanimity exception (raw "Yes." -> "yes" matches 10 "yes"), humans compared as stored ("Yes" != "yes")
    assert _acc("Yes.", ["yes"] * 10, rule="vizwiz", evalai=False) == 1.0
    assert _acc("yes", ["Yes"] * 10, rule="vizwiz") == 0.0
    assert _acc("dog", ["dog", "dog"] + ["cat"] * 8, rule="vizwiz") == pytest.approx(0.6)
    # VizWiz's contraction table writes U+2019 except in a few entries
    assert VIZWIZ_CONTRACTIONS["dont"] == "don\u2019t" and VIZWIZ_CONTRACTIONS["weve"] == "we've"
    assert VIZWIZ_CONTRACTIONS["couldn'tve"] == "couldn\u2019t\u2019ve" and VIZWIZ_CONTRACTIONS["cant"] == "can't"
    assert _acc("dont", ["don\u2019t"] * 3 + ["no"] * 7, rule="vizwiz", evalai=False) == pytest.approx(0.9)


def test_vectorised_scores_equal_a_per_question_loop() -> None:
    rng = np.random.default_rng(0)
    vocab = ["yes", "no", "2", "two", "a dog", "dog", "t-shirt", "Yes.", "1,000", "1000", ""]
    humans = [[vocab[i] for i in rng.integers(0, len(vocab), 10)] for _ in range(300)]
    preds = [vocab[i] for i in rng.integers(0, len(vocab), 300)]
    batch = vqa_accuracy(preds, humans).accuracy
    assert np.array_equal(batch, [_acc(p, h) for p, h in zip(preds, humans)])


# ------------------------------------------------------------------------------ agreement with lmms-eval's copy


def _lmms_evalai() -> ModuleType:
    spec = importlib.util.find_spec("lmms_eval")
    if spec is None or spec.origin is None:
        pytest.skip("lmms-eval not installed")
    path = Path(spec.origin).parent / "tasks" / "_task_utils" / "vqa_eval_metric.py"
    mod_spec = importlib.util.spec_from_file_location("_lmms_vqa_eval_metric", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)  # re only; avoids importing lmms_eval.tasks (slow)
    return module


def test_tables_and_evalai_processor_agree_with_the_mmf_copy_in_lmms_eval() -> None:
    ref = _lmms_evalai().EvalAIAnswerProcessor
    assert CONTRACTIONS == ref.CONTRACTIONS
    awkward = ["Two", "a dog.", "dont", "", "Yes.", "1,000", "1,,000", "t-shirt", "left - right", "dog's", "e.g.",
               "3.5.", "(yes)", "yes\n", "The Ten", "none", "Im", "x" + "." * 40, "black & white", "who's", "50%"]
    processor = ref()
    assert [evalai_normalize(s) for s in awkward] == [processor(s) for s in awkward]


# ----------------------------------------------------------------------------------------- official files


def _vqa_files(tmp_path: Path, preds: list[dict[str, Any]] | None = None) -> tuple[Path, Path, Path]:
    """Four questions in the official layout (hand-computed accuracies in the comments)."""
    def answers(*humans: str) -> list[dict[str, Any]]:
        return [{"answer": h, "answer_confidence": "yes", "answer_id": i + 1} for i, h in enumerate(humans)]

    anns = [
        # yes/no, "Yes." vs unanimous "yes" -> 1.0
        {"question_id": 11, "image_id": 1, "question_type": "is the", "answer_type": "yes/no",
         "multiple_choice_answer": "yes", "answers": answers(*["yes"] * 10)},
        # number, "Two" -> "2", 2 humans -> 0.6
        {"question_id": 12, "image_id": 1, "question_type": "how many", "answer_type": "number",
         "multiple_choice_answer": "3", "answers": answers("2", "2", *["3"] * 8)},
        # other, "a dog." -> "dog", 3 humans -> 0.9
        {"question_id": 21, "image_id": 2, "question_type": "what", "answer_type": "other",
         "multiple_choice_answer": "cat", "answers": answers("dog", "dog", "dog", *["cat"] * 7)},
        # other, "" -> 0
        {"question_id": 22, "image_id": 2, "question_type": "what", "answer_type": "other",
         "multiple_choice_answer": "red", "answers": answers(*["red"] * 10)},
    ]
    questions = [{"question_id": a["question_id"], "image_id": a["image_id"], "question": "?"} for a in anns]
    if preds is None:
        preds = [{"question_id": 22, "answer": ""}, {"question_id": 21, "answer": "a dog."},
                 {"question_id": 12, "answer": "Two"}, {"question_id": 11, "answer": "Yes."}]
    (tmp_path / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": anns}))
    (tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps({"questions": questions}))
    (tmp_path / "results.json").write_text(json.dumps(preds))
    return (tmp_path / "results.json", tmp_path / "v2_mscoco_val2014_annotations.json",
            tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json")


def test_vqav2_files_score_known_overall_and_per_type_accuracy(tmp_path: Path) -> None:
    preds, anns, qs = _vqa_files(tmp_path)
    result = score("vqav2", preds, anns, questions=qs, n_bootstrap=0)
    # overall (1 + 0.6 + 0.9 + 0) / 4 = 62.5; yes/no 100; number 60; other (0.9 + 0) / 2 = 45
    assert result.metrics == pytest.approx(
        {"accuracy": 62.5, "accuracy_yes_no": 100.0, "accuracy_number": 60.0, "accuracy_other": 45.0}
    )
    assert result.n == 4 and result.ci95 == {}
    assert [r["question_id"] for r in result.rows] == [11, 12, 21, 22]  # annotation order
    assert result.rows[1] == {"question_id": 12, "answer_type": "number", "prediction": "2", "matches": 2,
                              "accuracy": pytest.approx(0.6)}


def test_okvqa_uses_the_same_official_rules(tmp_path: Path) -> None:
    preds, anns, qs = _vqa_files(tmp_path)
    assert score("okvqa", preds, anns, questions=qs, n_bootstrap=0).metrics["accuracy"] == pytest.approx(62.5)


def test_duplicate_answer_ids_switch_on_whole_dict_leave_out(tmp_path: Path) -> None:
    preds, anns, _ = _vqa_files(tmp_path)
    data = json.loads(anns.read_text())
    for a in data["annotations"][1]["answers"]:  # question 12: every dict {"answer", "yes", 1}
        a["answer_id"] = 1
    anns.write_text(json.dumps(data))
    # the 2 "2" dicts are equal: each leaves both out -> (8 * 2/3) / 10 = 16/30 instead of 0.6
    rows = score("vqav2", preds, anns, n_bootstrap=0).rows
    assert rows[1]["accuracy"] == pytest.approx(16 / 30)


def test_raw_predictions_flag_skips_the_evalai_processor(tmp_path: Path) -> None:
    preds, anns, _ = _vqa_files(tmp_path)
    # "Yes." vs unanimous "yes" is not normalised by vqaEval.py -> 0; the others are normalised anyway
    result = score("vqav2", preds, anns, n_bootstrap=0, raw_predictions=True)
    assert result.metrics["accuracy_yes_no"] == 0.0 and result.metrics["accuracy_number"] == pytest.approx(60.0)


def test_bootstrap_intervals_are_deterministic_and_bracket_the_metrics(tmp_path: Path) -> None:
    files = _vqa_files(tmp_path)
    a = score("vqav2", files[0], files[1], n_bootstrap=200, seed=3)
    b = score("vqav2", files[0], files[1], n_bootstrap=200, seed=3)
    assert a.ci95 == b.ci95 and set(a.ci95) == set(a.metrics)
    for name, value in a.metrics.items():
        assert a.ci95[name][0] <= value <= a.ci95[name][1]


@pytest.mark.parametrize(
    ("preds", "message"),
    [
        ([{"question_id": 11, "answer": "yes"}], r"results\.json: predictions cover 1 of 4 questions .*missing "
                                                  r"question_id 12, 21, 22$"),
        ([{"question_id": q, "answer": "x"} for q in (11, 12, 21, 22, 12)],
         r"results\.json: 1 duplicate question_id values: 12$"),
        ([{"question_id": q, "answer": "x"} for q in (11, 12, 21, 22, 99)],
         r"results\.json: 1 question_id values are not in .*annotations\.json: 99$"),
        ([{"question_id": q, "answer": 2} for q in (11, 12, 21, 22)],
         r"results\.json: 'answer' is not a string for question_id 11, 12, 21, 22$"),
        ({"question_id": 11}, r"results\.json: expected a JSON array"),
    ],
)
def test_bad_predictions_are_named_in_one_line(tmp_path: Path, preds: Any, message: str) -> None:
    files = _vqa_files(tmp_path, preds)
    with pytest.raises(DataError, match=message) as e:
        score("vqav2", files[0], files[1], questions=files[2])
    assert "\n" not in str(e.value)


def test_bad_annotations_and_questions_are_named_in_one_line(tmp_path: Path) -> None:
    preds, anns, qs = _vqa_files(tmp_path)
    data = json.loads(anns.read_text())
    data["annotations"][2]["answers"] = []
    anns.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"annotations\.json: question_id 21 has no human answers"):
        score("vqav2", preds, anns)
    data["annotations"][2]["answers"] = [{"answer": None}]
    anns.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"question_id 21 has an answer that is not an object with a string"):
        score("vqav2", preds, anns)
    _vqa_files(tmp_path)
    q = json.loads(qs.read_text())
    q["questions"] = q["questions"][:3]
    qs.write_text(json.dumps(q))
    with pytest.raises(DataError, match=r"questions\.json: question ids differ .*1 annotated but not asked \(22\)"):
        score("vqav2", preds, anns, questions=qs)
    anns.write_text(json.dumps([{"question_id": 1}]))
    with pytest.raises(DataError, match=r"annotations\.json: expected a JSON object with a 'annotations' list"):
        score("vqav2", preds, anns)


def _vizwiz_files(tmp_path: Path) -> tuple[Path, Path]:
    def ann(image: str, kind: str, humans: list[str]) -> dict[str, Any]:
        return {"image": image, "question": "?", "answer_type": kind, "answerable": int(kind != "unanswerable"),
                "answers": [{"answer": h, "answer_confidence": "yes"} for h in humans]}

    anns = [
        ann("VizWiz_val_00000000.jpg", "other", ["basil"] * 2 + ["herbs"] * 8),  # "Basil." -> "basil": 0.6
        ann("VizWiz_val_00000001.jpg", "unanswerable", ["unanswerable"] * 10),  # "Unanswerable" -> 1.0
        ann("VizWiz_val_00000002.jpg", "yes/no", ["Yes"] * 10),  # humans not normalised: "yes" != "Yes" -> 0
    ]
    preds = [{"image": "VizWiz_val_00000002.jpg", "answer": "yes"},
             {"image": "VizWiz_val_00000000.jpg", "answer": "Basil."},
             {"image": "VizWiz_val_00000001.jpg", "answer": "Unanswerable"}]
    (tmp_path / "val.json").write_text(json.dumps(anns))
    (tmp_path / "answers_upload.json").write_text(json.dumps(preds))
    return tmp_path / "answers_upload.json", tmp_path / "val.json"


def test_vizwiz_files_score_known_accuracy(tmp_path: Path) -> None:
    preds, anns = _vizwiz_files(tmp_path)
    result = score("vizwiz", preds, anns, n_bootstrap=0)
    # (0.6 + 1 + 0) / 3 = 53.33
    assert result.metrics == pytest.approx({"accuracy": 160 / 3, "accuracy_other": 60.0,
                                            "accuracy_unanswerable": 100.0, "accuracy_yes_no": 0.0})
    assert [r["image"] for r in result.rows] == ["VizWiz_val_00000000.jpg", "VizWiz_val_00000001.jpg",
                                                 "VizWiz_val_00000002.jpg"]


def test_vizwiz_test_split_without_answers_is_rejected(tmp_path: Path) -> None:
    preds, anns = _vizwiz_files(tmp_path)
    anns.write_text(json.dumps([{"image": "VizWiz_test_00000000.jpg", "question": "?"}]))
    with pytest.raises(DataError, match=r"val\.json: record 0 lacks 'answers' and 'answer_type'"):
        score("vizwiz", preds, anns)


def test_benchmarks_document_formats_and_answer_type_names() -> None:
    assert sanitize_type("yes/no") == "accuracy_yes_no"[len("accuracy_"):]
    for name in ("vqav2", "okvqa", "vizwiz"):
        bench = get(name)
        assert '"answer"' in bench.help and "EvalAIAnswerProcessor" in bench.help
        assert all(m.higher_is_better for m in bench.metrics) and bench.metrics[0].name == "accuracy"
    assert get("vqav2").takes_questions and '"question_id"' in get("vqav2").help
    assert '"image"' in get("vizwiz").help


def test_cli_writes_result_and_per_question_samples(tmp_path: Path, cli: Any) -> None:
    preds, anns, qs = _vqa_files(tmp_path)
    out = tmp_path / "res" / "vqav2.json"
    proc = cli("score", "vqav2", "--predictions", preds, "--annotations", anns, "--questions", qs, "--out", out,
               "--bootstrap", "50")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(out.read_text())
    assert record["metrics"]["accuracy"] == pytest.approx(62.5) and record["n"] == 4
    samples = [json.loads(line) for line in (tmp_path / "res" / "vqav2.samples.jsonl").read_text().splitlines()]
    assert [s["accuracy"] for s in samples] == pytest.approx([1.0, 0.6, 0.9, 0.0])
    preds.write_text(json.dumps([{"question_id": 11, "answer": "yes"}]))
    bad = cli("score", "vqav2", "--predictions", preds, "--annotations", anns, "--out", out)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "missing question_id 12, 21, 22" in bad.stderr


# ------------------------------------------------------------------- the typed fast path and the scoring process


def _small_vqav2(folder: Path, *, ids: str = "official") -> tuple[Path, Path, Path]:
    """300 questions in the official layout; every 50th question numbers its humans 1..10 (``ids="official"``),
    10..1 (``"reversed"``) or 1,1,2,2,...,5,5 (``"repeated"``)."""
    rng = random.Random(7)
    words = ["yes", "no", "2", "two", "dog", "a dog", "t-shirt", "red", "Red.", "don't", "dont", "hot dog"]
    anns, qs, preds = [], [], []
    for i in range(300):
        pool = rng.sample(words, rng.choice([1, 2, 3]))
        humans = rng.choices(pool, k=10)
        numbers = {"official": range(1, 11), "reversed": range(10, 0, -1), "repeated": [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]}
        aids = numbers[ids] if i % 50 == 0 else range(1, 11)
        anns.append({"question_id": 100 + i, "image_id": i, "question_type": "what",
                     "answer_type": ["yes/no", "number", "other"][i % 3], "multiple_choice_answer": humans[0],
                     "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j}
                                 for a, j in zip(humans, aids)]})
        qs.append({"question_id": 100 + i, "image_id": i, "question": "What?"})
        preds.append({"question_id": 100 + i, "answer": rng.choice(pool + ["cat", "Two", "The dog."])})
    paths = folder / "predictions.json", folder / "annotations.json", folder / "questions.json"
    for path, obj in zip(paths, (preds[::-1], {"annotations": anns}, {"questions": qs})):
        path.write_text(json.dumps(obj))
    return paths


@pytest.mark.parametrize("ids", ["official", "reversed", "repeated"])
def test_typed_fast_path_reads_what_the_generic_reader_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: str
) -> None:
    import evaluation.readers.vqa as reader

    paths = _small_vqav2(tmp_path, ids=ids)
    official = reader.read_json_typed(paths[1], reader._NumberedAnnotations) is not None
    assert official == (ids == "official")  # the official numbering is checked while decoding
    assert (reader._read_vqa_typed(*paths) is None) == (ids == "repeated")  # repeated ids: the generic path's job
    fast = reader.read_vqa(*paths)
    monkeypatch.setattr(reader, "read_json_typed", lambda path, kind: None)  # force the generic path
    generic = reader.read_vqa(*paths)
    assert fast.ids == generic.ids and fast.answer_types == generic.answer_types
    assert fast.predictions == generic.predictions and fast.identity == generic.identity
    assert fast.answers.lists() == generic.answers.lists() and np.array_equal(fast.answers.counts,
                                                                              generic.answers.counts)
    assert (fast.identity[0] is not None) == (ids == "repeated")


def test_cli_result_of_a_small_vqav2_case_is_unchanged(tmp_path: Path, cli: Any) -> None:
    # Metrics of this case from the scorer before the fast path and the counts bootstrap (commit 7f5d0c7)
    preds, anns, qs = _small_vqav2(tmp_path)
    out = tmp_path / "r.json"
    proc = cli("score", "vqav2", "--predictions", preds, "--annotations", anns, "--questions", qs, "--out", out,
               "--variant", "x", "--config-sha", "s", "--bootstrap", "1000")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert sorted(result) == ["benchmark", "checkpoint", "ci95", "config_sha", "git_sha", "metrics", "n",
                              "provenance", "variant"]
    expected = {"accuracy": 42.5333, "accuracy_number": 42.1, "accuracy_other": 37.9, "accuracy_yes_no": 47.6}
    assert sorted(result["metrics"]) == sorted(expected) == sorted(result["ci95"]) and result["n"] == 300
    for name, value in expected.items():
        assert result["metrics"][name] == pytest.approx(value, abs=0.01)
        lo, hi = result["ci95"][name]
        assert lo < result["metrics"][name] < hi
    rows = [json.loads(line) for line in (tmp_path / "r.samples.jsonl").read_text().splitlines()]
    assert len(rows) == 300 and sorted(rows[0]) == ["accuracy", "answer_type", "matches", "prediction", "question_id"]
    assert 100 * np.mean([r["accuracy"] for r in rows]) == pytest.approx(expected["accuracy"], abs=0.01)


def test_scoring_a_text_benchmark_imports_no_model_library() -> None:
    code = (
        "import sys\n"
        "from evaluation.cli import main\n"
        "try:\n    main(['score', 'vqav2', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('torch', 'transformers', 'scipy', 'PIL', 'pandas', 'setok.config', 'evaluation.tasks.vqa')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print(sorted(m for m in sys.modules if m.startswith('evaluation.suite.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    loaded, suite = proc.stdout.splitlines()[-2:]
    assert loaded == "[]"
    assert suite == "['evaluation.suite._vqa', 'evaluation.suite.vqav2']"  # the scored benchmark's module alone
