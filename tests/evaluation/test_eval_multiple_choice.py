"""SEED-Bench, MMBench (circular), MMMU: answer extraction, known accuracies, lmms-eval's differences, errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from evaluation.metrics.multiple_choice import (
    circular_group,
    mmbench_infer,
    mmbench_infer_option,
    mmbench_infer_text,
    mmmu_open_correct,
    mmmu_parse_choice,
    mmmu_parse_open,
    seed_correct,
)
from evaluation.readers.multiple_choice import read_mmbench
from evaluation.registry import get
from setok.io import DataError, write_json, write_jsonl

Cli = Callable[..., subprocess.CompletedProcess[str]]
ANIMALS = {"A": "cat", "B": "dog", "C": "bird", "D": "fish"}


def _lmms(rel: str) -> ModuleType:
    """An installed lmms-eval task module, loaded by path (without importing lmms-eval's runtime)."""
    root = Path(importlib.util.find_spec("lmms_eval").origin).parent / "tasks"
    spec = importlib.util.spec_from_file_location("lmms_" + rel.replace("/", "_")[:-3], root / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------------------- SEED


@pytest.mark.parametrize(
    ("prediction", "answer", "first_char", "exact"),
    [
        ("B", "B", True, True),
        ("b", "B", True, False),
        (" B. A dog", "B", True, False),  # stripped, then its first character
        ("(B)", "B", False, False),
        ("The answer is B", "B", False, False),  # first character "T"
        ("", "A", False, False),
    ],
)
def test_seed_letter_is_the_first_character_as_lmms_eval_or_exact_as_llava(
    prediction: str, answer: str, first_char: bool, exact: bool
) -> None:
    assert seed_correct(prediction, answer) is first_char
    assert seed_correct(prediction, answer, "exact") is exact
    lmms = _lmms("seedbench/utils.py")
    doc = {"answer": answer, "data_type": "image", "question_id": "1"}
    item = lmms.seed_process_result(doc, [prediction])["seed_all"]
    assert lmms.seed_aggregation_result([item]) == float(first_char)


@pytest.fixture
def seed_files(tmp_path: Path) -> tuple[Path, Path]:
    """SEED-Bench.json with 4 image questions (dimensions 1, 5) and 1 video question; 3 of 5 answered right."""
    def q(qid: str, answer: str, type_id: int, data_type: str) -> dict:
        return {"question_id": qid, "question": "?", "choice_a": "a", "choice_b": "b", "choice_c": "c",
                "choice_d": "d", "answer": answer, "data_id": f"{qid}.jpg", "data_type": data_type,
                "question_type_id": type_id}

    refs = {
        "questions": [q("101", "A", 1, "image"), q("102", "B", 1, "image"), q("103", "C", 5, "image"),
                      q("104", "D", 5, "image"), q("v1", "B", 10, "video")],
        "question_type": {"Scene Understanding": 1, "Instances Counting": 5, "Action Recognition": 10},
    }
    preds = [  # integer ids match the file's string ids
        {"question_id": 101, "prediction": "A"},  # right
        {"question_id": 102, "prediction": "b) dog"},  # right: first character, case-insensitive
        {"question_id": 103, "prediction": "The answer is C"},  # wrong: "T"
        {"question_id": "104", "text": " D."},  # right; LLaVA's "text" field
        {"question_id": "v1", "prediction": "A"},  # wrong
    ]
    write_json(tmp_path / "SEED-Bench.json", refs)
    write_jsonl(tmp_path / "seed_preds.jsonl", preds)
    return tmp_path / "seed_preds.jsonl", tmp_path / "SEED-Bench.json"


def test_seed_reports_overall_data_type_and_dimension_accuracies(seed_files: tuple[Path, Path]) -> None:
    m = get("seed").score(*seed_files, n_bootstrap=0).metrics
    assert m == {
        "accuracy": 60.0, "accuracy_image": 75.0, "accuracy_video": 0.0, "accuracy_scene_understanding": 100.0,
        "accuracy_instances_counting": 50.0, "accuracy_action_recognition": 0.0,
    }


def test_seed_exact_rule_and_image_only_scoring(seed_files: tuple[Path, Path]) -> None:
    assert get("seed").score(*seed_files, n_bootstrap=0, letter_rule="exact").metrics["accuracy"] == 20.0
    preds, refs = seed_files
    rows = [json.loads(x) for x in preds.read_text().splitlines()][:4]  # no video prediction needed
    write_jsonl(preds, rows)
    result = get("seed").score(preds, refs, n_bootstrap=0, data_type="image")
    assert result.metrics["accuracy"] == 75.0 and result.n == 4 and "accuracy_video" not in result.metrics
    with pytest.raises(DataError, match=r"seed_preds\.jsonl: missing predictions for 1 of 5 ids .*: v1$"):
        get("seed").score(preds, refs)


def test_seed_unknown_prediction_ids_are_errors(seed_files: tuple[Path, Path]) -> None:
    preds, refs = seed_files
    with preds.open("a") as f:
        f.write(json.dumps({"question_id": "999", "prediction": "A"}) + "\n")
    with pytest.raises(DataError, match=r"1 ids are not in .*SEED-Bench\.json: 999"):
        get("seed").score(preds, refs)


# -------------------------------------------------------------------------------------------------------- MMBench


@pytest.mark.parametrize(
    ("answer", "letter"),
    [
        ("B", "B"),
        ("(C)", "C"),
        ("Answer: D.", "D"),
        ("I think the answer is C", "C"),  # the letter is among the last 4 tokens
        ("A. The cat is black and sleeping on a sofa", None),  # the letter is token 0 of 10: not trusted
        ("The answer is A or B", None),  # two letters
        ("Cannot determine the answer", "Z"),
        ("Z", "Z"),
    ],
)
def test_mmbench_letter_rule_follows_vlmevalkit_can_infer_option(answer: str, letter: str | None) -> None:
    assert mmbench_infer_option(answer, list(ANIMALS)) == letter


def test_mmbench_text_rule_needs_one_option_text_in_a_short_enough_answer() -> None:
    assert mmbench_infer_text("It is a dog", ANIMALS) == "B"
    assert mmbench_infer_text("the dog chased the cat", ANIMALS) is None  # two option texts
    # 2 * (3 + 3 + 4 + 4) = 28 characters at most; this answer has 30.
    assert mmbench_infer_text("a dog " * 5, ANIMALS) is None
    assert mmbench_infer("Definitely the bird", ANIMALS) == "C"


def test_lmms_eval_mmbench_matcher_is_older_and_accepts_a_leading_letter() -> None:
    evaluator = _lmms("mmbench/mmbench_evals.py").MMBench_Evaluator()
    chatty = "A. The cat is black and sleeping on a sofa"
    assert evaluator.can_infer(chatty, dict(ANIMALS)) == "A" and mmbench_infer(chatty, ANIMALS) is None
    for answer in ("B", "(C)", "Answer: D."):
        assert evaluator.can_infer(answer, dict(ANIMALS)) == mmbench_infer(answer, ANIMALS)


def _rotations(index: int, options: list[str], answer: int, category: str, l2: str) -> list[dict]:
    """The official TSV rows of a question: pass k rotates the options left by k, index + k * 1e6."""
    rows = []
    for k in range(len(options)):
        opts = options[k:] + options[:k]
        letters = "ABCD"[: len(opts)]
        rows.append({"index": index + k * 1_000_000, "question": "?", "hint": "nan",
                     **{c: o for c, o in zip(letters, opts)}, "answer": letters[opts.index(options[answer])],
                     "category": category, "l2-category": l2, "image": "aGVsbG8=", "split": "dev"})
    return rows


@pytest.fixture
def mmbench_files(tmp_path: Path) -> tuple[Path, Path]:
    """4 questions: Q1 all 4 passes right; Q2 3 of 4 right; Q3 one pass unmatched; Q4 single pass right."""
    fine = "finegrained_perception (instance-level)"
    rows = (
        _rotations(1, ["cat", "dog", "bird", "fish"], 1, "image_topic", "coarse_perception")
        + _rotations(2, ["red", "green", "blue", "black"], 2, "attribute_recognition", fine)
        + _rotations(3, ["True", "False"], 0, "image_topic", "coarse_perception")
        + [{"index": 4, "question": "?", "hint": "", "A": "x", "B": "y", "C": "z", "D": "None", "answer": "A",
            "category": "ocr", "l2-category": fine, "image": "aGVsbG8=", "split": "dev"}]
    )
    columns = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "image", "split"]
    tsv = "\t".join(columns) + "\n" + "".join("\t".join(str(r.get(c, "")) for c in columns) + "\n" for r in rows)
    (tmp_path / "MMBench_DEV_EN.tsv").write_text(tsv)
    outputs = {
        1: "B", 1000001: "A", 2000001: "The answer is D", 3000001: "dog",  # "dog" is option C of pass 3
        2: "C", 1000002: "B", 2000002: "A", 3000002: "A",  # pass 3's answer is D
        3: "A", 1000003: "I am not sure which one",  # unmatched: wrong without the GPT stage
        4: "A",
    }
    preds = [{"index": i, "prediction": p} for i, p in outputs.items()]
    preds[-1] = {"question_id": 4, "text": "A"}  # LLaVA field names
    write_jsonl(tmp_path / "mmb_preds.jsonl", preds)
    return tmp_path / "mmb_preds.jsonl", tmp_path / "MMBench_DEV_EN.tsv"


def test_mmbench_question_counts_only_if_every_circular_pass_is_right(mmbench_files: tuple[Path, Path]) -> None:
    result = get("mmbench").score(*mmbench_files, n_bootstrap=0)
    assert [r["correct"] for r in result.rows] == [1, 0, 0, 1] and result.n == 4
    assert result.metrics == {
        "accuracy": 50.0,
        "accuracy_l2_coarse_perception": 50.0,  # Q1, Q3
        "accuracy_l2_finegrained_perception_instance_level": 50.0,  # Q2, Q4
        "accuracy_attribute_recognition": 0.0,
        "accuracy_image_topic": 50.0,
        "accuracy_ocr": 100.0,
    }
    q1 = result.rows[0]
    assert q1["answers"] == ["B", "A", "D", "C"] and q1["matched"] == ["B", "A", "D", "C"]
    assert result.rows[2]["matched"] == ["A", None]


def test_mmbench_tsv_is_read_like_pandas_so_a_none_option_is_absent(mmbench_files: tuple[Path, Path]) -> None:
    rows = {r.index: r for r in read_mmbench(mmbench_files[1])}
    assert rows[4].choices == {"A": "x", "B": "y", "C": "z"}  # "None" is a pandas missing value
    assert rows[1000003].choices == {"A": "False", "B": "True"} and rows[1000003].answer == "B"
    assert [circular_group(i) for i in (3, 1000003, 2000001)] == [3, 3, 1]


def test_mmbench_missing_pass_prediction_and_orphan_copies_are_errors(
    mmbench_files: tuple[Path, Path], tmp_path: Path
) -> None:
    preds, refs = mmbench_files
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    write_jsonl(preds, [r for r in rows if r.get("index") != 2000002])
    with pytest.raises(DataError, match=r"mmb_preds\.jsonl: missing predictions for 1 of 11 ids .*: 2000002$"):
        get("mmbench").score(preds, refs)
    lines = refs.read_text().splitlines()
    refs.write_text("\n".join(line for line in lines if not line.startswith("2\t")) + "\n")
    with pytest.raises(DataError, match=r"circular copies without their main question .*: 1000002, 2000002, 3000002"):
        get("mmbench").score(preds, refs)


# ----------------------------------------------------------------------------------------------------------- MMMU


@pytest.mark.parametrize(
    ("response", "official", "lmms_eval"),
    [
        ("(B)", "B", "B"),
        ("The answer is (C).", "C", "C"),
        ("Both A and C are wrong, the answer is C", "C", "C"),  # several letters: the last one
        ("The capital of France is Paris indeed", "B", "B"),  # > 5 words: option text "Paris"
        ("Paris", None, None),  # 1 word: no text matching; official picks a random letter
        ("DNA is the answer", None, "A"),  # lmms-eval finds "A " inside "DNA "
        ("Option B. is right", None, "B"),  # only lmms-eval looks for "B."
    ],
)
def test_mmmu_choice_parsing_official_and_lmms_eval_variants(
    response: str, official: str | None, lmms_eval: str | None
) -> None:
    options = ["London", "Paris", "Rome", "Berlin"]
    assert mmmu_parse_choice(response, options) == official
    assert mmmu_parse_choice(response, options, "lmms-eval") == lmms_eval
    if lmms_eval is not None:  # lmms-eval's own function agrees wherever it does not draw at random
        shared = _lmms("_task_utils/mmmu_mcq_utils.py")
        index2ans = dict(zip("ABCD", options))
        assert shared.parse_mmmu_multi_choice_response(response, list("ABCD"), index2ans) == lmms_eval


@pytest.mark.parametrize(
    ("response", "gold", "right"),
    [
        ("The answer is 3.14159", "3.14", True),  # numbers compare after rounding to 2 decimals
        ("so the total is 1000 dollars", "1,000", True),
        ("12.96", "12.97", False),
        ("It is in Florida", ["Tampa", "Florida"], True),  # list of accepted answers
        ("a", "A", True),  # a single character matches as a separate word ...
        ("banana", "A", False),  # ... not inside another word
        ("x = 5\nso the answer is 7", "5", False),  # only the tail after the indicator counts
    ],
)
def test_mmmu_open_answers_follow_eval_open(response: str, gold: str | list[str], right: bool) -> None:
    assert mmmu_open_correct(gold, mmmu_parse_open(response)) is right


@pytest.fixture
def mmmu_files(tmp_path: Path) -> tuple[Path, Path]:
    """5 questions in Art (2) and Math (3); 3 answered right."""
    refs = [
        {"id": "validation_Art_1", "question_type": "multiple-choice", "options": "['cat', 'dog', 'bird', 'fish']",
         "answer": "B"},
        {"id": "validation_Art_2", "question_type": "multiple-choice", "options": ["red", "green"], "answer": "A"},
        {"id": "validation_Math_1", "question_type": "open", "options": "[]", "answer": "3.14"},
        {"id": "validation_Math_2", "question_type": "open", "options": "[]", "answer": "['24/7', '3.429']"},
        {"id": "validation_Math_3", "question_type": "open", "options": "[]", "answer": "12.97"},
    ]
    outputs = ["(B)", "green", "The answer is 3.14159", "3.429", "12.96"]
    write_json(tmp_path / "mmmu_val.json", refs)
    write_jsonl(tmp_path / "mmmu_preds.jsonl", [{"id": r["id"], "prediction": o} for r, o in zip(refs, outputs)])
    return tmp_path / "mmmu_preds.jsonl", tmp_path / "mmmu_val.json"


def test_mmmu_reports_overall_subject_and_discipline_accuracy(mmmu_files: tuple[Path, Path]) -> None:
    result = get("mmmu").score(*mmmu_files, n_bootstrap=0)
    assert result.metrics == pytest.approx({
        "accuracy": 60.0, "accuracy_art": 50.0, "accuracy_math": 200 / 3,
        "accuracy_domain_art_and_design": 50.0, "accuracy_domain_science": 200 / 3,
    })
    # "green" is one word: nothing parses, so it is wrong here (the official script would guess a letter).
    assert result.rows[1]["parsed"] is None and result.rows[1]["correct"] == 0
    assert result.rows[3]["answer"] == ["24/7", "3.429"] and result.rows[3]["correct"] == 1


def test_mmmu_answer_outside_the_options_is_an_error(mmmu_files: tuple[Path, Path]) -> None:
    preds, refs = mmmu_files
    rows = json.loads(refs.read_text())
    rows[1]["answer"] = "C"
    write_json(refs, rows)
    with pytest.raises(DataError, match=r"mmmu_val\.json: validation_Art_2 has answer 'C', not one of its letters"):
        get("mmmu").score(preds, refs)


def test_bootstrap_gives_deterministic_group_intervals(mmmu_files: tuple[Path, Path]) -> None:
    a = get("mmmu").score(*mmmu_files, n_bootstrap=200, seed=5)
    assert set(a.ci95) == set(a.metrics) and a.ci95 == get("mmmu").score(*mmmu_files, n_bootstrap=200, seed=5).ci95
    lo, hi = a.ci95["accuracy"]
    assert 0.0 <= lo <= 60.0 <= hi <= 100.0


def test_cli_scores_mmbench_with_circular_evaluation(
    mmbench_files: tuple[Path, Path], cli: Cli, tmp_path: Path
) -> None:
    preds, refs = mmbench_files
    out = tmp_path / "mmb.json"
    proc = cli("score", "mmbench", "--predictions", preds, "--annotations", refs, "--out", out, "--bootstrap", "20")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["metrics"]["accuracy"] == 50.0
    samples = [json.loads(x) for x in (tmp_path / "mmb.samples.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == [1, 2, 3, 4]
