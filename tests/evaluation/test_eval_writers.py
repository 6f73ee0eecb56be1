"""Prediction writers: write -> score with the registered scorer on tiny official-layout fixtures -> known numbers.

Every writer must refuse a model output that misses ids (one-line DataError naming them, nothing written).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from evaluation.readers.segmentation import encode
from evaluation.registry import get
from evaluation.writers import (
    genai_bench_ids,
    write_captions,
    write_edited_images,
    write_generated_images,
    write_gqa,
    write_masks,
    write_mmbench,
    write_mme,
    write_mmmu,
    write_mmvet,
    write_pope,
    write_seed,
    write_vizwiz,
    write_vqa,
)
from setok.io import DataError, write_json, write_jsonl


def _score(name: str, predictions: Path, annotations: Path | None = None, **opts: Any) -> dict[str, float]:
    return get(name).score(predictions, annotations, n_bootstrap=0, **opts).metrics


def _one_line_error(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------------ VQA / VizWiz / GQA


def _humans(*answers: str) -> list[dict[str, Any]]:
    return [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(answers)]


@pytest.fixture
def vqa_annotations(tmp_path: Path) -> Path:
    """Question 1: 10 x "2" (number); question 2: 2 x "red", 8 x "blue" (other)."""
    anns = {"annotations": [
        {"question_id": 1, "image_id": 9, "question_type": "how many", "answer_type": "number",
         "multiple_choice_answer": "2", "answers": _humans(*["2"] * 10)},
        {"question_id": 2, "image_id": 9, "question_type": "what color", "answer_type": "other",
         "multiple_choice_answer": "blue", "answers": _humans("red", "red", *["blue"] * 8)},
    ]}
    write_json(tmp_path / "v2_mscoco_val2014_annotations.json", anns)
    return tmp_path / "v2_mscoco_val2014_annotations.json"


def test_vqa_writer_keeps_integer_ids_and_scores_known_partial_accuracy(vqa_annotations: Path, tmp_path: Path) -> None:
    # "Two" -> EvalAI processor -> "2": all 10 humans match -> 1.0; "red": 2 humans -> (8*2/3 + 2*1/3)/10 = 0.6.
    # A string key "2" stands for the integer id 2 (a datasets column often holds ids as strings).
    out = write_vqa({1: "Two", "2": "red"}, vqa_annotations, tmp_path / "answers.json")
    rows = json.loads(out.read_text())
    assert rows == [{"answer": "Two", "question_id": 1}, {"answer": "red", "question_id": 2}]
    metrics = _score("vqav2", out, vqa_annotations)
    assert metrics["accuracy"] == pytest.approx(80.0)
    assert metrics["accuracy_number"] == pytest.approx(100.0)
    assert metrics["accuracy_other"] == pytest.approx(60.0)


def test_vqa_writer_serves_okvqa_which_compares_the_stemmed_answer(tmp_path: Path) -> None:
    humans = [{"answer_id": k + 1, "raw_answer": "racing", "answer_confidence": "yes", "answer": "race"}
              for k in range(10)]
    anns = {"annotations": [{"question_id": 2971475, "image_id": 297147, "question_type": "one",
                             "answer_type": "other", "answers": humans}]}
    write_json(tmp_path / "mscoco_val2014_annotations.json", anns)
    refs = tmp_path / "mscoco_val2014_annotations.json"
    # The stemmed "race" is compared, never "racing": the raw answer scores 0, the stem 100.
    assert _score("okvqa", write_vqa({2971475: "racing"}, refs, tmp_path / "a.json"), refs)["accuracy"] == 0.0
    assert _score("okvqa", write_vqa({2971475: "Race"}, refs, tmp_path / "b.json"), refs)["accuracy"] == 100.0


def test_vqa_writer_refuses_missing_answers_and_writes_nothing(vqa_annotations: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        write_vqa({1: "2"}, vqa_annotations, tmp_path / "answers.json")
    message = _one_line_error(excinfo)
    assert "missing answers for 1 of 2 ids: 2" in message and "answers.json" in message
    assert not (tmp_path / "answers.json").exists()


def test_vqa_writer_refuses_unknown_ids_and_string_integer_twins(vqa_annotations: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="1 answers are for ids not in the references: 3"):
        write_vqa({1: "2", 2: "blue", 3: "x"}, vqa_annotations, tmp_path / "a.json")
    with pytest.raises(DataError, match="keys 1 ids twice"):
        write_vqa({1: "2", "1": "2", 2: "blue"}, vqa_annotations, tmp_path / "a.json")
    with pytest.raises(DataError, match="answers are not strings for 1 ids: 2"):
        write_vqa({1: "2", 2: None}, vqa_annotations, tmp_path / "a.json")


def test_vizwiz_writer_keys_by_image_name(tmp_path: Path) -> None:
    names = ["VizWiz_val_00000000.jpg", "VizWiz_val_00000001.jpg"]
    val = [
        {"image": names[0], "question": "?", "answer_type": "other", "answerable": 1,
         "answers": [{"answer": "basil", "answer_confidence": "yes"}] * 10},
        {"image": names[1], "question": "?", "answer_type": "other", "answerable": 1,
         "answers": [{"answer": "salt", "answer_confidence": "yes"}] * 3
         + [{"answer": "pepper", "answer_confidence": "yes"}] * 7},
    ]
    write_json(tmp_path / "val.json", val)
    # "Basil." -> "basil": 10 of 10 -> 1.0; "salt": 3 humans -> 7 * min(1, 3/3) + 3 * min(1, 2/3) = 9/10 -> 0.9.
    out = write_vizwiz({names[0]: "Basil.", names[1]: "salt"}, tmp_path / "val.json", tmp_path / "upload.json")
    assert [r["image"] for r in json.loads(out.read_text())] == names
    assert _score("vizwiz", out, tmp_path / "val.json")["accuracy"] == pytest.approx(95.0)
    with pytest.raises(DataError, match="VizWiz_val_00000001.jpg"):
        write_vizwiz({names[0]: "basil"}, tmp_path / "val.json", tmp_path / "upload2.json")


def test_gqa_writer_needs_every_balanced_question_and_keeps_unbalanced_answers(tmp_path: Path) -> None:
    def q(answer: str, balanced: bool, structural: str, semantic: str) -> dict[str, Any]:
        return {"imageId": "n1", "question": "?", "answer": answer, "isBalanced": balanced,
                "types": {"structural": structural, "semantic": semantic, "detailed": "x"}}

    questions = {"201": q("yes", True, "verify", "attr"), "202": q("table", True, "query", "obj"),
                 "203": q("left", False, "query", "rel")}
    write_json(tmp_path / "testdev_balanced_questions.json", questions)
    refs = tmp_path / "testdev_balanced_questions.json"
    # "Yes." -> rstrip('.').lower() -> "yes" right; "chair" wrong -> 50%; 203 is unbalanced: written, not scored.
    out = write_gqa({201: "Yes.", "202": "chair", "203": "left"}, refs, tmp_path / "gqa.json")
    assert [r["questionId"] for r in json.loads(out.read_text())] == ["201", "202", "203"]
    assert _score("gqa", out, questions=refs)["accuracy"] == pytest.approx(50.0)
    write_gqa({"201": "yes", "202": "table"}, refs, tmp_path / "gqa_balanced_only.json")  # 203 may be left out
    with pytest.raises(DataError, match="missing answers for 1 of 2 ids: 202"):
        write_gqa({"201": "yes", "203": "left"}, refs, tmp_path / "gqa3.json")


# -------------------------------------------------------------------------------------------------------- POPE / MME


@pytest.fixture
def pope_annotations(tmp_path: Path) -> Path:
    """Two official split files, ids restarting at 1 in each; labels yes, no in both."""
    folder = tmp_path / "coco"
    for split in ("adversarial", "random"):
        write_jsonl(folder / f"coco_pope_{split}.json", [
            {"question_id": 1, "image": "a.jpg", "text": "Is there a dog in the image?", "label": "yes"},
            {"question_id": 2, "image": "b.jpg", "text": "Is there a cat in the image?", "label": "no"},
        ])
    return folder


def test_pope_writer_writes_one_file_per_split_and_scores_the_split_mean(
    pope_annotations: Path, tmp_path: Path
) -> None:
    answers = {("adversarial", 1): "Yes, there is.", ("adversarial", 2): "No.",  # both right: 100
               ("random", 1): "No", ("random", "2"): "No"}  # one right: accuracy 50, no "yes" -> precision 0
    out = write_pope(answers, pope_annotations, tmp_path / "pope_answers")
    assert sorted(p.name for p in out.iterdir()) == ["adversarial.jsonl", "random.jsonl"]
    assert [json.loads(x) for x in (out / "random.jsonl").read_text().splitlines()] == [
        {"question_id": 1, "text": "No"}, {"question_id": 2, "text": "No"}]
    metrics = _score("pope", out, pope_annotations)
    assert metrics["accuracy_adversarial"] == pytest.approx(100.0)
    assert metrics["accuracy_random"] == pytest.approx(50.0)
    assert metrics["accuracy"] == pytest.approx(75.0)
    assert metrics["yes_ratio"] == pytest.approx(25.0)  # (1/2 + 0/2) / 2 of the MODEL's answers are yes


def test_pope_writer_names_the_missing_split_and_id(pope_annotations: Path, tmp_path: Path) -> None:
    answers = {("adversarial", 1): "yes", ("adversarial", 2): "no", ("random", 1): "no"}
    with pytest.raises(DataError) as excinfo:
        write_pope(answers, pope_annotations, tmp_path / "out")
    assert "missing answers for 1 of 4 ids: ('random', 2)" in _one_line_error(excinfo)
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataError, match="2 splits need \\(split, question_id\\) keys"):
        write_pope({1: "yes", 2: "no"}, pope_annotations, tmp_path / "out")


def test_pope_writer_takes_bare_ids_for_a_single_split_file(pope_annotations: Path, tmp_path: Path) -> None:
    one = pope_annotations / "coco_pope_random.json"
    out = write_pope({1: "no", "2": "No"}, one, tmp_path / "one")  # labels yes, no -> accuracy 50
    assert [p.name for p in out.iterdir()] == ["random.jsonl"]
    assert _score("pope", out, one)["accuracy_random"] == pytest.approx(50.0)


def test_pope_writer_refuses_a_non_empty_folder_unless_overwrite(pope_annotations: Path, tmp_path: Path) -> None:
    answers = {(s, i): "yes" for s in ("adversarial", "random") for i in (1, 2)}
    out = tmp_path / "out"
    out.mkdir()
    (out / "popular.jsonl").write_text("stale\n")
    with pytest.raises(DataError, match="not empty"):
        write_pope(answers, pope_annotations, out)
    write_pope(answers, pope_annotations, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["adversarial.jsonl", "random.jsonl"]  # stale file gone


def test_mme_writer_appends_answers_to_the_templates_and_scores_known_points(tmp_path: Path) -> None:
    q_train, q_car = "Is there a train in this image? Please answer yes or no.", "Is there a car in this image? " \
        "Please answer yes or no."
    templates = tmp_path / "Your_Results"
    templates.mkdir()
    (templates / "existence.txt").write_text(
        f"1.jpg\t{q_train}\tYes\n1.jpg\t{q_car}\tNo\n2.jpg\t{q_train}\tNo\n2.jpg\t{q_car}\tYes\n")
    answers = {("existence", "1.jpg", q_train): "Yes\tit is",  # tab -> space; first 4 chars "yes " -> yes, right
               ("existence", "1.jpg", q_car): "No",  # right
               ("existence", "2.jpg", q_train): "No",  # right
               ("existence", "2.jpg", q_car): "No"}  # wrong
    out = write_mme(answers, templates, tmp_path / "results", subtasks=["existence"])
    assert (out / "existence.txt").read_text().splitlines()[0] == f"1.jpg\t{q_train}\tYes\tYes it is"
    # acc = 3/4 = 75, acc+ = 1/2 images with both right = 50 -> existence = 125 points = perception (one subtask).
    metrics = _score("mme", out, templates, subtasks=["existence"])
    assert metrics["existence"] == pytest.approx(125.0)
    assert metrics["perception"] == pytest.approx(125.0)
    del answers[("existence", "2.jpg", q_car)]
    with pytest.raises(DataError, match="missing answers for 1 of 4 ids: \\('existence', '2.jpg', 'Is there a car"):
        write_mme(answers, templates, tmp_path / "results2", subtasks=["existence"])
    with pytest.raises(DataError, match="missing template files count.txt"):
        write_mme(answers, templates, tmp_path / "results3", subtasks=["existence", "count"])


# ------------------------------------------------------------------------------------------- SEED / MMBench / MMMU


def test_seed_writer_image_only_and_scored_with_first_character_rule(tmp_path: Path) -> None:
    def q(qid: str, answer: str, data_type: str) -> dict[str, Any]:
        return {"question_id": qid, "question": "?", "choice_a": "a", "choice_b": "b", "choice_c": "c",
                "choice_d": "d", "answer": answer, "data_id": "x", "data_type": data_type, "question_type_id": 1}

    refs = tmp_path / "SEED-Bench.json"
    write_json(refs, {"questions": [q("101", "A", "image"), q("102", "B", "image"), q("v1", "C", "video")],
                      "question_type": {"Scene Understanding": 1}})
    # "a) a cat": first character a -> A right; "C" wrong -> 50%. The video question need not be answered.
    out = write_seed({101: "a) a cat", "102": "C"}, refs, tmp_path / "seed.jsonl", data_type="image")
    assert [json.loads(x) for x in out.read_text().splitlines()] == [
        {"prediction": "a) a cat", "question_id": "101"}, {"prediction": "C", "question_id": "102"}]
    assert _score("seed", out, refs, data_type="image")["accuracy"] == pytest.approx(50.0)
    with pytest.raises(DataError, match="missing answers for 1 of 3 ids: v1"):
        write_seed({101: "A", 102: "B"}, refs, tmp_path / "seed_all.jsonl")


def test_mmbench_writer_needs_every_circular_row(tmp_path: Path) -> None:
    # Question 5 (answer A) and its circular copy 1000005 (options rotated: answer B); question 6, no copy.
    tsv = ("index\tquestion\thint\tA\tB\tanswer\tcategory\tl2-category\n"
           "5\tWhich?\t\tcat\tdog\tA\tattribute_recognition\tcoarse_perception\n"
           "1000005\tWhich?\t\tdog\tcat\tB\tattribute_recognition\tcoarse_perception\n"
           "6\tWhich?\t\tcat\tdog\tB\tattribute_recognition\tcoarse_perception\n")
    (tmp_path / "MMBench_DEV_EN.tsv").write_text(tsv)
    refs = tmp_path / "MMBench_DEV_EN.tsv"
    # 5 right in both passes -> right; 6 answered A -> wrong: circular accuracy 50%.
    out = write_mmbench({5: "A", 1000005: "(B)", "6": "A"}, refs, tmp_path / "mmb.jsonl")
    assert [json.loads(x)["index"] for x in out.read_text().splitlines()] == [5, 1000005, 6]
    assert _score("mmbench", out, refs)["accuracy"] == pytest.approx(50.0)
    with pytest.raises(DataError, match="ids: 1000005"):
        write_mmbench({5: "A", 6: "B"}, refs, tmp_path / "mmb2.jsonl")


def test_mmmu_writer_keeps_raw_outputs_for_the_official_parser(tmp_path: Path) -> None:
    refs = tmp_path / "mmmu_validation.json"
    write_json(refs, [
        {"id": "validation_Art_1", "question_type": "multiple-choice", "options": "['red', 'blue']", "answer": "A"},
        {"id": "validation_Art_2", "question_type": "multiple-choice", "options": "['red', 'blue']", "answer": "B"},
    ])
    # "(A)" -> A right; "(A) red" -> A, wrong (answer B) -> 50%.
    out = write_mmmu({"validation_Art_1": "(A)", "validation_Art_2": "(A) red"}, refs, tmp_path / "mmmu.jsonl")
    assert _score("mmmu", out, refs)["accuracy"] == pytest.approx(50.0)
    with pytest.raises(DataError, match="validation_Art_2"):
        write_mmmu({"validation_Art_1": "A"}, refs, tmp_path / "mmmu2.jsonl")


# ------------------------------------------------------------------------------------------------- captions / MM-Vet


def test_caption_writer_uses_the_reference_id_type_and_exact_captions_score_cider_1000(tmp_path: Path) -> None:
    refs = tmp_path / "captions_val2014.json"
    write_json(refs, {"images": [{"id": 1}, {"id": 2}], "annotations": [
        {"image_id": 1, "id": 11, "caption": "a cat sits down"},
        {"image_id": 2, "id": 12, "caption": "the dog runs fast"}]})
    out = write_captions({"1": "a cat sits down", 2: "the dog runs fast"}, refs, tmp_path / "captions.json")
    assert [r["image_id"] for r in json.loads(out.read_text())] == [1, 2]  # integers, as COCO.loadRes needs
    # A caption equal to the single reference: CIDEr-D 10 per image (x100 -> 1000), BLEU-4 100.
    metrics = _score("cider", out, refs)
    assert metrics["cider"] == pytest.approx(1000.0, abs=1e-6)
    assert metrics["bleu4"] == pytest.approx(100.0, abs=1e-6)


def test_mmvet_writer_maps_llava_integer_ids_to_v1_names(tmp_path: Path) -> None:
    refs = tmp_path / "mm-vet.json"
    entry = {"imagename": "v1_0.png", "capability": ["rec"], "question": "?", "answer": "x"}
    write_json(refs, {"v1_0": entry, "v1_1": {**entry, "capability": ["ocr"]}})
    out = write_mmvet({0: "a cat", "v1_1": "a dog"}, refs, tmp_path / "results.json")
    assert json.loads(out.read_text()) == {"v1_0": "a cat", "v1_1": "a dog"}
    write_json(tmp_path / "grades.json", {"v1_0": 1.0, "v1_1": 0.0})
    metrics = _score("mmvet", out, refs, grader="precomputed", grader_file=str(tmp_path / "grades.json"))
    assert (metrics["score"], metrics["rec"], metrics["ocr"]) == pytest.approx((50.0, 100.0, 0.0))
    with pytest.raises(DataError, match="missing answers for 1 of 2 ids: v1_1"):
        write_mmvet({0: "a cat"}, refs, tmp_path / "results2.json")


# ------------------------------------------------------------------------------------------------------------ masks


def test_mask_writer_encodes_rle_and_scores_known_ciou_giou(tmp_path: Path) -> None:
    target = np.zeros((4, 4), dtype=bool)
    target[:2, :2] = True  # 4 pixels
    refs = tmp_path / "refs.json"
    write_json(refs, [{"id": "a", "segmentation": encode(target)}, {"id": 7, "segmentation": encode(target)}])
    half = np.zeros((4, 4), dtype=np.uint8)
    half[0, :2] = 1  # 2 of the 4 target pixels
    out = write_masks({"a": target, "7": half}, refs, tmp_path / "masks.json")
    rows = json.loads(out.read_text())
    assert [r["id"] for r in rows] == ["a", 7] and isinstance(rows[0]["segmentation"]["counts"], str)
    # a: I 4, U 4; 7: I 2, U 4. cIoU = 6/8 = 75%. LISA's per-sample IoU is I / (U + 1e-5), so
    # gIoU = (4/(4 + 1e-5) + 2/(4 + 1e-5)) / (2 + 1e-5) * 100 = 74.99944 (not 75).
    metrics = _score("refcoco", out, refs)
    assert metrics["ciou"] == pytest.approx(75.0, abs=1e-6)
    assert metrics["giou"] == pytest.approx(600.0 / (4 + 1e-5) / (2 + 1e-5), abs=1e-9)


def test_mask_writer_refuses_wrong_sizes_and_probability_maps(tmp_path: Path) -> None:
    refs = tmp_path / "refs.json"
    write_json(refs, [{"id": "a", "segmentation": encode(np.ones((4, 4)))}])
    with pytest.raises(DataError, match="masks differ in size from their reference: 'a' 4x5 vs 4x4"):
        write_masks({"a": np.ones((4, 5), dtype=bool)}, refs, tmp_path / "m.json")
    with pytest.raises(DataError, match="not 2-D binary"):
        write_masks({"a": np.full((4, 4), 0.7)}, refs, tmp_path / "m.json")
    with pytest.raises(DataError, match="missing answers for 1 of 1 ids: a"):
        write_masks({}, refs, tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


# ----------------------------------------------------------------------------------------------------------- images


def test_generated_images_are_lossless_pngs_named_by_genai_bench_prompt_id(tmp_path: Path) -> None:
    refs = tmp_path / "genai_image.json"
    write_json(refs, {"00000": {"prompt": "a red cube"}, "00001": {"prompt": "a blue ball"}})
    write_json(tmp_path / "genai_skills.json", {"basic": [0, 1], "attribute": [0]})
    pixels = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    images = {"00000": Image.fromarray(pixels), "00001": pixels}
    out = write_generated_images(images, tmp_path / "gen", ids=genai_bench_ids(refs))
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png"]
    assert np.array_equal(np.asarray(Image.open(out / "00001.png")), pixels)  # PNG: exact pixels
    write_json(tmp_path / "vqascores.json", {"00000": 1.0, "00001": 0.5})
    metrics = _score("genai_bench", out, refs, grader="precomputed", grader_file=str(tmp_path / "vqascores.json"))
    assert metrics["vqascore"] == pytest.approx(0.75) and metrics["attribute"] == pytest.approx(1.0)
    with pytest.raises(DataError, match="missing answers for 1 of 2 ids: 00001"):
        write_generated_images({"00000": pixels}, tmp_path / "gen2", ids=genai_bench_ids(refs))
    with pytest.raises(DataError, match="unusable as file names"):
        write_generated_images({"../x": pixels}, tmp_path / "gen3")


def test_edited_images_mirror_target_paths_and_score_known_l1(tmp_path: Path) -> None:
    targets = tmp_path / "targets"
    (targets / "139").mkdir(parents=True)
    black = np.zeros((4, 4, 3), dtype=np.uint8)
    Image.fromarray(black).save(targets / "139" / "139-output1.png")
    Image.fromarray(black).save(targets / "140.png")
    # Identical image: L1 0; all-white vs black: |1 - 0| = 1 per pixel -> L1 = L2 = 1. Means: 0.5.
    edited = {"139/139-output1": black, "140.png": Image.fromarray(black + 255)}
    out = write_edited_images(edited, targets, tmp_path / "generated")
    assert (out / "139" / "139-output1.png").is_file() and (out / "140.png").is_file()
    metrics = _score("magicbrush", out, targets, metrics="l1,l2")
    assert metrics["l1"] == pytest.approx(0.5) and metrics["l2"] == pytest.approx(0.5)
    with pytest.raises(DataError, match="missing answers for 1 of 2 ids: 140.png"):
        write_edited_images({"139/139-output1.png": black}, targets, tmp_path / "generated2")
