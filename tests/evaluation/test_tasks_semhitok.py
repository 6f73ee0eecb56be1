"""SemHiTok's benchmarks (SEED, MMBench, MMMU, MJHQ-30K, GenAI-Bench) through evaluation.tasks on the committed
fixtures in the official layouts (tests/fixtures/benchmarks).

The queries come from the official files with the documented prompts, and the ground truth written through
``task.write`` scores perfectly with the registered scorer called as the workflow calls it (full and ``limit``).
The configs below mirror the CI entries of these benchmarks (config/ci.yaml).
"""

from __future__ import annotations

import base64
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from evaluation import cli
from evaluation.tasks import Query, build_task, subset_dir
from evaluation.tasks.multiple_choice import MC_SUFFIX
from setok.config import BenchmarkConfig
from setok.io import DataError, load_image, read_json

REPO = Path(__file__).resolve().parents[2]
F = REPO / "tests/fixtures/benchmarks"
CONFIGS = {
    "seed": BenchmarkConfig(predictions="seed.jsonl", annotations=str(F / "seed/SEED-Bench.json"),
                            images=str(F / "seed/SEED-Bench-image"), options={"data_type": "image"}),
    "mmbench": BenchmarkConfig(predictions="mmbench.jsonl", annotations=str(F / "mmbench/MMBench_DEV_EN.tsv")),
    "mmmu": BenchmarkConfig(predictions="mmmu.jsonl", annotations=str(F / "mmmu/mmmu_validation.json"),
                            images=str(F / "mmmu/MMMU")),
    "mjhq_fid": BenchmarkConfig(predictions="mjhq_fid", annotations=str(F / "mjhq/meta_data.json"),
                                inputs=str(F / "mjhq/meta_data.json")),
    "genai_bench": BenchmarkConfig(predictions="genai_bench", annotations=str(F / "genai_bench/genai_image.json"),
                                   options={"grader": "precomputed",
                                            "grader_file": str(F / "genai_bench/oracle-grade.json")}),
}
EXPECTED = {"seed": (4, "answer"), "mmbench": (9, "answer"), "mmmu": (4, "answer"), "mjhq_fid": (6, "generate"),
            "genai_bench": (5, "generate")}
ORACLE_VQASCORE = {"vqascore": 0.7, "basic": 0.8, "advanced": 0.55, "attribute": 0.85, "scene": 0.8,
                   "spatial_relation": 0.8, "counting": 0.6, "differentiation": 0.6, "negation": 0.5}
CHOICE = ("seed", "mmbench", "mmmu")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Decoded MMBench / MMMU images go to a fresh ``$SETOK_CACHE`` per test."""
    monkeypatch.setenv("SETOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def oracle(name: str, cfg: BenchmarkConfig, queries: list[Query]) -> dict[Any, Any]:
    """The ground truth of every query, read from the official reference files (answers or reference images)."""
    ann = Path(cfg.annotations)
    if name == "seed":
        truth: dict[Any, Any] = {q["question_id"]: q["answer"] for q in read_json(ann)["questions"]}
    elif name == "mmbench":
        lines = [line.split("\t") for line in ann.read_text().splitlines()]
        col = lines[0].index("answer")
        truth = {int(r[0]): r[col] for r in lines[1:]}
    elif name == "mmmu":
        truth = {r["id"]: r["answer"] for r in read_json(ann)}
    elif name == "mjhq_fid":
        truth = {k: load_image(ann.parent / "mjhq30k_imgs" / v["category"] / f"{k}.jpg")
                 for k, v in read_json(ann).items()}
    else:  # GenAI-Bench has no reference images: any image per prompt (graded by the oracle file)
        truth = {q.id: Image.new("RGB", (32, 24), (40 * k, 200, 90)) for k, q in enumerate(queries)}
    return {q.id: truth[q.id] for q in queries}


def score(name: str, cfg: BenchmarkConfig, predictions: Path, refs: dict[str, Path], out: Path) -> dict[str, Any]:
    """``python -m evaluation score`` in-process with the workflow's flags (common.smk ``benchmark_flags``)."""
    args = ["score", name, "--predictions", str(predictions), "--out", str(out), "--bootstrap", "0"]
    for key, path in refs.items():
        args += [f"--{key}", str(path)]
    for key, value in cfg.options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    if name == "mjhq_fid":
        args += ["--device", "cpu"]
    assert cli.main(args) == 0
    return read_json(out)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_queries_come_from_the_official_files_with_existing_images(name: str) -> None:
    queries = build_task(name, CONFIGS[name]).queries()
    count, kind = EXPECTED[name]
    assert len(queries) == count and {q.kind for q in queries} == {kind}
    assert len({q.id for q in queries}) == count
    if kind == "generate":
        assert all(q.image is None for q in queries)
    else:
        assert all(q.image is not None and q.image.is_file() for q in queries)
        assert {q.max_new_tokens for q in queries} == {16}


