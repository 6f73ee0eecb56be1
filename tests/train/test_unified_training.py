"""The unified MLLM on SemHiTok trained with the SeTokIM trainer (tokenizer.kind: semhitok): Stage I and II on the
CI fixtures, the tokenizer's codebooks copied in and never changed, Stage II a full fine-tune (paper-notes S19; LoRA
on the base with ``train_stage2.llm: lora``), no mask decoder, and predictions written through the benchmark writers
(answers and generated images)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from hand_training import mllm_micro_batch, moved, reached, text_ids  # tests/train is on sys.path (rootdir import)

from setok.config import Config, deep_merge, dump, from_dict, resolve, to_dict
from setok.io import DataError, torch_save
from setok.model_file import write_model
from setok.modeling.build import build_semhitok, build_semhitokim, load_mllm, load_semhitok, semhitok_state
from setok.train.mllm import cfg_drop, train, training_mode
from setok.train.mllm_batch import build_sequences

ROOT = Path(__file__).resolve().parents[2]
STAGE = {"steps": 2, "batch_size": 2, "micro_batch_size": 2, "checkpoint_every": 1, "log_every": 1,
         "warmup_steps": 1}


def absolute(raw: dict) -> dict:
    """Fixture paths relative to the repository, wherever pytest runs."""
    for section in ("datasets", "benchmarks"):
        for src in raw[section].values():
            for key in ("root", "annotations", "questions", "images", "inputs"):
                if isinstance(src.get(key), str) and src[key].startswith("tests/"):
                    src[key] = str(ROOT / src[key])
    return raw


def tiny_config() -> Config:
    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {"train_stage1": STAGE, "train_stage2": STAGE})
    return resolve(absolute(raw), "semhitok")


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    cfg = tiny_config()
    root = tmp_path_factory.mktemp("unified")
    torch.manual_seed(0)
    tok = build_semhitok(cfg.tokenizer.semhitok, enhanced=True)
    tokenizer = root / "tokenizer.pt"
    write_model(tokenizer, family="semhitok", stage="pixel_decoder", weights=semhitok_state(tok), config=to_dict(cfg),
                config_sha="", step=0, discriminator=None, enhanced=True)
    s1 = train(cfg, "stage1", root / "stage1", tokenizer_model=tokenizer)
    s2 = train(cfg, "stage2", root / "stage2", tokenizer_model=tokenizer, init=s1)
    load = lambda p: torch.load(p, weights_only=True)  # noqa: E731
    return cfg, root, tokenizer, tok, load(s1), load(s2), s2


def test_stage1_trains_text_and_image_codes_and_copies_the_codebooks(stages):
    """Step 1's logged losses are the next-token cross-entropy over the joint vocabulary (text ids, then V + code
    for the code at each position of an image to generate) recomputed by hand from the initial model (train()'s seed
    and build order) and the step's micro-batch, overall and split into image and text targets (1e-6 relative: the
    same float32 ops, measured equal). Every trainable weight gets a gradient and moves; the codebooks do not."""
    cfg, root, tokenizer, tok, s1, _, _ = stages
    rows = [yaml.safe_load(line) for line in (root / "stage1" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    sc = cfg.train_stage1
    assert sc.batch_size == sc.micro_batch_size  # step 1 is one micro-batch
    torch.manual_seed(sc.seed)
    semhitok, _ = load_semhitok(tokenizer)
    model, text_tokenizer = build_semhitokim(cfg, semhitok=semhitok)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    training_mode(model)
    raw = mllm_micro_batch(cfg, sc, image_size=cfg.tokenizer.semhitok.semantic.backbone.image_size)
    with torch.no_grad():
        codes = semhitok.requires_grad_(False).flat(semhitok.encode(raw.images))
    special, tokenize = text_ids(text_tokenizer)
    batch = build_sequences(raw, list(codes), template=sc.template,
                            drop=cfg_drop(raw, p=cfg.mllm.cfg_dropout, seed=sc.seed, step=0, micro=0),
                            tokenize=tokenize, ids=special, token_dim=0, max_length=cfg.mllm.max_length)
    h = model.lm(inputs_embeds=model.embed(batch), attention_mask=batch.attention_mask,
                 output_hidden_states=True).hidden_states[-1]  # (B, L, H)
    vocab = model.lm.get_output_embeddings().weight.shape[0]
    logits = torch.cat([model.lm.get_output_embeddings()(h), model.image_head(h)], dim=-1)  # (B, L, V + K*m)
    target = batch.labels.clone()
    for (b, t), code, generate in zip(batch.visual.nonzero().tolist(), batch.visual_codes.tolist(),
                                      batch.visual_train.tolist()):
        if generate:
            target[b, t - 1] = vocab + code  # the code at t is predicted from position t - 1
    keep = target.flatten() != -100
    per = F.cross_entropy(logits.flatten(0, 1)[keep], target.flatten()[keep], reduction="none")
    image = target.flatten()[keep] >= vocab
    assert bool(image.any()) and bool((~image).any())
    assert rows[0]["loss"] == pytest.approx(per.mean().item(), rel=1e-6)
    assert rows[0]["image"] == pytest.approx(per[image].mean().item(), rel=1e-6)
    assert rows[0]["text"] == pytest.approx(per[~image].mean().item(), rel=1e-6)
    per.mean().backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and reached(model) == trainable
    assert moved(initial, s1["weights"]) == trainable
    assert s1["family"] == "semhitokim" and s1["mask_decoder"] is None
    torch.testing.assert_close(s1["weights"]["semantic_codes"], tok.semantic.quantizer.codebook, rtol=0, atol=0)
    torch.testing.assert_close(s1["weights"]["pixel_codes"], tok.sghc.codes().detach(), rtol=0, atol=0)
    assert s1["weights"]["image_head.weight"].shape[0] == tok.vocab_size


def test_stage2_fine_tunes_the_whole_llm_and_keeps_the_codebooks(stages):
    """SemHiTok's Stage II "finetune[s] the model" (as VILA-U and UniTok): no LoRA module, the LLM's layers, embedding
    and head move, the adapter keeps training, the codebooks stay the tokenizer's."""
    _, _, _, _, s1, s2, _ = stages
    before, after = s1["weights"], s2["weights"]
    assert not s2["lora"] and set(after) == set(before)
    for k in ("semantic_codes", "pixel_codes"):
        assert torch.equal(after[k], before[k])
    moved = {k for k in after if k.startswith("lm.") and not torch.equal(after[k], before[k])}
    assert any(".layers." in k for k in moved) and {"lm.model.embed_tokens.weight", "lm.lm_head.weight"} <= moved
    assert not torch.equal(after["adapter.sem.0.weight"], before["adapter.sem.0.weight"])


