"""The full prompt the reference checkpoint reads, per benchmark, against hand-written strings and lmms-eval.

For every benchmark of the ``llava15_7b`` variant the first query of the CI fixture is built by the task builder
(the same one SeTokIM uses) and the reference predictor's prompt must equal, character for character, LLaVA-1.5's
evaluation prompt written out by hand: the vicuna_v1 system message, ``" USER: <image>\\n"``, the question with the
benchmark's LLaVA-1.5 instruction, ``" ASSISTANT:"`` (haotian-liu/LLaVA llava/conversation.py conv_vicuna_v1,
llava/eval/model_vqa_loader.py).

The independent source is the installed lmms-eval (0.7.3): its task yaml's ``lmms_eval_specific_kwargs.default``
where it defines the instruction there, else its ``doc_to_text`` function, run on the fixture's raw record after
being compiled from the installed ``utils.py`` source (importing lmms-eval's task modules takes ~20 s). Where
LLaVA-1.5 and lmms-eval disagree the task builders follow LLaVA-1.5, and the test pins the disagreement:

* MM-Vet: lmms-eval 0.7.3 puts "First please perform reasoning, and think step by step ..." before the question;
  LLaVA-1.5 (llava-mm-vet.jsonl, model_vqa.py) asks the bare question.
* OK-VQA: lmms-eval's post_prompt is VizWiz's ("When the provided information is insufficient, respond with
  'Unanswerable'." first); LLaVA-1.5 has no OK-VQA script and trains OK-VQA in LLaVA-665K with the short-answer
  instruction, which the task builder uses.
* MMBench: lmms-eval joins hint, question and "There are several options:" + options with spaces; LLaVA-1.5's
  model_vqa_mmbench.py joins hint, question and each option with newlines. Both end with the same instruction.
* VizWiz: lmms-eval capitalises the question's first letter (``str.capitalize``); LLaVA-1.5's llava_test.jsonl keeps
  the question as written. The fixture's questions start with a capital, so the strings agree here.
"""
from __future__ import annotations

import ast
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from reference_helpers import reference_config

from evaluation.predict.reference.conversation import llava_prompt
from evaluation.tasks import Query, build_task
from setok.io import read_json, read_jsonl

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")
SHORT = "\nAnswer the question using a single word or phrase."
LETTER = "\nAnswer with the option's letter from the given choices directly."
# benchmark -> the first fixture query's question with its LLaVA-1.5 instruction, written out by hand
QUESTIONS = {
    "vqav2": "What animal is in the picture?" + SHORT,
    "gqa": "What vehicle is in front of the shelves?" + SHORT,
    "vizwiz": "What is in this cup?\nWhen the provided information is insufficient, respond with 'Unanswerable'."
              + SHORT,
    "okvqa": "Which country does the flag behind her belong to?" + SHORT,
    "pope": "Is there a cat in the image?" + SHORT,
    "mme": "Is there a cat in this image?" + SHORT,  # the template's "Please answer yes or no." replaced
    "mmvet": "What is on the saucer besides the cup?",
    "seed": "Where was this photo most likely taken?\nA. At a rocket launch site\nB. In a kitchen\nC. In a forest\n"
            "D. On a beach" + LETTER,
    "mmbench": "What animal is shown in the picture?\nA. cat\nB. dog\nC. horse\nD. rabbit" + LETTER,
    "mmmu": "Which kind of building is shown in <image 1>?\nA. A pagoda\nB. A cathedral\nC. A lighthouse\n"
            "D. A windmill\n\nAnswer with the option's letter from the given choices directly.",
    "flickr30k": "Provide a one-sentence caption for the provided image.",
}


@pytest.fixture(scope="module")
def first() -> dict[str, Query]:
    cfg = reference_config()
    assert sorted(cfg.mllm_benchmarks) == sorted(QUESTIONS)
    return {name: build_task(name, cfg.benchmarks[name]).queries()[0] for name in QUESTIONS}


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_the_full_prompt_is_llava15s(name: str, first: dict[str, Query]) -> None:
    q = first[name]
    assert q.image is not None
    assert llava_prompt(q.prompt, image=True) == f"{SYSTEM} USER: <image>\n{QUESTIONS[name]} ASSISTANT:"


def test_an_mmbench_hint_and_three_options_go_on_their_own_lines() -> None:
    """LLaVA's model_vqa_mmbench.py: hint + "\\n" + question, then "\\n<letter>. <option>" up to the first empty."""
    cfg = reference_config()
    q = next(q for q in build_task("mmbench", cfg.benchmarks["mmbench"]).queries() if q.id == 1)
    assert llava_prompt(q.prompt, image=True) == (
        f"{SYSTEM} USER: <image>\nThe photo was taken at a launch site.\nWhich vehicle is about to take off?\n"
        f"A. airplane\nB. rocket\nC. balloon{LETTER} ASSISTANT:")


def test_a_text_only_prompt_has_no_image_line() -> None:
    assert llava_prompt("Hi?", image=False) == f"{SYSTEM} USER: Hi? ASSISTANT:"


# --------------------------------------------------------------------------------------------- lmms-eval


