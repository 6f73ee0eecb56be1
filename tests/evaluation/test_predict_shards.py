"""Sharded prediction (evaluation.predict.shards, merge_shards, the workflow's predict_shard + merge rules).

A random tiny SeTokIM (the CI config's sizes, 32 px images) predicts CI benchmark fixtures once unsharded and once in
3 shards merged: the merged file or folder must equal the unsharded one byte for byte, for text answers (VQAv2),
a folder of per-split answer files keyed by tuple ids (POPE), generated images (COCO-FID, diffusion sampling) and
masks (RefCOCO+). Batch size 2 and a limit that leaves more batches than shards, so every shard runs several
batches and the last one is short.
"""
from __future__ import annotations

import filecmp
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from evaluation.tasks.base import Query
from setok.config import Config, ConfigError, deep_merge, dump, from_dict, read_yaml, resolve, to_dict, validate_all
from setok.io import DataError

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LIMITS = {"vqav2": 7, "pope": 7, "coco_fid": 5, "refcoco+": 5}


def tiny_config() -> Config:
    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {"tokenizer": {"backbone": {"image_size": 32}, "clustering": {"max_tokens": 8}}})
    for name, b in raw["benchmarks"].items():  # fixture paths relative to the repository, wherever pytest runs
        for key, v in list(b.items()):
            if isinstance(v, str) and v.startswith("tests/"):
                b[key] = str(ROOT / v)
        if name in LIMITS:
            b["limit"] = LIMITS[name]
    return resolve(raw, "hard_cluster")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A random SeTok and a random Stage-II SeTokIM on it (no training: only identity of outputs is checked)."""
    from setok.model_file import write_model
    from setok.modeling.build import build_setok, build_setokim

    cfg = tiny_config()
    root = tmp_path_factory.mktemp("shards")
    torch.manual_seed(0)
    setok, _ = build_setok(cfg.tokenizer)
    tokenizer = write_model(root / "tokenizer.pt", family="setok", stage="tokenizer", weights=setok.state_dict(),
                            config=to_dict(cfg), config_sha="", step=0)
    token_dim, image_dim = setok.merger.proj.out_features, setok.encoder.width
    model, _, mask_decoder = build_setokim(cfg, token_dim=token_dim, image_dim=image_dim)
    mllm = write_model(root / "model.pt", family="setokim", stage="stage2", weights=model.state_dict(),
                       config=to_dict(cfg), config_sha="", step=0, mask_decoder=mask_decoder.state_dict(),
                       token_dim=token_dim, image_dim=image_dim, lora=False, tokenizer_model=str(tokenizer))
    config = root / "config.yaml"
    config.write_text(dump(cfg))
    return mllm, tokenizer, config


def same_tree(a: Path, b: Path) -> None:
    """``a`` and ``b`` (files or folders) hold the same names and bytes."""
    if a.is_file():
        assert b.is_file() and a.read_bytes() == b.read_bytes(), (a, b)
        return
    names = sorted(p.relative_to(a) for p in a.rglob("*"))
    assert names == sorted(p.relative_to(b) for p in b.rglob("*"))
    for n in names:
        if (a / n).is_file():
            assert filecmp.cmp(a / n, b / n, shallow=False), n


@pytest.mark.parametrize(("benchmark", "out"), [("vqav2", "vqav2.json"), ("pope", "pope"),
                                                 ("coco_fid", "coco_fid"), ("refcoco+", "refcoco+.json")])
def test_three_shards_merge_to_the_unsharded_predictions_byte_for_byte(models, tmp_path, benchmark, out):
    from evaluation.predict.merge_shards import merge
    from evaluation.predict.mllm import predict

    mllm, tokenizer, config = models
    whole = predict(mllm, tokenizer, config, benchmark, tmp_path / "whole" / out, batch_size=2)
    shards = [predict(mllm, tokenizer, config, benchmark, tmp_path / "shards" / str(i), batch_size=2, shard=i,
                      num_shards=3) for i in (2, 0, 1)]  # any order of jobs
    merged = merge(config, benchmark, shards, tmp_path / "merged" / out)
    same_tree(whole, merged)
    # the subset references a limited task writes beside its predictions are the same too
    refs = f"{out}.references"
    same_tree(tmp_path / "whole" / refs, tmp_path / "merged" / refs)


def test_the_split_is_of_the_unsharded_runs_batches_round_robin():
    """Batches group queries by kind and by whether they read an image, in task order; shard i gets batches i, i+N."""
    from evaluation.predict.shards import batch_plan, shard_batches

    qs = [Query(id=k, kind="answer" if k % 3 else "generate", prompt="p", image=None if k % 3 == 0 else Path("x"))
          for k in range(10)]
    plan = batch_plan(qs, 2)
    assert plan == [[0, 3], [6, 9], [1, 2], [4, 5], [7, 8]]  # the group of query 0 first
    assert shard_batches(plan, 0, 3) == [[0, 3], [4, 5]]
    assert shard_batches(plan, 2, 3) == [[1, 2]]
    assert sorted(k for i in range(3) for b in shard_batches(plan, i, 3) for k in b) == list(range(10))
    with pytest.raises(DataError, match=r"--shard: must be in \[0, 3\)"):
        shard_batches(plan, 3, 3)


def test_merge_refuses_a_missing_duplicated_or_foreign_shard(models, tmp_path):
    from evaluation.predict.merge_shards import merge
    from evaluation.predict.mllm import predict

    mllm, tokenizer, config = models
    s = [predict(mllm, tokenizer, config, "vqav2", tmp_path / f"s{i}", batch_size=2, shard=i, num_shards=2)
         for i in range(2)]
    with pytest.raises(DataError, match="2-way split, but 1 shard folders"):
        merge(config, "vqav2", s[:1], tmp_path / "a.json")
    with pytest.raises(DataError, match=r"shards \[0, 0\] given"):
        merge(config, "vqav2", [s[0], s[0]], tmp_path / "b.json")
    with pytest.raises(DataError, match="a shard of 'vqav2', not of 'gqa'"):
        merge(config, "gqa", s, tmp_path / "c.json")
    with pytest.raises(DataError, match="not a finished prediction shard"):
        merge(config, "vqav2", [s[0], tmp_path], tmp_path / "d.json")
    assert not any((tmp_path / n).exists() for n in ("a.json", "b.json", "c.json", "d.json"))


@pytest.mark.parametrize("bad", [0, -2])
def test_a_bad_shard_count_is_rejected_naming_the_key(bad):
    raw = read_yaml(ROOT / "config/paper.yaml")
    raw["benchmarks"]["gqa"]["shards"] = bad
    with pytest.raises(ConfigError, match=rf"^benchmarks\.gqa\.shards: must be an integer >= 1 .*got {bad}$"):
        validate_all(raw)
    assert from_dict(Config, read_yaml(ROOT / "config/ci.yaml")).benchmarks["vqav2"].shards == 1


def test_sharded_benchmark_plans_n_prediction_jobs_and_one_local_merge_feeding_its_score(tmp_path):
    """On the CI config with ``benchmarks.vqav2.shards: 3``: three predict_shard jobs (shards 0-2) write the shard
    folders, one merge_prediction_file job (a local rule) writes the predictions file score_benchmark reads; a sharded
    folder benchmark (coco_fid, 2 shards) merges through merge_prediction_folder; gqa keeps predict_file."""
    overlay = tmp_path / "shards.yaml"
    overlay.write_text(yaml.safe_dump({"benchmarks": {"vqav2": {"shards": 3}, "coco_fid": {"shards": 2}}}))
    targets = [f"results/hard_cluster/eval/{b}.json" for b in ("vqav2", "gqa", "coco_fid")]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(BIN / "snakemake"), "-n", "-p", "--forceall", *targets, "--configfile", "config/ci.yaml",
                        str(overlay)], cwd=ROOT, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    plan = r.stdout + r.stderr
    stats = plan[plan.index("Job stats:"):]
    jobs = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}
    assert jobs["predict_shard"] == 3 + 2 and jobs["predict_file"] == 1 and "predict_folder" not in jobs
    assert jobs["merge_prediction_file"] == jobs["merge_prediction_folder"] == 1
    folders = [f"results/hard_cluster/prediction_shards/vqav2.json/{i}" for i in range(3)]
    cmds = re.findall(r"python -m evaluation.predict.mllm .*", plan)
    for i, folder in enumerate(folders):
        assert any(f"--shard {i} --num-shards 3 --out {folder} " in c and "--benchmark vqav2" in c for c in cmds), i
    merge = re.search(r"python -m evaluation.predict.merge_shards .*--benchmark vqav2 .*", plan).group(0)
    assert "--out results/hard_cluster/predictions/vqav2.json " in merge and merge.split(" > ")[0].endswith(
        " ".join(folders))
    # the merge needs no GPU and runs on the submitting host (a local rule: no sbatch job on a cluster)
    block = re.search(r"^rule merge_prediction_file:\n((?:    .*\n)+)", plan, re.M).group(1)
    assert "gpu=" not in block
    local = re.search(r"^localrules:\n((?:    .*\n)+)", (ROOT / "workflow/rules/mllm.smk").read_text(), re.M)
    assert {"merge_prediction_file,", "merge_prediction_folder,"} <= set(local.group(1).split())
    score = re.search(r"python -m evaluation score vqav2 .*", plan).group(0)
    assert "results/hard_cluster/predictions/vqav2.json" in score
    # unsharded: the plan of today (same rule and path), no shard or merge job
    assert "--shard" not in re.search(r"python -m evaluation.predict.mllm .*--benchmark gqa.*", plan).group(0)
