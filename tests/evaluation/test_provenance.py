"""Provenance in result JSON: precomputed grades, subsets and shortcuts are recorded (and so marked in every report);
a real judge on the full benchmark is recorded clean."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from PIL import Image

from evaluation.graders import OpenAIChatGrader, PrecomputedGrader
from evaluation.metrics.mme import SUBTASKS
from evaluation.provenance import (
    GRADES,
    SHORTCUT,
    SUBSET,
    Legend,
    Mark,
    Provenance,
    Subset,
    eval_set_provenance,
    marks,
    read_marks,
    read_provenance,
)
from evaluation.registry import score
from evaluation.results import RESULT_KEYS
from setok.config import load_config
from setok.io import DataError, read_json, write_json, write_jsonl

REPO = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((REPO / "config/ci.yaml").read_text(encoding="utf-8"))["benchmarks"]
Cli = Callable[..., subprocess.CompletedProcess[str]]


def option_flags(options: dict) -> list[str]:
    """A benchmark's configured options as the workflow passes them (common.smk ``benchmark_flags``)."""
    flags: list[str] = []
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        flags += [flag] if value is True else [flag, *map(str, value if isinstance(value, list) else [value])]
    return flags


def test_mmvet_on_the_ci_fixtures_with_its_grade_file_is_marked_whatever_it_answers(cli: Cli, tmp_path: Path) -> None:
    """The CI config scores MM-Vet from the oracle's grade file: every answer wrong still scores 100, so the result
    must say its grades were not judged from these predictions."""
    cfg = CI["mmvet"]
    assert cfg["options"]["grader"] == "precomputed"
    refs = read_json(REPO / cfg["annotations"])
    preds = tmp_path / "mmvet.json"
    write_json(preds, {k: "I do not know." for k in refs})
    out = tmp_path / "mmvet_result.json"
    p = cli("score", "mmvet", "--predictions", preds, "--annotations", cfg["annotations"], "--out", out,
            "--bootstrap", "0", *option_flags(cfg["options"]))
    assert p.returncode == 0, p.stderr
    result = json.loads(out.read_text())
    assert set(result) == set(RESULT_KEYS) and result["metrics"]["score"] == 100.0 and result["n"] == len(refs)
    assert result["provenance"] == {
        "grader": {"name": "precomputed", "model": None, "file": cfg["options"]["grader_file"],
                   "judges_predictions": False},
        "subset": [], "shortcuts": []}
    (mark,) = read_marks(out)
    assert mark.symbol == GRADES and "not judged from these predictions" in mark.text
    assert cfg["options"]["grader_file"] in mark.text
    assert f"{GRADES} precomputed grades" in p.stdout  # the score job's log says so too


def test_genai_bench_on_the_ci_fixtures_with_its_oracle_grades_is_marked(tmp_path: Path) -> None:
    cfg = CI["genai_bench"]
    prompts = read_json(REPO / cfg["annotations"])
    folder = tmp_path / "genai_bench"
    folder.mkdir()
    for i in prompts:
        Image.new("RGB", (8, 8), (0, 0, 0)).save(folder / f"{i}.jpeg")  # black squares: nothing was drawn
    result = score("genai_bench", folder, REPO / cfg["annotations"], n_bootstrap=0,
                   skills=REPO / Path(cfg["annotations"]).with_name("genai_skills.json"),
                   grader="precomputed", grader_file=str(REPO / cfg["options"]["grader_file"]))
    assert result.metrics["vqascore"] == pytest.approx(0.7)
    assert result.provenance.grader["judges_predictions"] is False
    assert [m.symbol for m in marks(result.provenance)] == [GRADES]


def mmvet_files(tmp_path: Path) -> tuple[Path, Path]:
    refs = {f"v1_{i}": {"imagename": f"v1_{i}.png", "capability": ["rec"], "question": "Q?", "answer": "A"}
            for i in range(3)}
    write_json(tmp_path / "mm-vet.json", refs)
    write_json(tmp_path / "answers.json", {k: "A" for k in refs})
    return tmp_path / "answers.json", tmp_path / "mm-vet.json"


def test_a_precomputed_grader_passed_as_an_object_is_marked_too(tmp_path: Path) -> None:
    preds, refs = mmvet_files(tmp_path)
    write_json(tmp_path / "grades.json", {"v1_0": 1.0, "v1_1": 0.5, "v1_2": 0.0})
    result = score("mmvet", preds, refs, grader=PrecomputedGrader(tmp_path / "grades.json"), n_bootstrap=0)
    assert result.provenance.grader["file"] == str(tmp_path / "grades.json")
    assert [m.symbol for m in marks(result.provenance)] == [GRADES]