def test_stage2_lora_switch_keeps_base_and_codebooks(stages, tmp_path):
    """``train_stage2.llm: lora`` (the other reading): adapters on a frozen base."""
    cfg, root, tokenizer, _, s1, _, _ = stages
    lora_cfg = from_dict(Config, deep_merge(to_dict(cfg), {"train_stage2": {"llm": "lora"}}))
    s2 = torch.load(train(lora_cfg, "stage2", tmp_path / "stage2", tokenizer_model=tokenizer,
                          init=root / "stage1" / "model.pt"), weights_only=True)
    before, after = s1["weights"], s2["weights"]
    assert s2["lora"] and any("lora_" in k for k in after)
    for k in ("semantic_codes", "pixel_codes"):
        assert torch.equal(after[k], before[k])
    moved = 0
    for k, v in after.items():
        if not k.startswith("lm.") or "lora_" in k or "trainable_tokens" in k:
            continue
        base = k.replace("lm.base_model.model.", "lm.").replace(".token_adapter", "").replace(".base_layer", "")
        torch.testing.assert_close(v, before[base], rtol=0, atol=0, msg=k)
        moved += 1
    assert moved > 0
    assert not torch.equal(after["adapter.sem.0.weight"], before["adapter.sem.0.weight"])  # adapter keeps training


def test_no_mask_decoder_stage_and_no_segmentation_samples(stages, tmp_path):
    cfg, _, tokenizer, _, _, _, s2 = stages
    with pytest.raises(DataError, match="no mask decoder"):
        train(cfg, "mask_decoder", tmp_path / "md", tokenizer_model=tokenizer, init=s2)
    only_refcoco = {"train_stage1": {"sources": ["refcoco+"], "language_ratio": 0.0}}
    seg = from_dict(Config, deep_merge(to_dict(cfg), only_refcoco))
    with pytest.raises(DataError, match="referring-segmentation sample"):
        train(seg, "stage1", tmp_path / "seg", tokenizer_model=tokenizer)
    loaded = load_mllm(s2)
    assert loaded.family == "semhitok" and loaded.mask_decoder is None


def test_predictions_answers_and_generated_images(stages, tmp_path):
    from evaluation.predict.mllm import predict

    cfg, _, tokenizer, tok, _, _, s2 = stages
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(dump(cfg))
    out = predict(s2, tokenizer, cfg_file, "gqa", tmp_path / "gqa.json")
    rows = yaml.safe_load(out.read_text())
    assert rows and all(set(r) == {"questionId", "prediction"} for r in rows)
    folder = predict(s2, tokenizer, cfg_file, "coco_fid", tmp_path / "coco_fid")
    images = sorted(folder.iterdir())
    assert images
    from PIL import Image

    assert Image.open(images[0]).size == (tok.image_size, tok.image_size)


def test_predictions_with_a_bf16_llm_beside_float32_heads(stages, tmp_path):
    """Paper precision at inference: the Qwen/LLaMA body in bf16, the image head and Dual-MLP adapter float32; a
    question with an image and a generated image both come out (a dtype mismatch is a RuntimeError)."""
    from evaluation.predict.mllm import predict

    cfg, _, tokenizer, _, _, _, s2 = stages
    ckpt = torch.load(s2, weights_only=True)
    ckpt["config"]["mllm"]["llm"]["dtype"] = "bfloat16"
    model_file = tmp_path / "model_bf16.pt"
    torch_save(ckpt, model_file)
    loaded = load_mllm(model_file)
    assert loaded.model.lm.get_input_embeddings().weight.dtype == torch.bfloat16
    assert loaded.model.image_head.weight.dtype == torch.float32
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(dump(from_dict(Config, deep_merge(to_dict(cfg), {
        "benchmarks": {"gqa": {"limit": 2}, "coco_fid": {"limit": 2}}}))))
    rows = yaml.safe_load(predict(model_file, tokenizer, cfg_file, "gqa", tmp_path / "gqa.json").read_text())
    assert len(rows) == 2
    assert len(list(predict(model_file, tokenizer, cfg_file, "coco_fid", tmp_path / "coco_fid").iterdir())) == 2
