"""What a stage trains of the LLM (``train_<stage>.llm``: full | frozen | lora; paper-notes S7, S17-S19): the config's
switch and rules, the trainable set each mode leaves, a frozen Stage I that leaves the LLM bit-identical, a full
Stage II that moves it and whose ``model.pt`` reloads and predicts, and the LLaVA-1.5 recipe of the LLaVA-setting
variants."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml
from test_mllm_training import tiny_config  # tests/train is on sys.path (rootdir import)

from setok.config import Config, ConfigError, deep_merge, dump, from_dict, load_config, read_yaml, resolve, to_dict
from setok.model_file import write_model
from setok.modeling.build import build_semhitokim, build_setok, build_setokim, load_setokim
from setok.train.mllm import _frozen_setok, train

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "config" / "paper.yaml"
# LLaVA-1.5 (scripts/v1_5/pretrain.sh, finetune.sh): blip_laion_cc_sbu_558k.json and llava_v1_5_mix665k.json sizes
LLAVA_PRETRAIN, LLAVA_MIX665K = 558_128, 665_298
LLAVA_SETTING = ["setok_llava", "semhitok_llava", "semhitok_t7_semantic", "semhitok_t7_sghc", "semhitok_t7_dual_mlp",
                 "semhitok_t7_enhance", "semhitok_vq_norm_48", "semhitok_vq_vanilla_48", "semhitok_vq_ema_32",
                 "semhitok_vq_ema_64"]


def test_llm_switch_defaults_and_stage1_refuses_lora():
    """Today's behaviour is each stage's default (Stage I full, Stage II LoRA), in the dataclasses and in the paper
    config; Stage I cannot be LoRA (the next stages read its model.pt as plain weights)."""
    assert Config().train_stage1.llm == "full" and Config().train_stage2.llm == "lora"
    cfg = load_config(PAPER, "hard_cluster")
    assert (cfg.train_stage1.llm, cfg.train_stage2.llm) == ("full", "lora")
    raw = deep_merge(read_yaml(PAPER), {"train_stage1": {"llm": "lora"}})
    with pytest.raises(ConfigError, match="train_stage1.llm"):
        resolve(raw)
    with pytest.raises(ConfigError, match="train_stage2.llm"):
        resolve(deep_merge(read_yaml(PAPER), {"train_stage2": {"llm": "qlora"}}))


def test_stage2_decisions_per_paper():
    """SeTokIM keeps LoRA in Stage II (the official finetune.sh, the project page; S7); SemHiTok's unified MLLM
    fine-tunes fully ("we finetune the model" as VILA-U and UniTok; S19); the comparison row keeps SeTokIM's recipe."""
    assert load_config(PAPER, "hard_cluster").train_stage2.llm == "lora"
    semhitok = load_config(PAPER, "semhitok").train_stage2
    assert semhitok.llm == "full" and semhitok.lr == 2e-5
    assert load_config(PAPER, "semhitok_same_recipe").train_stage2.llm == "lora"


@pytest.mark.parametrize("variant", LLAVA_SETTING)
def test_llava_setting_variants_train_llava_15s_recipe(variant):
    """Stage I: the LLM frozen, lr 1e-3, one epoch of 558K at batch 256; Stage II: full fine-tune, lr 2e-5, one
    epoch of 665K at batch 128; both warm-up ratio 0.03 then cosine, weight decay 0, AdamW's default betas."""
    cfg = load_config(PAPER, variant)
    s1, s2 = cfg.train_stage1, cfg.train_stage2
    assert (s1.llm, s1.lr, s1.batch_size, s1.sources, s1.language_ratio) == ("frozen", 1e-3, 256, ["llava_pretrain"],
                                                                               0.0)
    assert s1.steps == math.ceil(LLAVA_PRETRAIN / 256)
    assert (s2.llm, s2.lr, s2.batch_size, s2.sources) == ("full", 2e-5, 128, ["llava_mix665k"])
    assert s2.steps == math.ceil(LLAVA_MIX665K / 128)
    for s in (s1, s2):
        assert s.warmup_steps == math.ceil(0.03 * s.steps) and s.weight_decay == 0.0 and s.betas == [0.9, 0.999]


def test_every_variant_on_llava_data_alone_trains_llava_15s_modes():
    """No variant trains on LLaVA-1.5's data alone in another recipe: the list above is all of them."""
    raw = read_yaml(PAPER)
    on_llava = {v: load_config(PAPER, v) for v in raw["variants"]}
    on_llava = {v: c for v, c in on_llava.items() if c.train_stage1.sources == ["llava_pretrain"]}
    assert sorted(on_llava) == sorted(LLAVA_SETTING)
    assert {(c.train_stage1.llm, c.train_stage2.llm) for c in on_llava.values()} == {("frozen", "full")}