def judge(reply: str, model: str) -> OpenAIChatGrader:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, json={"choices": [{"message": {"content": reply}}]}))
    return OpenAIChatGrader(model=model, transport=transport, sleep=lambda s: None)


def test_a_judge_that_reads_the_answers_is_recorded_unmarked_and_another_judge_model_is_a_shortcut(
        tmp_path: Path) -> None:
    preds, refs = mmvet_files(tmp_path)
    (tmp_path / "prompt.txt").write_text("Compare the answer with the ground truth.\n")
    official = score("mmvet", preds, refs, grader=judge("0.5", "gpt-4-0613"), judge_prompt=tmp_path / "prompt.txt",
                     n_bootstrap=0)
    assert official.provenance.grader == {"name": "openai", "model": "gpt-4-0613", "file": None,
                                          "judges_predictions": True}
    assert official.provenance.clean and marks(official.provenance) == ()
    other = score("mmvet", preds, refs, grader=judge("0.5", "small-local-llm"), judge_prompt=tmp_path / "prompt.txt",
                  n_bootstrap=0)
    assert other.metrics == official.metrics  # metrics mean the same; only the provenance differs
    assert [m.symbol for m in marks(other.provenance)] == [SHORTCUT]
    assert "small-local-llm, not the benchmark's gpt-4-0613" in marks(other.provenance)[0].text


def write_mme(folder: Path, subtasks: list[str]) -> None:
    """MME results answering every template question of the CI fixture correctly."""
    folder.mkdir(parents=True, exist_ok=True)
    for s in subtasks:
        lines = (REPO / CI["mme"]["annotations"] / f"{s}.txt").read_text().splitlines()
        (folder / f"{s}.txt").write_text("".join(f"{x}\t{x.split(chr(9))[2]}\n" for x in lines))


def test_mme_on_some_of_its_subtasks_is_a_subset_and_all_14_are_not(cli: Cli, tmp_path: Path) -> None:
    chosen = CI["mme"]["options"]["subtasks"]
    write_mme(tmp_path / "mme", chosen)
    out = tmp_path / "mme.json"
    p = cli("score", "mme", "--predictions", tmp_path / "mme", "--out", out, "--bootstrap", "0",
            *option_flags(CI["mme"]["options"]))
    assert p.returncode == 0, p.stderr
    result = json.loads(out.read_text())
    assert result["provenance"]["subset"] == [{"kept": 5, "of": 14, "unit": "subtasks", "by": "subtasks option"}]
    assert read_marks(out) == (Mark(SUBSET, "subset, 5 of 14 subtasks (subtasks option)"),)
    assert result["metrics"]["perception"] == 800.0 and result["n"] == 6  # 4 of 10 perception subtasks summed
    every = tmp_path / "every"
    write_mme(every, chosen)
    for s in set(SUBTASKS) - set(chosen):  # the other subtasks, one image each (two questions)
        (every / f"{s}.txt").write_text("a.jpg\tQ1?\tYes\tYes\na.jpg\tQ2?\tNo\tNo\n")
    assert score("mme", every, n_bootstrap=0).provenance.clean


def test_top1_over_other_than_imagenet_1k_classes_is_a_shortcut(tmp_path: Path) -> None:
    refs = [{"id": "a", "label": 1}, {"id": "b", "label": 0}]
    write_jsonl(tmp_path / "refs.jsonl", refs)
    for classes, expected in ((9, [SHORTCUT]), (1000, [])):
        preds = [{"id": r["id"], "scores": [float(i == r["label"]) for i in range(classes)]} for r in refs]
        write_jsonl(tmp_path / "preds.jsonl", preds)
        result = score("imagenet", tmp_path / "preds.jsonl", tmp_path / "refs.jsonl", n_bootstrap=0)
        assert result.metrics["top1"] == 100.0
        assert [m.symbol for m in marks(result.provenance)] == expected
        if expected:
            assert result.provenance.shortcuts == ["top-k over 9 classes, not ImageNet-1k's 1000"]


