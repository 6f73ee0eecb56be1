"""Benchmark inputs (evaluation.tasks) on the committed fixtures in the official layouts (tests/fixtures/benchmarks).

Every benchmark of the CI config builds its queries from the official files, and the ground truth written through
``task.write`` scores perfectly with the registered scorer called as the workflow calls it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluation import cli
from evaluation.readers.caption import read_caption_references
from evaluation.readers.pope import resolve_annotations
from evaluation.readers.segmentation import decode
from evaluation.registry import get
from evaluation.tasks import Query, build_task, subset_dir, task_names
from setok.config import BenchmarkConfig, load_config
from setok.io import DataError, load_image, read_json, read_jsonl

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests/fixtures/benchmarks"
# benchmark -> (number of queries, kind)
EXPECTED = {
    "flickr30k": (4, "caption"), "vqav2": (5, "answer"), "gqa": (4, "answer"), "okvqa": (3, "answer"),
    "vizwiz": (4, "answer"), "pope": (6, "answer"), "mme": (12, "answer"), "mmvet": (4, "answer"),
    "coco_fid": (8, "generate"), "magicbrush": (3, "edit"), "evr": (3, "edit"), "ma5k": (3, "edit"),
    "refcoco+": (4, "segment"), "refcocog": (3, "segment"), "reasonseg": (3, "segment"),
}
FAST = sorted(set(EXPECTED) - {"coco_fid"})
# SemHiTok's benchmarks (scored by the `semhitok` variant; their oracles are in test_tasks_semhitok.py)
SEMHITOK = {"seed": (4, "answer"), "mmbench": (9, "answer"), "mmmu": (4, "answer"), "mjhq_fid": (6, "generate"),
            "genai_bench": (5, "generate")}


@pytest.fixture(scope="module")
def benchmarks(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, BenchmarkConfig]:
    """The CI config's benchmark entries (paths relative to the repository root, where the tests run)."""
    monkeypatch_module.chdir(REPO)
    return load_config([REPO / "config/paper.yaml", REPO / "config/ci.yaml"]).benchmarks


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def oracle(name: str, cfg: BenchmarkConfig, queries: list[Query]) -> dict[Any, Any]:
    """The ground-truth output of every query, read from the official reference files."""
    ann = None if cfg.annotations is None else Path(cfg.annotations)
    if name == "flickr30k":
        refs = read_caption_references(ann, cfg.options["split"])
        truth: dict[Any, Any] = {i: caps[0] for i, caps in refs.items()}
    elif name in ("vqav2", "okvqa"):
        truth = {a["question_id"]: a["multiple_choice_answer"] for a in read_json(ann)["annotations"]}
    elif name == "vizwiz":
        truth = {r["image"]: r["answers"][0]["answer"] for r in read_json(ann)}
    elif name == "gqa":
        truth = {k: v["answer"] for k, v in read_json(cfg.questions).items()}
    elif name == "pope":
        truth = {(s, r["question_id"]): r["label"] for s, p in resolve_annotations(ann).items() for r in read_jsonl(p)}
    elif name == "mme":
        truth = {}
        for f in ann.glob("*.txt"):
            for line in f.read_text().splitlines():
                image, question, gt = line.split("\t")
                truth[(f.stem, image, question)] = gt
    elif name == "mmvet":
        truth = {k: v["answer"] for k, v in read_json(ann).items()}
    elif name == "coco_fid":
        truth = {q.id: load_image(ann / f"COCO_val2014_{q.id:012d}.jpg") for q in queries}
    elif name in ("magicbrush", "evr", "ma5k"):
        truth = {q.id: load_image(ann / q.id) for q in queries}
    else:
        bench = get(name)
        rows = bench.reference_rows(ann, cfg.options.get("split", bench.default_split), bench.default_split_by)
        truth = {r["id"]: decode(r["segmentation"]).astype(bool) for r in rows}
    return {q.id: truth[q.id] for q in queries}