def test_prompts_follow_llava_and_lmms_eval() -> None:
    q = {n: {x.id: x for x in build_task(n, CONFIGS[n]).queries()} for n in EXPECTED}
    assert q["seed"]["101670"].prompt == (
        "What animal is in the image?\nA. A dog\nB. A cat\nC. A horse\nD. A bird" + MC_SUFFIX)
    assert "1002" not in q["seed"]  # the video question is not asked
    assert q["seed"]["101670"].image.name == "1454427_2591111993.jpg"
    assert q["mmbench"][1].prompt == (  # hint, question, the row's 3 options, LLaVA's instruction
        "The photo was taken at a launch site.\nWhich vehicle is about to take off?\nA. airplane\nB. rocket\n"
        "C. balloon\nAnswer with the option's letter from the given choices directly.")
    assert q["mmbench"][2000001].prompt.startswith(  # circular copy 2: options rotated by two
        "The photo was taken at a launch site.\nWhich vehicle is about to take off?\nA. balloon\nB. airplane\n")
    assert q["mmbench"][1000002].prompt == (
        "What lies on the saucer beside the cup?\nA. a fork\nB. a spoon" + MC_SUFFIX)  # no hint, 2 options
    assert q["mmmu"]["validation_Physics_2"].prompt == (
        "Which celestial body is shown in <image 1>?\nA. Mars\nB. The Sun\nC. A comet\nD. The Moon\n\n"
        "Answer with the option's letter from the given choices directly.")
    assert q["mmmu"]["validation_Physics_1"].prompt == (
        "How many rockets stand on the launch pad in <image 1>?\n\nAnswer the question using a single word or phrase.")
    assert q["genai_bench"]["00003"].prompt == "Two flowers in a vase, one pink and one yellow."
    assert q["mjhq_fid"]["ef89a3a842b0384565a210f0122804f411fe51fb"].prompt == (  # sha1("rocket")
        "a rocket on the launch pad at dusk, floodlights, cinematic")


def test_mmbench_images_are_decoded_once_into_the_cache(cache: Path) -> None:
    queries = {q.id: q for q in build_task("mmbench", CONFIGS["mmbench"]).queries()}
    folder = queries[0].image.parent
    assert folder.parent == cache / "mmbench" and len(folder.name) == 12
    assert sorted(p.name for p in folder.iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]  # copies reuse the main image
    assert queries[3000000].image == queries[0].image and queries[1000002].image == queries[2].image
    tsv = Path(CONFIGS["mmbench"].annotations).read_text().splitlines()
    cell = tsv[1].split("\t")[tsv[0].split("\t").index("image")]
    assert queries[0].image.read_bytes() == base64.b64decode(cell)  # the stored bytes, unchanged
    mtime = queries[0].image.stat().st_mtime_ns
    again = build_task("mmbench", CONFIGS["mmbench"]).queries()
    assert again[0].image == queries[0].image and queries[0].image.stat().st_mtime_ns == mtime  # not rewritten


def test_mmmu_shows_image_1_even_when_the_question_names_image_2() -> None:
    queries = {q.id: q for q in build_task("mmmu", CONFIGS["mmmu"]).queries()}
    table = pq.read_table(F / "mmmu/MMMU/Art_Theory/validation-00000-of-00001.parquet").to_pylist()
    row = next(r for r in table if r["id"] == "validation_Art_Theory_2")
    assert row["image_2"] is not None and "<image 2>" in queries[row["id"]].prompt
    assert queries[row["id"]].image.read_bytes() == row["image_1"]["bytes"]
    assert queries["validation_Physics_2"].image.suffix == ".png"  # extension from the decoded format


@pytest.mark.parametrize("name", CHOICE)
def test_ground_truth_letters_score_100(name: str, tmp_path: Path) -> None:
    cfg = CONFIGS[name]
    task = build_task(name, cfg)
    queries = task.queries()
    out = task.write(oracle(name, cfg, queries), tmp_path / cfg.predictions)
    result = score(name, cfg, out, task.references(out), tmp_path / "result.json")
    assert result["n"] == (3 if name == "mmbench" else len(queries))  # MMBench scores questions, not rows
    assert result["metrics"]["accuracy"] == pytest.approx(100.0)
    wrong = {**oracle(name, cfg, queries), queries[0].id: "Z"}  # one wrong row: one question (of n) lost
    out = task.write(wrong, tmp_path / cfg.predictions)
    result = score(name, cfg, out, task.references(out), tmp_path / "result.json")
    assert result["metrics"]["accuracy"] == pytest.approx(100.0 * (result["n"] - 1) / result["n"])


def test_genai_bench_writes_official_jpeg_names_and_scores_the_oracle_grades(tmp_path: Path) -> None:
    cfg = CONFIGS["genai_bench"]
    task = build_task("genai_bench", cfg)
    images = oracle("genai_bench", cfg, task.queries())
    out = task.write(images, tmp_path / cfg.predictions)
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.jpeg" for i in range(5)]
    with Image.open(out / "00002.jpeg") as im:
        assert im.format == "JPEG" and im.size == (32, 24)
        assert np.abs(np.asarray(im, dtype=float) - np.asarray(images["00002"], dtype=float)).mean() < 3
    result = score("genai_bench", cfg, out, task.references(out), tmp_path / "result.json")
    assert result["n"] == 5
    for metric, value in ORACLE_VQASCORE.items():
        assert result["metrics"][metric] == pytest.approx(value), metric