def _trainable_lm(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.lm.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("family", ["setok", "semhitok"])
def test_each_mode_leaves_its_trainable_set(family):
    """frozen: no LLM weight, the projectors / adapter and heads; full: every LLM weight, no LoRA module; lora: the
    adapters and the [Img]/[/Img] rows only (today's peft path), the heads still trainable."""
    from setok.train.mllm import prepare_llm

    cfg = tiny_config()
    for mode in ("frozen", "full", "lora"):
        if family == "setok":
            model, tokenizer, _ = build_setokim(cfg, token_dim=16, image_dim=16)
            heads = [model.input_projector, model.output_projector, model.eoi_head, model.diffloss]
        else:
            model, tokenizer = build_semhitokim(cfg)
            heads = [model.adapter, model.image_head]
        lora = prepare_llm(model, mode, lora=cfg.mllm.lora, tokenizer=tokenizer)
        assert lora == (mode == "lora")
        names = {n for n, _ in model.lm.named_parameters()}
        trainable = _trainable_lm(model)
        if mode == "frozen":
            assert not trainable
        elif mode == "full":
            assert trainable == names and not any("lora_" in n or "trainable_tokens" in n for n in names)
        else:
            assert trainable and all("lora_" in n or "trainable_tokens" in n for n in trainable)
            assert any("lora_" in n for n in trainable) and any("trainable_tokens" in n for n in trainable)
        assert all(p.requires_grad for m in heads for p in m.parameters()), mode
    with pytest.raises(ValueError, match="unknown LLM training mode"):
        prepare_llm(model, "qlora", lora=cfg.mllm.lora, tokenizer=tokenizer)


@pytest.fixture(scope="module")
def llava_recipe(tmp_path_factory):
    """SeTokIM through a frozen-LLM Stage I and a fully fine-tuned Stage II (the LLaVA-1.5 recipe's two modes)."""
    base = tiny_config()
    cfg = from_dict(Config, deep_merge(to_dict(base), {"train_stage1": {"llm": "frozen"},
                                                       "train_stage2": {"llm": "full"}}))
    root = tmp_path_factory.mktemp("llm_modes")
    torch.manual_seed(0)
    setok, _ = build_setok(cfg.tokenizer)
    tokenizer = root / "tokenizer.pt"
    write_model(tokenizer, family="setok", stage="tokenizer", weights=setok.state_dict(), config=to_dict(cfg),
                config_sha="", step=0)
    s1 = train(cfg, "stage1", root / "stage1", tokenizer_model=tokenizer)
    s2 = train(cfg, "stage2", root / "stage2", tokenizer_model=tokenizer, init=s1)
    return cfg, root, tokenizer, s1, s2


def test_frozen_stage1_leaves_the_llm_bit_identical(llava_recipe):
    cfg, _, tokenizer, s1, _ = llava_recipe
    torch.manual_seed(cfg.train_stage1.seed)  # train()'s seed and build order give the initial weights
    setok = _frozen_setok(cfg, tokenizer, torch.device("cpu"))
    model, _, _ = build_setokim(cfg, token_dim=setok.merger.proj.out_features, image_dim=setok.encoder.width)
    initial = model.state_dict()
    after = torch.load(s1, weights_only=True)
    assert not after["lora"]
    llm = [k for k in initial if k.startswith("lm.")]
    assert llm
    for k in llm:
        assert torch.equal(after["weights"][k], initial[k]), k
    assert not torch.equal(after["weights"]["input_projector.0.weight"], initial["input_projector.0.weight"])


def test_full_stage2_moves_the_llm_without_lora_and_reloads(llava_recipe):
    _, _, _, s1, s2 = llava_recipe
    before, after = torch.load(s1, weights_only=True), torch.load(s2, weights_only=True)
    assert not after["lora"] and not any("lora_" in k or "trainable_tokens" in k for k in after["weights"])
    assert set(after["weights"]) == set(before["weights"])
    moved = [k for k in after["weights"] if k.startswith("lm.") and not torch.equal(after["weights"][k],
                                                                                      before["weights"][k])]
    assert any(".layers." in k for k in moved) and "lm.model.embed_tokens.weight" in moved
    model, _, _, cfg = load_setokim(s2)
    state = model.state_dict()
    assert set(state) == set(after["weights"])
    for k, v in after["weights"].items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0, msg=k)


def test_full_stage2_model_predicts(llava_recipe, tmp_path):
    from evaluation.predict.mllm import predict

    cfg, _, tokenizer, _, s2 = llava_recipe
    bench = {k: (str(ROOT / v) if isinstance(v, str) and v.startswith("tests/") else v)
             for k, v in to_dict(cfg.benchmarks["vqav2"]).items()}
    bench["limit"] = 2
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(dump(from_dict(Config, deep_merge(to_dict(cfg), {"benchmarks": {"vqav2": bench}}))))
    rows = yaml.safe_load(predict(s2, tokenizer, cfg_file, "vqav2", tmp_path / "vqav2.json").read_text())
    assert len(rows) == 2 and all(isinstance(r["answer"], str) for r in rows)