def score(name: str, cfg: BenchmarkConfig, predictions: Path, refs: dict[str, Path], out: Path,
          extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """``python -m evaluation score`` in-process with the workflow's flags (common.smk ``benchmark_flags``)."""
    args = ["score", name, "--predictions", str(predictions), "--out", str(out), "--bootstrap", "0", *extra]
    for key, path in refs.items():
        args += [f"--{key}", str(path)]
    for key, value in cfg.options.items():
        flag = f"--{key.replace('_', '-')}"
        if value is True:
            args.append(flag)
        elif value not in (False, None):
            args += [flag, *map(str, value if isinstance(value, list) else [value])]
    assert cli.main(args) == 0
    return read_json(out)


PERFECT = {  # metric -> value of the oracle (exact, up to float rounding)
    "vqav2": {"accuracy": 100.0, "accuracy_yes_no": 100.0, "accuracy_number": 100.0, "accuracy_other": 100.0},
    "okvqa": {"accuracy": 100.0}, "vizwiz": {"accuracy": 100.0, "accuracy_unanswerable": 100.0},
    "gqa": {"accuracy": 100.0}, "pope": {"accuracy": 100.0, "f1": 100.0, "yes_ratio": 50.0},
    "mme": {"perception": 800.0, "cognition": 200.0, "existence": 200.0, "scene": 200.0},
    "mmvet": {"score": 100.0}, "flickr30k": {"bleu4": 100.0},
    "magicbrush": {"l1": 0.0, "l2": 0.0}, "evr": {"l1": 0.0, "l2": 0.0}, "ma5k": {"l1": 0.0, "l2": 0.0},
    "refcoco+": {"ciou": 100.0, "giou": 100.0}, "refcocog": {"ciou": 100.0, "giou": 100.0},
    "reasonseg": {"ciou": 100.0, "giou": 100.0},
}

# LISA's IoU is I / (U + 1e-5) and gIoU divides by N + 1e-5: a perfect mask of a few hundred pixels gives ~99.9997.
TOLERANCE = {"refcoco+": 1e-3, "refcocog": 1e-3, "reasonseg": 1e-3}


def test_build_task_knows_every_ci_benchmark(benchmarks: dict[str, BenchmarkConfig]) -> None:
    files = [REPO / "config/paper.yaml", REPO / "config/ci.yaml"]
    ci, semhitok = load_config(files), load_config(files, "semhitok")
    assert set(task_names()) == set(EXPECTED) | set(SEMHITOK)
    assert set(EXPECTED) == set(ci.mllm_benchmarks) and set(SEMHITOK) <= set(semhitok.mllm_benchmarks)


@pytest.mark.parametrize("name", sorted({**EXPECTED, **SEMHITOK}))
def test_queries_come_from_the_official_files_with_existing_images(
        name: str, benchmarks: dict[str, BenchmarkConfig]) -> None:
    queries = build_task(name, benchmarks[name]).queries()
    count, kind = {**EXPECTED, **SEMHITOK}[name]
    assert len(queries) == count and {q.kind for q in queries} == {kind}
    assert len({q.id for q in queries}) == count
    if kind == "generate":
        assert all(q.image is None for q in queries)
    else:
        assert all(q.image is not None and q.image.is_file() for q in queries)


def test_prompts_follow_the_llava_conventions(benchmarks: dict[str, BenchmarkConfig]) -> None:
    q = {n: build_task(n, benchmarks[n]).queries() for n in ("vqav2", "vizwiz", "flickr30k", "mme", "mmvet",
                                                             "refcoco+", "pope")}
    assert q["vqav2"][0].prompt == "What animal is in the picture?\nAnswer the question using a single word or phrase."
    assert q["vqav2"][0].id == 42000
    assert q["vizwiz"][2].prompt == (
        "What is the expiration date on this package?\nWhen the provided information is insufficient, respond with "
        "'Unanswerable'.\nAnswer the question using a single word or phrase.")
    assert q["flickr30k"][0].prompt == "Provide a one-sentence caption for the provided image."
    # MME as LLaVA-1.5 and lmms-eval ask it: the release's yes/no sentence replaced by the short-answer instruction
    assert q["mme"][0].prompt == "Is there a cat in this image?\nAnswer the question using a single word or phrase."
    assert q["mmvet"][0].prompt == "What is on the saucer besides the cup?" and q["mmvet"][0].max_new_tokens == 1024
    assert [x.prompt for x in q["refcoco+"][:2]] == ["Please segment the orange cat.",
                                                     "Please segment the cat looking left."]
    assert q["pope"][0].id == ("adversarial", 1) and q["pope"][-1].id == ("random", 2)


def test_inputs_are_traced_to_the_right_source_files(benchmarks: dict[str, BenchmarkConfig]) -> None:
    gqa = [q.id for q in build_task("gqa", benchmarks["gqa"]).queries()]
    assert "20602474" not in gqa  # the unbalanced question is not asked
    fid = build_task("coco_fid", benchmarks["coco_fid"]).queries()
    assert [q.id for q in fid][:2] == [9, 25] and 64 not in {q.id for q in fid}  # only reference-folder images
    assert fid[0].prompt == "An astronaut in a white spacesuit."  # the first caption of image 9
    mb = {q.id: q for q in build_task("magicbrush", benchmarks["magicbrush"]).queries()}
    assert mb["139/139-output2.png"].image.name == "139-output1.png"  # turn 2 starts from the true turn-1 output
    assert mb["139/139-output2.png"].prompt == "Flip the picture horizontally."
    evr = {q.id: q for q in build_task("evr", benchmarks["evr"]).queries()}
    assert evr["Reddit.com_5pzbel_dcw1fpy.png"].prompt == "make it a bit darker"  # first record, first sentence
    ma5k = {q.id: q for q in build_task("ma5k", benchmarks["ma5k"]).queries()}
    assert ma5k["3458_B.png"].image.name == "3458_O.jpg"  # the release's 3458_B.jpg, converted to PNG
    assert ma5k["3458_B.png"].prompt == "brighten the image a little bit"
    rs = {q.id: q.prompt for q in build_task("reasonseg", benchmarks["reasonseg"]).queries()}
    assert rs["32174_cat"] == "Please segment the the animal that likes to chase mice."  # a phrase (is_sentence false)
    assert rs["4403_rocket"] == ("What in this scene could carry a payload into space? Please output segmentation "
                                 "mask.")  # a sentence, with LISA's instruction
    refg = build_task("refcocog", benchmarks["refcocog"]).queries()
    assert "motorbike" not in " ".join(q.prompt for q in refg)  # the test-split sentence is not asked


@pytest.mark.parametrize("name", FAST)
def test_ground_truth_written_by_the_task_scores_perfectly(
        name: str, benchmarks: dict[str, BenchmarkConfig], tmp_path: Path) -> None:
    cfg = benchmarks[name]
    task = build_task(name, cfg)
    queries = task.queries()
    out = task.write(oracle(name, cfg, queries), tmp_path / cfg.predictions)
    assert out == tmp_path / cfg.predictions and out.exists()
    refs = {k: Path(getattr(cfg, k)) for k in ("annotations", "questions") if getattr(cfg, k)}
    result = score(name, cfg, out, refs, tmp_path / "result.json")
    assert result["n"] == (len(queries) // 2 if name == "mme" else len(queries))  # MME rows are images
    for metric, value in PERFECT[name].items():
        assert result["metrics"][metric] == pytest.approx(value, abs=TOLERANCE.get(name, 1e-6)), metric
    if name == "mmvet":  # the grade file is the oracle's: check the answers themselves
        assert read_json(out) == {k: v["answer"] for k, v in read_json(cfg.annotations).items()}
    if name == "flickr30k":
        assert 0 < result["metrics"]["cider"] < 1000


@pytest.mark.slow
def test_coco_fid_of_the_reference_images_is_zero(benchmarks: dict[str, BenchmarkConfig], tmp_path: Path) -> None:
    cfg = benchmarks["coco_fid"]
    task = build_task("coco_fid", cfg)
    queries = task.queries()
    out = task.write(oracle("coco_fid", cfg, queries), tmp_path / cfg.predictions)
    assert sorted(p.name for p in out.iterdir())[:2] == ["25.png", "30.png"]
    result = score("coco_fid", cfg, out, {"annotations": Path(cfg.annotations)}, tmp_path / "result.json")
    assert result["n"] == 8 and abs(result["metrics"]["fid"]) < 1e-3


@pytest.mark.parametrize("name", ["vqav2", "gqa", "vizwiz", "pope", "mme", "mmvet", "magicbrush", "refcoco+",
                                  "reasonseg"])
def test_limit_writes_a_subset_reference_that_scores_the_kept_queries(
        name: str, benchmarks: dict[str, BenchmarkConfig], tmp_path: Path) -> None:
    cfg = dataclasses.replace(benchmarks[name], limit=2 if name == "mme" else 3)
    task = build_task(name, cfg)
    queries = task.queries()
    full = build_task(name, benchmarks[name]).queries()
    if name == "mme":  # 2 questions per subtask (1 image): all but existence's second image
        assert len(queries) == 10 and queries == [q for q in full if q.id[1] != "000000018150.jpg"]
    else:
        assert queries == full[:3]
    out = task.write(oracle(name, benchmarks[name], queries), tmp_path / cfg.predictions)
    refs = task.references(out)
    assert all(p.is_relative_to(subset_dir(out)) and p.exists() for p in refs.values())
    result = score(name, cfg, out, refs, tmp_path / "result.json")
    assert result["n"] == (5 if name == "mme" else 3)  # MME rows are images
    main, value = next(iter(PERFECT[name].items()))  # sums and ratios depend on which questions are kept
    assert result["metrics"][main if name != "mme" else "existence"] == pytest.approx(
        200.0 if name == "mme" else value, abs=TOLERANCE.get(name, 1e-6))


@pytest.mark.parametrize("name", ["vqav2", "mme", "mmvet"])
def test_a_limited_result_records_kept_of_n_queries_and_an_unlimited_one_no_subset(
        name: str, benchmarks: dict[str, BenchmarkConfig], tmp_path: Path) -> None:
    cfg = dataclasses.replace(benchmarks[name], limit=2)
    task = build_task(name, cfg)
    queries = task.queries()
    out = task.write(oracle(name, benchmarks[name], queries), tmp_path / cfg.predictions)
    record = task.provenance_record(out)
    assert record == subset_dir(out) / "provenance.json"
    kept, total = len(queries), len(build_task(name, benchmarks[name]).queries())
    subset = {"kept": kept, "of": total, "unit": "queries", "by": f"benchmarks.{name}.limit = 2"}
    assert kept < total and read_json(record) == {"provenance": {"grader": None, "subset": [subset], "shortcuts": []}}
    result = score(name, cfg, out, task.references(out), tmp_path / "result.json",
                   extra=("--provenance-from", str(record)))
    assert subset in result["provenance"]["subset"]  # beside MME's own "5 of 14 subtasks"
    unlimited = build_task(name, benchmarks[name])
    full = unlimited.write(oracle(name, benchmarks[name], unlimited.queries()), tmp_path / "full" / cfg.predictions)
    assert unlimited.provenance_record(full) is None and not subset_dir(full).exists()


def test_a_missing_question_file_is_one_line_naming_it(benchmarks: dict[str, BenchmarkConfig], tmp_path: Path) -> None:
    cfg = dataclasses.replace(benchmarks["vqav2"], questions=str(tmp_path / "missing_questions.json"))
    with pytest.raises(DataError) as e:
        build_task("vqav2", cfg).queries()
    assert "missing_questions.json" in str(e.value) and "\n" not in str(e.value)


def test_a_missing_image_is_one_line_naming_it(benchmarks: dict[str, BenchmarkConfig], tmp_path: Path) -> None:
    root = tmp_path / "vizwiz"
    shutil.copytree(FIXTURES / "vizwiz", root)
    (root / "val" / "VizWiz_val_00000002.jpg").unlink()
    cfg = dataclasses.replace(benchmarks["vizwiz"], annotations=str(root / "val.json"), images=str(root / "val"))
    with pytest.raises(DataError, match=r"VizWiz_val_00000002\.jpg: image file not found$"):
        build_task("vizwiz", cfg).queries()


def test_unset_inputs_and_unknown_benchmarks_are_named(benchmarks: dict[str, BenchmarkConfig]) -> None:
    with pytest.raises(DataError, match=r"benchmarks\.magicbrush\.inputs: not set"):
        build_task("magicbrush", dataclasses.replace(benchmarks["magicbrush"], inputs=None))
    with pytest.raises(DataError, match=r"unknown benchmark 'seedbench2' for inference; known: coco_fid, evr"):
        build_task("seedbench2", benchmarks["vqav2"])


def test_outputs_missing_a_query_are_refused(benchmarks: dict[str, BenchmarkConfig], tmp_path: Path) -> None:
    task = build_task("refcoco+", benchmarks["refcoco+"])
    masks = oracle("refcoco+", benchmarks["refcoco+"], task.queries())
    masks.pop(next(iter(masks)))
    with pytest.raises(DataError, match="missing answers for 1 of 4 ids"):
        task.write(masks, tmp_path / "refcoco+.json")
    assert not (tmp_path / "refcoco+.json").exists()


def test_fixture_masks_are_not_trivial(benchmarks: dict[str, BenchmarkConfig]) -> None:
    for name in ("refcoco+", "refcocog", "reasonseg"):
        task = build_task(name, benchmarks[name])
        for mask in oracle(name, benchmarks[name], task.queries()).values():
            assert 0 < np.mean(mask) < 0.9