def test_the_cli_merges_a_record_of_what_the_caller_knows(cli: Cli, imagenet_files: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    preds, refs = imagenet_files
    record = tmp_path / "tokens.json"
    write_json(record, {"mean": 3.0, "provenance": Provenance(
        subset=[Subset(4, 50000, "images", "eval.limit = 4")], shortcuts=["evaluated on photos"]).to_json()})
    out = tmp_path / "r.json"
    p = cli("score", "imagenet", "--predictions", preds, "--annotations", refs, "--out", out, "--bootstrap", "0",
            "--provenance-from", record)
    assert p.returncode == 0, p.stderr
    prov = json.loads(out.read_text())["provenance"]
    assert prov["subset"] == [{"kept": 4, "of": 50000, "unit": "images", "by": "eval.limit = 4"}]
    # the scorer's shortcut (10 classes), then the caller's
    assert prov["shortcuts"] == ["top-k over 10 classes, not ImageNet-1k's 1000", "evaluated on photos"]
    write_json(record, {"mean": 3.0})
    p = cli("score", "imagenet", "--predictions", preds, "--annotations", refs, "--out", tmp_path / "s.json",
            "--provenance-from", record)
    assert p.returncode == 2 and "no provenance object" in p.stderr and not (tmp_path / "s.json").exists()


def test_the_tokenizer_evaluation_set_is_recorded_from_the_config() -> None:
    files = [REPO / "config/paper.yaml", REPO / "config/ci.yaml"]
    ci = load_config(files)
    assert ci.eval.dataset == "bundled"
    p = eval_set_provenance(ci, total=12)
    assert p.subset == [] and p.shortcuts == [
        "evaluated on the bundled images (datasets.bundled.kind = bundled), not ImageNet val"]
    limited = dataclasses.replace(ci, eval=dataclasses.replace(ci.eval, limit=5))
    assert eval_set_provenance(limited, total=12).subset == [Subset(5, 12, "images", "eval.limit = 5")]
    assert eval_set_provenance(limited, total=4).subset == []  # a limit above the set's size keeps every image
    paper = load_config(REPO / "config/paper.yaml")
    assert paper.eval.dataset == "imagenet_val" and eval_set_provenance(paper, total=50000).clean


def test_provenance_round_trips_and_bad_records_are_named(tmp_path: Path) -> None:
    p = Provenance(grader={"name": "precomputed", "model": None, "file": "g.json", "judges_predictions": False},
                   subset=[Subset(2, None, "images", "datasets.x.limit = 2")], shortcuts=["s"])
    assert Provenance.from_json(json.loads(json.dumps(p.to_json()))) == p
    assert [m.symbol for m in marks(p)] == [GRADES, SUBSET, SHORTCUT]
    assert marks(p)[1].text == "subset, first 2 images (datasets.x.limit = 2)"
    with pytest.raises(DataError, match="two graders"):
        p.merged(Provenance(grader={"name": "openai", "model": "m", "file": None, "judges_predictions": True}))
    for bad in ({"grader": None}, {"grader": {"name": "x"}, "subset": [], "shortcuts": []},
                {"grader": None, "subset": [{"kept": 1}], "shortcuts": []},
                {"grader": None, "subset": [], "shortcuts": [1]}):
        write_json(tmp_path / "bad.json", {"provenance": bad})
        with pytest.raises(DataError, match="bad.json: provenance"):
            read_provenance(tmp_path / "bad.json")
    write_json(tmp_path / "old.json", {"metrics": {"x": 1.0}})  # a result file from before provenance
    assert read_marks(tmp_path / "old.json") == () and read_marks(tmp_path / "absent.json") == ()


def test_legend_is_deterministic_and_says_why() -> None:
    a, b = Legend(), Legend()
    grades = Mark(GRADES, "precomputed grades (g.json), not judged from these predictions")
    sub = Mark(SUBSET, "subset, 5 of 14 subtasks (subtasks option)")
    assert a.add("mmvet", [grades]) == GRADES and a.add("mme", [sub]) == SUBSET and a.add("gqa", []) == ""
    b.add("mme", [sub])
    b.add("mmvet", [grades])
    b.add("mmvet", [grades])
    assert a.lines() == b.lines() == [f"{GRADES} mmvet: {grades.text}", f"{SUBSET} mme: {sub.text}"]
    assert a.markdown() == b.markdown() and f"- {GRADES} mmvet: precomputed grades" in a.markdown()
    assert r"$^{\circ}$ mmvet" in a.latex(lambda s: s) and Legend().markdown() == Legend().latex(str) == ""