@pytest.mark.parametrize("name", [*CHOICE, "genai_bench"])
def test_limit_writes_a_subset_reference_that_scores_the_kept_queries(name: str, tmp_path: Path) -> None:
    cfg = dataclasses.replace(CONFIGS[name], limit=2)
    task = build_task(name, cfg)
    queries = task.queries()
    full = build_task(name, CONFIGS[name]).queries()
    if name == "mmbench":  # two questions with all their circular copies
        assert [q.id for q in queries] == [0, 1, 1000000, 1000001, 2000000, 2000001, 3000000]
    else:
        assert queries == full[:2]
    out = task.write(oracle(name, cfg, queries), tmp_path / cfg.predictions)
    refs = task.references(out)
    assert all(p.is_relative_to(subset_dir(out)) and p.exists() for p in refs.values())
    result = score(name, cfg, out, refs, tmp_path / "result.json")
    assert result["n"] == 2
    if name == "genai_bench":
        assert result["metrics"]["vqascore"] == pytest.approx(0.85) and "advanced" not in result["metrics"]
        assert read_json(subset_dir(out) / "genai_skills.json")["scene"] == [0]
    else:
        assert result["metrics"]["accuracy"] == pytest.approx(100.0)


@pytest.mark.slow
def test_mjhq_fid_of_the_reference_images_is_zero_in_full_and_under_limit(tmp_path: Path) -> None:
    cfg = CONFIGS["mjhq_fid"]
    task = build_task("mjhq_fid", cfg)
    out = task.write(oracle("mjhq_fid", cfg, task.queries()), tmp_path / "full" / cfg.predictions)
    assert sorted(p.suffix for p in out.iterdir()) == [".png"] * 6
    result = score("mjhq_fid", cfg, out, task.references(out), tmp_path / "full.json")
    assert result["n"] == 6 and abs(result["metrics"]["fid"]) < 1e-3
    assert set(result["metrics"]) == {"fid", "fid_people", "fid_vehicles"}
    limited = build_task("mjhq_fid", dataclasses.replace(cfg, limit=2))
    queries = limited.queries()
    meta = read_json(cfg.annotations)
    assert sorted(meta[q.id]["category"] for q in queries) == ["people"] * 2 + ["vehicles"] * 2  # 2 per category
    out = limited.write(oracle("mjhq_fid", cfg, queries), tmp_path / "limit" / cfg.predictions)
    refs = limited.references(out)
    meta = read_json(refs["annotations"])
    assert refs["annotations"] == subset_dir(out) / "meta_data.json" and sorted(meta) == sorted(q.id for q in queries)
    assert all((subset_dir(out) / v["category"] / f"{k}.jpg").is_file() for k, v in meta.items())  # copied refs
    result = score("mjhq_fid", cfg, out, refs, tmp_path / "limit.json")
    assert result["n"] == 4 and abs(result["metrics"]["fid"]) < 1e-3
    with pytest.raises(DataError, match=r"benchmarks\.mjhq_fid\.limit: must be >= 2"):
        build_task("mjhq_fid", dataclasses.replace(cfg, limit=1))


def test_corrupt_mmbench_base64_is_one_line_naming_the_tsv_and_index(tmp_path: Path) -> None:
    lines = Path(CONFIGS["mmbench"].annotations).read_text().splitlines()
    col = lines[0].split("\t").index("image")
    row = lines[2].split("\t")
    assert row[0] == "1"
    row[col] = "not-base64!" * 10
    tsv = tmp_path / "MMBench_DEV_EN.tsv"
    tsv.write_text("\n".join([*lines[:2], "\t".join(row), *lines[3:]]) + "\n")
    with pytest.raises(DataError) as e:
        build_task("mmbench", dataclasses.replace(CONFIGS["mmbench"], annotations=str(tsv))).queries()
    assert str(e.value).startswith(f"{tsv}: index 1: ") and "\n" not in str(e.value)


def test_a_missing_mmmu_parquet_is_one_line_naming_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "MMMU"
    shutil.copytree(F / "mmmu/MMMU", root)
    (root / "Physics/validation-00000-of-00001.parquet").unlink()
    with pytest.raises(DataError) as e:
        build_task("mmmu", dataclasses.replace(CONFIGS["mmmu"], images=str(root))).queries()
    assert str(e.value).startswith(f"{root}: no Physics/validation-*.parquet for 2 questions")
    assert "\n" not in str(e.value)


def test_seed_needs_the_image_data_type_option() -> None:
    with pytest.raises(DataError, match=r"benchmarks\.seed\.options\.data_type: must be 'image'"):
        build_task("seed", dataclasses.replace(CONFIGS["seed"], options={}))
