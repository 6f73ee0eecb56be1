"""The reference variant through the same prediction entry point, writers and scorers as SeTokIM: the CI config's tiny
random LLaVA (``llava15_7b``) predicts the VQAv2 and POPE fixtures with ``evaluation.predict.mllm`` (no ``--model``),
the scorer accepts the files, and a sharded run merges to the unsharded file byte for byte."""
from __future__ import annotations

import filecmp
from pathlib import Path
from typing import Any

import pytest
from reference_helpers import ci_raw, reference_config

from evaluation import cli
from evaluation.predict import mllm
from evaluation.predict.merge_shards import merge
from evaluation.tasks import build_task
from setok.config import dump, resolve
from setok.io import DataError, read_json


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The resolved ``llava15_7b`` config file, as the workflow writes results/<variant>/config.yaml."""
    path = tmp_path_factory.mktemp("reference") / "config.yaml"
    path.write_text(dump(reference_config()))
    return path


def score(name: str, predictions: Path, out: Path) -> dict[str, Any]:
    """``python -m evaluation score`` in-process with the task's reference files (common.smk's flags)."""
    cfg = reference_config().benchmarks[name]
    args = ["score", name, "--predictions", str(predictions), "--out", str(out), "--bootstrap", "0"]
    for key, path in build_task(name, cfg).references(predictions).items():
        args += [f"--{key}", str(path)]
    assert cli.main(args) == 0
    return read_json(out)


@pytest.mark.slow  # loads the tiny checkpoint and generates: ~5-15 s on a shared CPU
def test_vqav2_predictions_of_the_reference_model_are_scored(config, tmp_path) -> None:
    out = mllm.predict(None, None, config, "vqav2", tmp_path / "vqav2.json", batch_size=2)
    rows = read_json(out)
    assert sorted(r["question_id"] for r in rows) == [42000, 42001, 73000, 73001, 139000]
    assert all(isinstance(r["answer"], str) and r["answer"] for r in rows)  # 16 random tokens each, decoded
    result = score("vqav2", out, tmp_path / "score.json")
    assert result["n"] == 5 and result["metrics"]["accuracy"] == 0.0  # a random model answers nothing right


@pytest.mark.slow  # loads the tiny checkpoint and generates: ~5-15 s on a shared CPU
def test_pope_through_the_cli_without_a_model(config, tmp_path) -> None:
    out = tmp_path / "pope"
    assert mllm.main(["--config", str(config), "--benchmark", "pope", "--out", str(out), "--device", "cpu"]) == 0
    answers = {p.name: p.read_text().splitlines() for p in sorted(out.iterdir())}
    assert {k: len(v) for k, v in answers.items()} == {"adversarial.jsonl": 2, "popular.jsonl": 2, "random.jsonl": 2}
    result = score("pope", out, tmp_path / "score.json")
    assert result["n"] == 6  # every question answered and read back


@pytest.mark.slow  # loads the tiny checkpoint and generates: ~5-15 s on a shared CPU
def test_two_shards_merge_to_the_unsharded_predictions(tmp_path) -> None:
    config = tmp_path / "config.yaml"  # the first 3 questions, one batch each: shard 0 answers 2, shard 1 answers 1
    config.write_text(dump(reference_config(limits={"vqav2": 3})))
    whole = mllm.predict(None, None, config, "vqav2", tmp_path / "whole.json", batch_size=1)
    shards = [mllm.predict(None, None, config, "vqav2", tmp_path / f"s{i}", batch_size=1, shard=i, num_shards=2)
              for i in (1, 0)]
    merged = merge(config, "vqav2", shards, tmp_path / "merged.json")
    assert len(read_json(whole)) == 3 and filecmp.cmp(whole, merged, shallow=False)


def test_a_trained_variant_still_needs_its_model(tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(dump(resolve(ci_raw(), "hard_cluster")))
    with pytest.raises(DataError, match=r"^--model: required for .*config\.yaml \(a trained variant"):
        mllm.predict(None, None, path, "vqav2", tmp_path / "vqav2.json")


def test_a_benchmark_of_images_is_refused_before_the_checkpoint_loads(config, tmp_path, monkeypatch) -> None:
    from evaluation.predict import reference

    monkeypatch.setattr(reference, "ReferencePredictor", lambda *a, **k: pytest.fail("checkpoint loaded"))
    with pytest.raises(DataError, match=r"^llava15_7b \(random llava_hf\): .*'generate' queries"):
        mllm.predict(None, None, config, "coco_fid", tmp_path / "coco_fid")
