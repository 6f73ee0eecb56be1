"""The frozen tokenizer inside the MLLM stages (paper-notes S8): its precision (``mllm.tokenizer_precision``), and the
mask-decoder stage holding SeTok and the mask decoder only (no LLM)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from test_mllm_training import ROOT, tiny_config

import setok.train.mllm as mllm_trainer
from setok.config import Config, deep_merge, dump, from_dict, to_dict
from setok.io import DataError
from setok.model_file import write_model
from setok.modeling.build import build_setok, frozen_tokenizer_dtype
from setok.modeling.setok import SeTok
from setok.train.mllm import train

ONE_STEP = {"steps": 1, "checkpoint_every": 1}


def with_(cfg: Config, delta: dict) -> Config:
    return from_dict(Config, deep_merge(to_dict(cfg), delta))


def tokenizer_file(cfg: Config, path: Path, *, precision: str) -> Path:
    """A SeTok model.pt as ``setok.train.tokenizer`` writes it, trained (it says) at ``precision``."""
    torch.manual_seed(0)
    setok, _ = build_setok(cfg.tokenizer)
    trained = with_(cfg, {"train_tokenizer": {"precision": precision}})
    write_model(path, family="setok", stage="tokenizer", weights=setok.state_dict(),
                config=to_dict(trained), config_sha="", step=0)
    return path


def test_frozen_tokenizer_dtype_reads_the_tokenizers_own_training_stage():
    cfg = tiny_config()
    setok_bf16 = with_(cfg, {"train_tokenizer": {"precision": "bf16"}, "train_pixel_codebook": {"precision": "fp32"}})
    assert frozen_tokenizer_dtype("as_trained", setok_bf16) == torch.bfloat16
    assert frozen_tokenizer_dtype("fp32", setok_bf16) == torch.float32  # an explicit setting wins
    assert frozen_tokenizer_dtype("fp16", setok_bf16) == torch.float16
    # SemHiTok: the pixel-codebook stage's precision, not SeTok's train_tokenizer
    semhitok = with_(setok_bf16, {"tokenizer": {"kind": "semhitok"}})
    assert frozen_tokenizer_dtype("as_trained", semhitok) == torch.float32
    semhitok = with_(semhitok, {"train_pixel_codebook": {"precision": "bf16"},
                                "train_tokenizer": {"precision": "fp32"}})
    assert frozen_tokenizer_dtype("as_trained", semhitok) == torch.bfloat16
    with pytest.raises(ValueError, match="mllm.tokenizer_precision"):
        frozen_tokenizer_dtype("int8", cfg)


def test_a_bad_tokenizer_precision_is_rejected_with_its_key():
    from setok.config import ConfigError, resolve

    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {"mllm": {"tokenizer_precision": "half"}})
    with pytest.raises(ConfigError, match="mllm.tokenizer_precision"):
        resolve(raw, "hard_cluster")


@pytest.fixture
def spy_tokenize(monkeypatch):
    """Records ``(weight dtype, image dtype)`` of every SeTok.tokenize call."""
    calls: list[tuple[torch.dtype, torch.dtype]] = []
    original = SeTok.tokenize

    def tokenize(self, images):
        calls.append((next(self.parameters()).dtype, images.dtype))
        return original(self, images)

    monkeypatch.setattr(SeTok, "tokenize", tokenize)
    return calls


@pytest.mark.parametrize(("trained", "setting", "expected"), [
    ("bf16", "as_trained", torch.bfloat16),  # the tokens SeTok's merger was trained on
    ("fp32", "as_trained", torch.float32),
    ("bf16", "fp32", torch.float32),
])
def test_stage1_runs_the_frozen_setok_at_its_precision(tmp_path, spy_tokenize, trained, setting, expected):
    cfg = with_(tiny_config(), {"train_stage1": ONE_STEP, "mllm": {"tokenizer_precision": setting}})
    tok = tokenizer_file(cfg, tmp_path / "tokenizer.pt", precision=trained)
    out = train(cfg, "stage1", tmp_path / "s1", tokenizer_model=tok)
    assert out is not None and out.is_file()
    assert spy_tokenize and all(call == (expected, expected) for call in spy_tokenize)
    # the LLM and its heads keep their own precision (fp32 in the CI config)
    state = torch.load(out, weights_only=True)["weights"]
    assert state["input_projector.0.weight"].dtype == torch.float32


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    root = tmp_path_factory.mktemp("frozen")
    cfg = with_(tiny_config(), {"train_stage1": ONE_STEP, "train_mask_decoder": {"steps": 2, "checkpoint_every": 1},
                                "train_stage2": ONE_STEP, "mllm": {"tokenizer_precision": "bf16"}})
    tok = tokenizer_file(cfg, root / "tokenizer.pt", precision="bf16")
    return cfg, root, tok, train(cfg, "stage1", root / "s1", tokenizer_model=tok)


def test_mask_decoder_stage_builds_no_llm_and_passes_stage1_on(stage1, tmp_path, monkeypatch):
    cfg, _, tok, s1 = stage1

    def no_llm(*args, **kwargs):
        raise AssertionError("the mask-decoder stage built the LLM")

    monkeypatch.setattr(mllm_trainer, "build_setokim", no_llm)
    md = train(cfg, "mask_decoder", tmp_path / "md", tokenizer_model=tok, init=s1)
    a, b = torch.load(s1, weights_only=True), torch.load(md, weights_only=True)
    assert b["stage"] == "mask_decoder" and b["step"] == 2 and not b["lora"]
    assert (b["token_dim"], b["image_dim"]) == (a["token_dim"], a["image_dim"])
    assert a["weights"].keys() == b["weights"].keys()
    for k, v in a["weights"].items():
        torch.testing.assert_close(b["weights"][k], v, rtol=0, atol=0, msg=k)
    assert any(not torch.equal(a["mask_decoder"][k], b["mask_decoder"][k]) for k in a["mask_decoder"])


def test_mask_decoder_stage_rejects_a_tokenizer_of_another_width(stage1, tmp_path):
    cfg, _, _, s1 = stage1
    other = with_(cfg, {"tokenizer": {"merger": {"dim": cfg.tokenizer.merger.dim * 2}}})
    tok = tokenizer_file(other, tmp_path / "wide.pt", precision="bf16")
    with pytest.raises(DataError, match=r"tokens of width .* gives"):
        train(cfg, "mask_decoder", tmp_path / "md", tokenizer_model=tok, init=s1)


def test_predictor_segments_with_a_bf16_setok_and_an_fp32_mask_decoder(stage1, tmp_path):
    """Prediction runs SeTok at the training precision; the mask decoder reads its features in its own dtype."""
    from evaluation.predict.mllm import Predictor, predict

    cfg, root, tok, s1 = stage1
    md = train(cfg, "mask_decoder", root / "md", tokenizer_model=tok, init=s1)
    predictor = Predictor(md, tok)
    assert predictor.tokenizer_dtype == torch.bfloat16
    assert next(predictor.setok.parameters()).dtype == torch.bfloat16
    assert next(predictor.mask_decoder.parameters()).dtype == torch.float32
    bench = {k: (str(ROOT / v) if isinstance(v, str) and v.startswith("tests/") else v)
             for k, v in to_dict(cfg.benchmarks["refcoco+"]).items()}
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(dump(with_(cfg, {"benchmarks": {"refcoco+": bench}})))
    out = predict(md, tok, cfg_file, "refcoco+", tmp_path / "refcoco+.json")
    rows = yaml.safe_load(out.read_text())
    assert rows and all(set(r) == {"id", "segmentation"} for r in rows)
