"""``benchmarks/paper_scale_check.py``: the one-GPU check runs the paper's models and stage settings on CI data.

The GPU run itself cannot happen here; what can fail here is the config it builds (a model section that silently
kept a CI size, a stage that kept the CI's fp32 / ZeRO-0, a data path that does not exist), the jobs it launches
(they must be the Snakemake rules' CLIs) and the numbers it summarises.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from setok.config import resolve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def check() -> ModuleType:
    path = ROOT / "benchmarks" / "paper_scale_check.py"
    spec = importlib.util.spec_from_file_location("paper_scale_check", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_scale_check"] = module
    spec.loader.exec_module(module)
    return module


def test_models_and_stage_settings_are_the_papers_with_random_weights(check):
    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    raw = check.paper_scale_config(llm_layers=16, steps=3)
    cfg = resolve(raw, raw["default_variant"])
    # every tokenizer setting is paper.yaml's but the pretrained weights (no hub on the GPU machines)
    tok = dict(raw["tokenizer"], backbone=dict(raw["tokenizer"]["backbone"], pretrained="webli"))
    assert tok == paper["tokenizer"]
    assert cfg.tokenizer.backbone.model_name == "ViT-SO400M-14-SigLIP-384" and cfg.tokenizer.backbone.image_size == 384
    assert (cfg.tokenizer.merger.inner_layers, cfg.tokenizer.merger.inter_layers, cfg.tokenizer.merger.dim) == \
        (12, 8, 512)
    llm = cfg.mllm.llm
    assert llm.source == "random" and llm.dtype == "bfloat16"
    assert {k: llm.model_config[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads")} == \
        {"hidden_size": 4096, "intermediate_size": 11008, "num_attention_heads": 32}
    assert llm.model_config["num_hidden_layers"] == 16
    assert cfg.mllm.lora.r == paper["mllm"]["lora"]["r"]
    assert cfg.mllm.diffloss.width == paper["mllm"]["diffloss"]["width"]
    for stage in check.STAGES:
        s, p = getattr(cfg, stage), paper[stage]
        assert (s.precision, s.zero_stage, s.optimizer, s.micro_batch_size) == \
            (p["precision"], p["zero_stage"], p["optimizer"], p["micro_batch_size"]), stage
        assert s.batch_size == s.micro_batch_size and s.steps == 3 == s.checkpoint_every, stage
        if "activation_checkpointing" in p:
            assert s.activation_checkpointing == p["activation_checkpointing"], stage


def test_data_are_the_ci_fixtures_and_exist(check):
    ci = yaml.safe_load((ROOT / "config/ci.yaml").read_text())
    cfg = resolve(raw := check.paper_scale_config(llm_layers=16, steps=3), raw["default_variant"])
    for stage in check.STAGES:
        assert list(getattr(cfg, stage).sources) == ci[stage]["sources"], stage
        for name in getattr(cfg, stage).sources:
            src = cfg.datasets[name]
            for path in (getattr(src, "root", None), getattr(src, "annotations", None)):  # as its kind has them
                assert path is None or (ROOT / path).exists(), f"{stage}: {name}: {path}"
    for bench in check.PREDICT:
        assert bench in cfg.benchmarks and cfg.benchmarks[bench].predictions == check.PREDICT[bench]


def test_ci_sizes_keep_the_ci_models_and_stage_settings(check):
    ci = yaml.safe_load((ROOT / "config/ci.yaml").read_text())
    raw = check.paper_scale_config(llm_layers=16, steps=2, sizes="ci")
    cfg = resolve(raw, raw["default_variant"])
    assert cfg.tokenizer.backbone.model_name == ci["tokenizer"]["backbone"]["model_name"]
    assert cfg.mllm.llm.model_config == ci["mllm"]["llm"]["model_config"]
    assert cfg.train_stage2.precision == "fp32" and cfg.train_stage2.steps == 2


def test_jobs_are_the_rules_clis_chained_through_the_out_folder(check, tmp_path):
    jobs = dict(check.commands(tmp_path, device="cuda"))
    s2 = jobs["train_stage2"]
    assert s2[1:7] == ["-m", "setok.launch", "--gpus", "1", "--nodes", "1"]
    assert s2[s2.index("--stage") + 1] == "stage2"
    assert s2[s2.index("--init") + 1] == str(tmp_path / "stage1/mask_decoder/model.pt")
    assert jobs["train_mask_decoder"][jobs["train_mask_decoder"].index("--init") + 1] == \
        str(tmp_path / "stage1/model.pt")
    pred = jobs["predict refcoco+"]
    assert pred[pred.index("--model") + 1] == str(tmp_path / "stage2/model.pt")
    assert pred[pred.index("--out") + 1] == str(tmp_path / "predictions/refcoco+.json")
    assert list(jobs)[:4] == list(check.STAGES)


def test_summary_of_a_stage_log(check, tmp_path):
    run = tmp_path / "stage1"
    run.mkdir()
    rows = [{"step": 1, "seconds": 40.0, "loss": 9.0, "max_memory_gb": 70.5},
            {"step": 2, "seconds": 42.0, "loss": 8.0, "max_memory_gb": 71.25},
            {"step": 3, "seconds": 44.5, "loss": 7.5, "max_memory_gb": 71.0}]
    (run / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = check.stage_summary(run)
    # the first step carries start-up and kernel compilation: (44.5 - 40) / 2 steps after it
    assert s == {"steps": 3, "seconds_per_step": 2.25, "max_memory_gb": 71.25, "loss": 7.5}
    text = check.report(tmp_path, [("train_stage1", 61.2, 0), ("train_stage2", 3.0, 1)], what="x", device="cuda")
    assert "| train_stage1 | 0 | 61 | 3 | 2.25 | 71.2 GB | 7.500 |" in text
    assert "| train_stage2 | 1 | 3 | — | — | — | — |" in text