def lmms_tasks() -> Path:
    spec = importlib.util.find_spec("lmms_eval")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("lmms-eval is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


class TaskYamlLoader(yaml.SafeLoader):
    """lmms-eval's task yaml: ``!function module.name`` tags read as their text."""


TaskYamlLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def default_kwargs(path: str) -> dict[str, Any]:
    """``lmms_eval_specific_kwargs.default`` of ``lmms_eval/tasks/<path>``."""
    data = yaml.load((lmms_tasks() / path).read_text(), Loader=TaskYamlLoader)
    return data["lmms_eval_specific_kwargs"]["default"]


def lmms_function(path: str, name: str, *helpers: str) -> Callable[..., str]:
    """Function ``name`` of ``lmms_eval/tasks/<path>``, compiled from its source with the module-level ``helpers``
    (functions or assignments) it reads, without importing the module."""
    tree = ast.parse((lmms_tasks() / path).read_text())
    wanted = {name, *helpers}
    nodes = [n for n in tree.body
             if (isinstance(n, ast.FunctionDef) and n.name in wanted)
             or (isinstance(n, ast.Assign) and any(getattr(t, "id", None) in wanted for t in n.targets))]
    namespace: dict[str, Any] = {"ast": ast}
    exec(compile(ast.Module(body=nodes, type_ignores=[]), path, "exec"), namespace)  # noqa: S102
    return namespace[name]


def raw_record(name: str, q: Query) -> dict[str, Any]:
    """The fixture's own record of ``q``, in the fields lmms-eval's doc_to_text reads."""
    b = reference_config().benchmarks[name]
    if name in ("vqav2", "okvqa"):
        return next(r for r in read_json(b.questions)["questions"] if r["question_id"] == q.id)
    if name == "gqa":
        return read_json(b.questions)[q.id]
    if name == "vizwiz":
        return next(r for r in read_json(b.annotations) if r["image"] == q.id)
    if name == "pope":
        rows = read_jsonl(Path(b.annotations) / f"coco_pope_{q.id[0]}.json")
        return {"question": next(r["text"] for r in rows if r["question_id"] == q.id[1])}
    if name == "mme":
        return {"question": q.id[2]}
    if name == "seed":
        return next(r for r in read_json(b.annotations)["questions"] if r["question_id"] == q.id)
    if name == "mmmu":
        return next(r for r in read_json(b.annotations) if r["id"] == q.id)
    return {}


# benchmark -> (utils.py, doc_to_text function, its module-level helpers, yaml holding its default kwargs or None)
DOC_TO_TEXT = {
    "vqav2": ("vqav2/utils.py", "vqav2_doc_to_text", (), "vqav2/_default_template_vqav2_yaml"),
    "gqa": ("gqa/utils.py", "gqa_doc_to_text", (), "gqa/gqa.yaml"),
    "vizwiz": ("vizwiz_vqa/utils.py", "vizwiz_vqa_doc_to_text", (), "vizwiz_vqa/_default_template_vqa_yaml"),
    "pope": ("pope/utils.py", "pope_doc_to_text", (), "pope/pope.yaml"),
    "mme": ("mme/utils.py", "mme_doc_to_text", ("replace_prompt",), "mme/mme.yaml"),
    "seed": ("seedbench/utils.py", "seed_doc_to_text", (), None),
    "flickr30k": ("flickr30k/utils.py", "flickr_doc_to_text", (), None),
}


@pytest.mark.parametrize("name", sorted(DOC_TO_TEXT))
def test_lmms_evals_doc_to_text_gives_our_question(name: str, first: dict[str, Query]) -> None:
    path, func, helpers, kwargs_yaml = DOC_TO_TEXT[name]
    doc_to_text = lmms_function(path, func, *helpers)
    doc = raw_record(name, first[name])
    text = doc_to_text(doc) if kwargs_yaml is None else doc_to_text(doc, default_kwargs(kwargs_yaml))
    assert text == first[name].prompt == QUESTIONS[name]


def test_lmms_evals_mmmu_prompt_is_ours(first: dict[str, Query]) -> None:
    kwargs = default_kwargs("mmmu/mmmu_val.yaml")
    construct = lmms_function("mmmu/utils.py", "construct_prompt", "parse_options")
    text = construct(raw_record("mmmu", first["mmmu"]), kwargs["multiple_choice_prompt"], kwargs["open_ended_prompt"],
                     kwargs["prompt_type"])
    assert text == first["mmmu"].prompt == QUESTIONS["mmmu"]
    assert yaml.safe_load((lmms_tasks() / "mmmu/_default_template_yaml").read_text())["metadata"][
        "interleaved_format"] is False  # "<image 1>" stays text, as in our prompt


def test_lmms_evals_instructions_are_ours_where_the_prompt_differs(first: dict[str, Query]) -> None:
    mmbench = default_kwargs("mmbench/_default_template_mmbench_en_yaml")
    assert mmbench["post_prompt"] == LETTER and first["mmbench"].prompt.endswith(LETTER)
    assert first["mmbench"].prompt.count("\n") == 5  # LLaVA's lines, not lmms-eval's "There are several options:"
    okvqa = default_kwargs("ok_vqa/_default_template_vqa_yaml")["post_prompt"]
    assert okvqa == default_kwargs("vizwiz_vqa/_default_template_vqa_yaml")["post_prompt"] != SHORT
    assert first["okvqa"].prompt.endswith(SHORT) and "Unanswerable" not in first["okvqa"].prompt
    mmvet = default_kwargs("mmvet/mmvet.yaml")
    assert mmvet["pre_prompt"].startswith("First please perform reasoning") and mmvet["post_prompt"] == ""
    assert first["mmvet"].prompt == QUESTIONS["mmvet"]  # the bare question, as LLaVA-1.5 asks it


def test_lmms_evals_vizwiz_capitalises_the_question() -> None:
    doc_to_text = lmms_function("vizwiz_vqa/utils.py", "vizwiz_vqa_doc_to_text")
    kwargs = default_kwargs("vizwiz_vqa/_default_template_vqa_yaml")
    assert doc_to_text({"question": "what is this?"}, kwargs).startswith("What is this?\n")
