"""The lmms-eval bridge: setok_harness + the shipped local-dataset tasks, run end to end offline with a fake Answerer.

One lmms-eval run (module fixture) answers tiny POPE / MME / VQAv2 / GQA datasets saved with ``save_to_disk``; the
logged answers are then written with our writers and scored with our scorers, and both sets of numbers are compared
on hand-computed values: where they agree and where lmms-eval's metric differs from the official one.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from evaluation.registry import get
from setok.io import DataError, write_json, write_jsonl

datasets = pytest.importorskip("datasets")
pytest.importorskip("lmms_eval")

POST = "\nAnswer the question using a single word or phrase."  # post_prompt of every shipped task
Q_TRAIN = "Is there a train in this image? Please answer yes or no."
Q_CAR = "Is there a car in this image? Please answer yes or no."

# Each document's image is a solid colour (k, 0, 0); the fake answers document k with ANSWERS[k].
POPE_DOCS = [("1", "yes", "Yes"), ("2", "no", "yes\n\nBecause I see one."), ("3", "yes", " Yes"), ("4", "no", "No")]
MME_DOCS = [("existence/1.jpg", Q_TRAIN, "Yes", "Yes"), ("existence/1.jpg", Q_CAR, "No", "No"),
            ("existence/2.jpg", Q_TRAIN, "No", "No"), ("existence/2.jpg", Q_CAR, "Yes", "No")]
VQA_DOCS = [(1, ["2"] * 10, "number", "Two"), (2, ["red"] * 2 + ["blue"] * 8, "other", "Red."),
            (3, ["t-shirt"] * 10, "other", "t-shirt")]
GQA_DOCS = [("201", "yes", "Yes."), ("202", "table", "the table"), ("203", "left", "Left!")]
ANSWERS = [d[2] for d in POPE_DOCS] + [d[3] for d in MME_DOCS] + [d[3] for d in VQA_DOCS] + [d[2] for d in GQA_DOCS]

FAKE_MODULE = '''
"""A deterministic Answerer: the answer is chosen by the red value of the image (the document number)."""
ANSWERS = {answers!r}
CALLS = []


class FakeAnswerer:
    def __init__(self, prefix=""):
        self.prefix = prefix

    def answer(self, images, prompts, max_new_tokens):
        CALLS.append([(im.getpixel((0, 0))[0], im.size, p, max_new_tokens) for im, p in zip(images, prompts)])
        return [self.prefix + ANSWERS[im.getpixel((0, 0))[0]] for im in images]
'''


def _image(k: int) -> Image.Image:
    return Image.new("RGB", (8, 6), (k, 0, 0))


def _save(folder: Path, split: str, rows: dict[str, list[Any]], features: dict[str, Any]) -> Path:
    ds = datasets.Dataset.from_dict(rows, features=datasets.Features(features))
    datasets.DatasetDict({split: ds}).save_to_disk(str(folder))
    return folder


def _local_datasets(root: Path) -> dict[str, Path]:
    """The four tasks' local copies, with lmms-eval's column names (see the task YAMLs)."""
    v, img = datasets.Value, datasets.Image()
    k = iter(range(len(ANSWERS)))
    pope = _save(root / "pope", "test", {
        "question_id": [d[0] for d in POPE_DOCS], "question": ["Is there a dog in the image?"] * 4,
        "answer": [d[1] for d in POPE_DOCS], "category": ["random"] * 4, "image": [_image(next(k)) for _ in POPE_DOCS],
    }, {"question_id": v("string"), "question": v("string"), "answer": v("string"), "category": v("string"),
        "image": img})
    mme = _save(root / "mme", "test", {
        "question_id": [d[0] for d in MME_DOCS], "question": [d[1] for d in MME_DOCS],
        "answer": [d[2] for d in MME_DOCS], "category": ["existence"] * 4, "image": [_image(next(k)) for _ in MME_DOCS],
    }, {"question_id": v("string"), "question": v("string"), "answer": v("string"), "category": v("string"),
        "image": img})
    answer_feature = [{"answer": v("string"), "answer_confidence": v("string"), "answer_id": v("int64")}]
    vqa = _save(root / "vqav2_val", "validation", {
        "question_id": [d[0] for d in VQA_DOCS], "question": ["What?"] * 3,
        "answers": [[{"answer": a, "answer_confidence": "yes", "answer_id": n + 1} for n, a in enumerate(d[1])]
                    for d in VQA_DOCS],
        "answer_type": [d[2] for d in VQA_DOCS], "image": [_image(next(k)) for _ in VQA_DOCS],
    }, {"question_id": v("int64"), "question": v("string"), "answers": answer_feature, "answer_type": v("string"),
        "image": img})
    gqa = _save(root / "gqa", "testdev", {
        "id": [d[0] for d in GQA_DOCS], "imageId": ["n1"] * 3, "question": ["Where?"] * 3,
        "answer": [d[1] for d in GQA_DOCS], "image": [_image(next(k)) for _ in GQA_DOCS],
    }, {"id": v("string"), "imageId": v("string"), "question": v("string"), "answer": v("string"), "image": img})
    return {"setok_pope": pope, "setok_mme": mme, "setok_vqav2_val": vqa, "setok_gqa": gqa}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Any, Path]]:
    """One lmms-eval run of setok_harness (built from a model_args string) on all four shipped tasks."""
    from evaluation.lmms.run import evaluate

    root = tmp_path_factory.mktemp("lmms")
    (root / "fake_answerer_mod.py").write_text(textwrap.dedent(FAKE_MODULE.format(answers=ANSWERS)))
    sys.path.insert(0, str(root))
    try:
        import fake_answerer_mod

        results = evaluate("setok_harness", _local_datasets(root), model_args="answerer=fake_answerer_mod:FakeAnswerer",
                           batch_size=2)
        yield results, fake_answerer_mod, root
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("fake_answerer_mod", None)


def test_setok_harness_is_registered_where_simple_evaluate_looks() -> None:
    from lmms_eval.api.registry import MODEL_REGISTRY
    from lmms_eval.models import get_model

    from evaluation.lmms.model import SetokHarness

    assert get_model("setok_harness") is SetokHarness
    assert MODEL_REGISTRY["setok_harness"] is SetokHarness  # the legacy decorator's registry too


def test_shipped_task_yamls_are_indexed_alone_and_read_local_copies() -> None:
    from lmms_eval.utils import load_yaml_config

    from evaluation.lmms import TASKS_DIR
    from evaluation.lmms.run import TASKS, task_manager

    assert set(task_manager().all_tasks) == set(TASKS)  # lmms-eval's built-in tasks are not indexed
    for name, spec in TASKS.items():
        config = load_yaml_config(str(TASKS_DIR / f"{name}.yaml"), mode="simple")
        assert config["dataset_kwargs"] == {"load_from_disk": True}
        assert config["dataset_path"].startswith("data/lmms/") and config["test_split"] == spec.split


def test_bridge_passes_prompt_image_and_max_new_tokens_and_returns_the_answers(run: tuple) -> None:
    from evaluation.lmms.run import logged_answers

    results, fake, _ = run
    calls = [c for batch in fake.CALLS for c in batch]
    assert len(calls) == len(ANSWERS) and max(len(b) for b in fake.CALLS) == 2  # batch_size=2
    by_doc = {k: (size, prompt, max_new) for k, size, prompt, max_new in calls}
    assert by_doc[0] == ((8, 6), "Is there a dog in the image?" + POST, 128)  # POPE: max_new_tokens 128
    # MME: lmms-eval drops " Please answer yes or no." when a post_prompt is set; max_new_tokens 16.
    assert by_doc[4] == ((8, 6), "Is there a train in this image?" + POST, 16)
    assert logged_answers("setok_pope", results["samples"]["setok_pope"]) == {
        ("random", "1"): "Yes", ("random", "2"): "yes", ("random", "3"): " Yes", ("random", "4"): "No"}
    assert logged_answers("setok_gqa", results["samples"]["setok_gqa"]) == {
        "201": "Yes.", "202": "the table", "203": "Left!"}  # the until "\n\n" cut only the POPE answer 2


def test_samples_saved_by_the_cli_get_their_documents_back_from_the_local_dataset(run: tuple) -> None:
    from evaluation.lmms.run import load_logged_samples, logged_answers

    results, _, root = run
    # lmms-eval's --log_samples file keeps doc_id and a string filtered_resps but drops the doc.
    saved = [{"doc_id": s["doc_id"], "filtered_resps": s["filtered_resps"][0]} for s in results["samples"]["setok_mme"]]
    write_jsonl(root / "samples_setok_mme.jsonl", saved)
    restored = load_logged_samples("setok_mme", root / "samples_setok_mme.jsonl", root / "mme")
    assert logged_answers("setok_mme", restored) == {
        ("existence", "1.jpg", Q_TRAIN): "Yes", ("existence", "1.jpg", Q_CAR): "No",
        ("existence", "2.jpg", Q_TRAIN): "No", ("existence", "2.jpg", Q_CAR): "No"}
    write_jsonl(root / "bad_samples.jsonl", [{"doc_id": 9, "filtered_resps": "Yes"}])
    with pytest.raises(DataError, match="doc_ids 9 are not rows of"):
        load_logged_samples("setok_mme", root / "bad_samples.jsonl", root / "mme")


def test_pope_accuracy_agrees_but_lmms_eval_yes_ratio_counts_reference_yeses(run: tuple) -> None:
    from evaluation.lmms.run import write_predictions

    results, _, root = run
    write_jsonl(root / "ref" / "coco_pope_random.json", [
        {"question_id": int(q), "image": f"{q}.jpg", "text": "Is there a dog in the image?", "label": label}
        for q, label, _ in POPE_DOCS])
    path, scorer = write_predictions("setok_pope", results, root / "ref" / "coco_pope_random.json", root / "pope_out")
    ours = get(scorer).score(path, root / "ref" / "coco_pope_random.json", n_bootstrap=0).metrics
    theirs = results["results"]["setok_pope"]
    # Labels yes, no, yes, no; answers yes, yes, yes, no -> right 3/4; TP 2, FP 1, FN 0.
    assert ours["accuracy"] == pytest.approx(75.0) == pytest.approx(100 * theirs["pope_accuracy,none"])
    assert ours["precision"] == pytest.approx(200 / 3) == pytest.approx(100 * theirs["pope_precision,none"])
    assert ours["recall"] == pytest.approx(100.0) == pytest.approx(100 * theirs["pope_recall,none"])
    assert ours["f1"] == pytest.approx(80.0) == pytest.approx(100 * theirs["pope_f1_score,none"])
    assert ours["yes_ratio"] == pytest.approx(75.0)  # 3 of the model's 4 answers are yes
    assert theirs["pope_yes_ratio,none"] == pytest.approx(0.5)  # 2 of the 4 REFERENCES are yes


def test_pope_sentence_answers_are_right_officially_but_wrong_in_lmms_eval() -> None:
    from lmms_eval.tasks.pope.utils import pope_aggregate_accuracy, pope_process_results

    from evaluation.metrics.pope import parse_pope_answer

    # Official POPE: text before the first ".", a word "No"/"no"/"not" -> no, else yes. lmms-eval: lower().strip()
    # must equal the label exactly.
    cases = [("No.", "no"), ("Yes, there is a dog.", "yes")]
    assert [parse_pope_answer(text) for text, _ in cases] == ["no", "yes"]
    items = [pope_process_results({"question_id": "1", "answer": label}, [text])["pope_accuracy"]
             for text, label in cases]
    assert pope_aggregate_accuracy(items) == 0.0


def test_mme_points_agree(run: tuple) -> None:
    from evaluation.lmms.run import write_predictions

    results, _, root = run
    templates = root / "Your_Results"
    templates.mkdir()
    lines = [f"{q_id.split('/')[1]}\t{q}\t{gt}\n" for q_id, q, gt, _ in MME_DOCS]  # 1.jpg<TAB>question<TAB>Yes
    (templates / "existence.txt").write_text("".join(lines))
    path, scorer = write_predictions("setok_mme", results, templates, root / "mme_out", subtasks=["existence"])
    ours = get(scorer).score(path, templates, n_bootstrap=0, subtasks=["existence"]).metrics
    # Image 1 both right (acc 100 + acc+ 100), image 2 one right (50 + 0): mean 125 points; existence is perception.
    assert ours["existence"] == pytest.approx(125.0)
    assert results["results"]["setok_mme"]["mme_perception_score,none"] == pytest.approx(ours["perception"])


def test_vqav2_agrees_except_unanimous_hyphenated_answers(run: tuple) -> None:
    from evaluation.lmms.run import write_predictions

    results, _, root = run
    anns = {"annotations": [
        {"question_id": q, "image_id": 1, "question_type": "what", "answer_type": t, "multiple_choice_answer": h[-1],
         "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": n + 1} for n, a in enumerate(h)]}
        for q, h, t, _ in VQA_DOCS]}
    write_json(root / "v2_annotations.json", anns)
    path, scorer = write_predictions("setok_vqav2_val", results, root / "v2_annotations.json", root / "vqa.json")
    rows = get(scorer).score(path, root / "v2_annotations.json", n_bootstrap=0).rows
    # "Two" -> "2" (10 humans): 1; "Red." -> "red" (2 humans): 0.6 -- both implementations.
    # "t-shirt" x10 is unanimous: vqaEval.py compares the unprocessed strings, and the EvalAI-processed prediction
    # "t shirt" matches none -> 0; lmms-eval processes the human answers too -> "t shirt" x10 -> 1.
    assert [r["accuracy"] for r in rows] == pytest.approx([1.0, 0.6, 0.0])
    assert results["results"]["setok_vqav2_val"]["exact_match,none"] == pytest.approx((1.0 + 0.6 + 1.0) / 3)


def test_gqa_lmms_eval_ignores_punctuation_the_official_conversion_does_not(run: tuple) -> None:
    from evaluation.lmms.run import write_predictions

    results, _, root = run
    questions = {q: {"imageId": "n1", "question": "Where?", "answer": a, "isBalanced": True,
                     "types": {"structural": "query", "semantic": "rel", "detailed": "x"}} for q, a, _ in GQA_DOCS}
    write_json(root / "testdev_balanced_questions.json", questions)
    path, scorer = write_predictions("setok_gqa", results, root / "testdev_balanced_questions.json", root / "gqa.json")
    rows = get(scorer).score(path, questions=root / "testdev_balanced_questions.json", n_bootstrap=0).rows
    # rstrip('.').lower(): "yes" right, "the table" wrong, "left!" wrong. lmms-eval also drops "!" -> "left" right.
    assert [r["correct"] for r in rows] == [1, 0, 0]
    assert results["results"]["setok_gqa"]["exact_match,none"] == pytest.approx(2 / 3)


def _request(doc_id: int, max_new: int, until: list[str] | None = None) -> Any:
    from lmms_eval.api.instance import Instance

    gen = {"max_new_tokens": max_new, **({"until": until} if until else {})}
    args = ("q", gen, lambda doc: [doc["image"]], doc_id, "t", "test")
    return Instance("generate_until", args, idx=0, metadata={"task": "t", "doc_id": doc_id, "repeats": 1})


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def answer(self, images: list[Image.Image], prompts: list[str], max_new_tokens: int) -> list[str]:
        self.calls.append((len(images), max_new_tokens))
        return [f"red {im.getpixel((0, 0))[0]}\n\nmore" for im in images]


def test_adapter_batches_by_max_new_tokens_keeps_order_and_cuts_at_until() -> None:
    from evaluation.lmms.model import SetokHarness

    recorder = _Recorder()
    model = SetokHarness(answerer=recorder, batch_size=2)
    model.task_dict = {"t": {"test": [{"image": _image(k)} for k in range(3)]}}
    out = model.generate_until([_request(0, 16, ["\n\n"]), _request(1, 8), _request(2, 16, ["\n\n"])])
    # Docs 0 and 2 share max_new_tokens 16 -> one call of 2; doc 1 alone. Answers come back in request order.
    assert recorder.calls == [(2, 16), (1, 8)]
    assert out == ["red 0", "red 1\n\nmore", "red 2"]


def test_adapter_rejects_documents_without_one_image_and_loglikelihood_tasks() -> None:
    from evaluation.lmms.model import SetokHarness

    model = SetokHarness(answerer=_Recorder())
    model.task_dict = {"t": {"test": [{"image": [_image(0), _image(1)]}]}}
    with pytest.raises(ValueError, match="doc 0 gives visuals \\(Image, Image\\); an Answerer takes exactly one"):
        model.generate_until([_request(0, 16)])
    with pytest.raises(NotImplementedError, match="generate_until tasks only"):
        model.loglikelihood([])


def test_answerer_spec_must_be_module_colon_attr() -> None:
    from evaluation.lmms.model import load_answerer

    with pytest.raises(ValueError, match="answerer must be 'module:attr'"):
        load_answerer("evaluation.lmms.model.Answerer")
    with pytest.raises(ValueError, match="takes no arguments"):
        load_answerer(_Recorder(), device="cpu")


def test_logged_answers_refuse_documents_sharing_an_id() -> None:
    from evaluation.lmms.run import logged_answers

    sample = {"doc": {"id": "201"}, "filtered_resps": ["yes"]}
    with pytest.raises(DataError, match="setok_gqa: 1 documents share an id: 201"):
        logged_answers("setok_gqa", [sample, sample])
