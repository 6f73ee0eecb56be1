"""SeTokIM training stages on the CI fixtures: Stage-I, the mask decoder alone, Stage-II with LoRA; exact resume."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from hand_training import mllm_micro_batch, moved, reached, text_ids  # tests/train is on sys.path (rootdir import)

from setok.config import Config as _Config
from setok.config import deep_merge, from_dict, resolve, to_dict
from setok.io import torch_save
from setok.model_file import write_model
from setok.modeling.build import build_mask_decoder, build_setok, build_setokim, load_setokim
from setok.train.mllm import _frozen_setok, _tokenize, cfg_drop, train, training_mode
from setok.train.mllm_batch import build_sequences, image_token_lists

ROOT = Path(__file__).resolve().parents[2]
STAGE = {"steps": 2, "batch_size": 2, "micro_batch_size": 2, "checkpoint_every": 1, "log_every": 1,
         "warmup_steps": 1}


def tiny_config():
    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {
        "train_stage1": STAGE, "train_mask_decoder": STAGE, "train_stage2": STAGE,
        "tokenizer": {"backbone": {"image_size": 32}, "clustering": {"max_tokens": 8}},
    })
    for name, src in raw["datasets"].items():  # fixture paths relative to the repository, wherever pytest runs
        for key in ("root", "annotations"):
            if isinstance(src.get(key), str) and src[key].startswith("tests/"):
                src[key] = str(ROOT / src[key])
    return resolve(raw, "hard_cluster")


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    cfg = tiny_config()
    root = tmp_path_factory.mktemp("mllm")
    torch.manual_seed(0)
    setok, _ = build_setok(cfg.tokenizer)
    tokenizer = root / "tokenizer.pt"
    write_model(tokenizer, family="setok", stage="tokenizer", weights=setok.state_dict(),
                config=to_dict(cfg), config_sha="", step=0)
    s1 = train(cfg, "stage1", root / "stage1", tokenizer_model=tokenizer)
    md = train(cfg, "mask_decoder", root / "md", tokenizer_model=tokenizer, init=s1)
    s2 = train(cfg, "stage2", root / "stage2", tokenizer_model=tokenizer, init=md)
    load = lambda p: torch.load(p, weights_only=True)  # noqa: E731
    return cfg, root, tokenizer, {"stage1": load(s1), "mask_decoder": load(md), "stage2": load(s2)}, s2


def test_stage1_step1_losses_by_hand_and_only_the_reached_weights_train(stages):
    """Step 1's logged text and end-of-image losses are Eq. (4)'s cross-entropy and BCE recomputed by hand from the
    initial model (train()'s seed and build order) and the step's micro-batch (1e-6 relative: the same float32 ops,
    measured equal); the logged total is text + vis_weight * vis + eoi_weight * eoi (the diffusion term's noise comes
    from the trainer's RNG stream, so only its weight is checked here; tests/modeling/test_diffloss.py checks it).

    The weights the two steps moved are exactly those the hand step-1 gradient reaches (step 2 generates no image):
    the whole LLM, the input projector, the end-of-image head and the diffusion head's zero-initialised output layer.
    MAR's zero initialisation keeps the rest of the diffusion MLP and the output projector at a zero gradient until
    step 3 (tests/modeling/test_mllm.py trains past it). Nothing else moves and the mask decoder is not trained."""
    cfg, root, tokenizer, ckpts, _ = stages
    rows = [json.loads(line) for line in (root / "stage1" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and "vis" in rows[0] and "vis" not in rows[1]
    sc, cpu = cfg.train_stage1, torch.device("cpu")
    assert sc.weight_decay == 0 and sc.batch_size == sc.micro_batch_size  # moved <=> had a gradient; 1 micro-batch
    torch.manual_seed(sc.seed)
    setok = _frozen_setok(cfg, tokenizer, cpu)
    token_dim = setok.merger.proj.out_features
    model, tok, mask_decoder = build_setokim(cfg, token_dim=token_dim, image_dim=setok.encoder.width)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    training_mode(model)
    raw = mllm_micro_batch(cfg, sc, image_size=cfg.tokenizer.backbone.image_size)
    image_tokens, selected = _tokenize(setok, raw, overlap=cfg.mllm.segment_overlap, dev=cpu)
    special, tokenize = text_ids(tok)
    batch = build_sequences(raw, image_token_lists(image_tokens.tokens, image_tokens.valid, selected,
                                                   limit=sc.max_image_tokens),
                            template=sc.template, drop=cfg_drop(raw, p=cfg.mllm.cfg_dropout, seed=sc.seed, step=0,
                                                                micro=0),
                            tokenize=tokenize, ids=special, token_dim=token_dim, max_length=cfg.mllm.max_length)
    # the LLM's own head over every position, not the model's head over the supervised ones
    out = model.lm(inputs_embeds=model.embed(batch), attention_mask=batch.attention_mask, output_hidden_states=True)
    logits, h = out.logits, out.hidden_states[-1]
    text = F.cross_entropy(logits.flatten(0, 1), batch.labels.flatten(), ignore_index=-100)
    gen = batch.visual_train  # the visual tokens to generate; token k is predicted from the state one position earlier
    before = torch.zeros_like(batch.visual)
    before[:, :-1] = batch.visual[:, 1:]
    eoi = F.binary_cross_entropy_with_logits(model.eoi_head(h[batch.visual])[gen, 0], batch.visual_last[gen].float())
    vis = model.diffloss(batch.visual_tokens[gen], model.output_projector(h[before])[gen])
    assert rows[0]["text"] == pytest.approx(text.item(), rel=1e-6)
    assert rows[0]["eoi"] == pytest.approx(eoi.item(), rel=1e-6)
    assert rows[0]["loss"] == pytest.approx(rows[0]["text"] + model.vis_weight * rows[0]["vis"]
                                            + model.eoi_weight * rows[0]["eoi"], rel=1e-6)
    (text + model.vis_weight * vis + model.eoi_weight * eoi).backward()
    grads = reached(model)
    names = {n for n, _ in model.named_parameters()}
    assert {n for n in names if n.startswith(("lm.", "input_projector.", "eoi_head.", "diffloss.net.final.linear."))} \
        == grads
    assert moved(initial, ckpts["stage1"]["weights"]) == grads
    for k, v in mask_decoder.state_dict().items():
        assert torch.equal(ckpts["stage1"]["mask_decoder"][k], v), k
    assert ckpts["stage1"]["stage"] == "stage1" and not ckpts["stage1"]["lora"]


def test_mask_decoder_stage_changes_only_the_mask_decoder(stages):
    """Step 1's logged loss is 2 BCE + 0.5 Dice (LISA's weights) written out by hand for the mask decoder of the
    Stage-I model.pt prompted by the object's SeTok tokens on the step's micro-batch (1e-6 relative: the same float32
    ops); every mask-decoder weight then trains and no Stage-I weight moves."""
    cfg, root, tokenizer, ckpts, _ = stages
    a, b = ckpts["stage1"], ckpts["mask_decoder"]
    for k, v in a["weights"].items():
        torch.testing.assert_close(b["weights"][k], v, rtol=0, atol=0, msg=k)
    sc, cpu = cfg.train_mask_decoder, torch.device("cpu")
    assert sc.batch_size == sc.micro_batch_size
    setok = _frozen_setok(cfg, tokenizer, cpu)
    decoder = build_mask_decoder(cfg, token_dim=setok.merger.proj.out_features, image_dim=setok.encoder.width)
    decoder.load_state_dict(a["mask_decoder"])
    decoder.train()
    raw = mllm_micro_batch(cfg, sc, image_size=cfg.tokenizer.backbone.image_size)
    tok, selected = _tokenize(setok, raw, overlap=cfg.mllm.segment_overlap, dev=cpu)
    has = raw.has_region  # (N,) the images that carry an object's mask
    assert bool(has.any())
    logits = decoder(tok.features[has], tok.tokens[has], (tok.valid & selected)[has])[:, 0]  # (n, H', W')
    target = (F.interpolate(raw.regions[has][:, None].float(), size=logits.shape[-2:], mode="area")[:, 0] > 0.5).float()
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean((-2, -1)).mean()
    p = logits.sigmoid()
    dice = (1 - (2 * (p * target).sum((-2, -1)) + 1e-3) / (p.sum((-2, -1)) + target.sum((-2, -1)) + 1e-3)).mean()
    row = json.loads((root / "md" / "train_log.jsonl").read_text().splitlines()[0])
    assert row["step"] == 1 and row["objects"] == float(has.sum())
    assert row["loss"] == pytest.approx((2.0 * bce + 0.5 * dice).item(), rel=1e-6)
    trainable = {n for n, q in decoder.named_parameters() if q.requires_grad}
    assert trainable and moved(a["mask_decoder"], b["mask_decoder"]) == trainable


def test_stage2_lora_leaves_the_base_llm_weights_unchanged(stages):
    _, _, _, ckpts, _ = stages
    before, after = ckpts["mask_decoder"]["weights"], ckpts["stage2"]["weights"]
    lora = [k for k in after if "lora_" in k]
    assert lora, "Stage II saved no LoRA weights"
    moved = 0
    for k, v in after.items():
        if not k.startswith("lm.") or "lora_" in k or "trainable_tokens" in k:
            continue
        base = k.replace("lm.base_model.model.", "lm.").replace(".token_adapter", "").replace(".base_layer", "")
        torch.testing.assert_close(v, before[base], rtol=0, atol=0, msg=k)
        moved += 1
    assert moved > 0
    assert any(not torch.equal(after[k], torch.zeros_like(after[k])) for k in lora if "lora_B" in k)
    # the input projector keeps training in Stage II (every Stage-II batch of this seed reads an image)
    assert not torch.equal(after["input_projector.0.weight"], before["input_projector.0.weight"])
    for k, v in ckpts["mask_decoder"]["mask_decoder"].items():
        torch.testing.assert_close(ckpts["stage2"]["mask_decoder"][k], v, rtol=0, atol=0, msg=k)


def test_stage2_model_reloads_with_its_lora(stages):
    _, _, _, ckpts, s2 = stages
    model, tok, _, cfg = load_setokim(s2)
    assert cfg.name == "hard_cluster" and "[Img]" in tok.get_vocab()
    state = model.state_dict()
    for k, v in ckpts["stage2"]["weights"].items():
        torch.testing.assert_close(state[k], v, rtol=0, atol=0, msg=k)


def test_interrupted_stage1_resumes_to_the_same_weights(stages, tmp_path):
    cfg, _, tokenizer, ckpts, _ = stages
    assert train(cfg, "stage1", tmp_path, tokenizer_model=tokenizer, stop_after=1) is None
    assert not (tmp_path / "model.pt").exists()
    resumed = torch.load(train(cfg, "stage1", tmp_path, tokenizer_model=tokenizer), weights_only=True)
    for k, v in ckpts["stage1"]["weights"].items():
        torch.testing.assert_close(resumed["weights"][k], v, rtol=0, atol=0, msg=k)


def test_connector_baseline_trains_without_setok_and_answers_questions(tmp_path):
    """Table 13: the MLP connector variant trains both stages on reading samples only and answers VQAv2."""
    from evaluation.predict.mllm import predict
    from setok.config import Config as _Config
    from setok.config import dump, from_dict

    base = tiny_config()
    raw = deep_merge(to_dict(base), {"mllm": {"connector": {"kind": "mlp", "num_tokens": 16}}, "name": "mlp"})
    cfg = from_dict(_Config, raw)
    s1 = train(cfg, "stage1", tmp_path / "s1", tokenizer_model=None)
    s2 = train(cfg, "stage2", tmp_path / "s2", tokenizer_model=None, init=s1)
    ckpt = torch.load(s2, weights_only=True)
    keys = list(ckpt["weights"])
    assert any(k.startswith("connector.") for k in keys) and any(k.startswith("vision.") for k in keys)
    for k, v in torch.load(s1, weights_only=True)["weights"].items():
        if k.startswith("vision."):  # the SigLIP encoder stays frozen through both stages
            torch.testing.assert_close(ckpt["weights"][k], v, rtol=0, atol=0, msg=k)
    cfg_file = tmp_path / "config.yaml"
    bench = {k: (str(ROOT / v) if isinstance(v, str) and v.startswith("tests/") else v)
             for k, v in to_dict(cfg.benchmarks["vqav2"]).items()}
    cfg_file.write_text(dump(from_dict(_Config, deep_merge(to_dict(cfg), {"benchmarks": {"vqav2": bench}}))))
    out = predict(s2, None, cfg_file, "vqav2", tmp_path / "vqav2.json")
    rows = yaml.safe_load(out.read_text())
    assert rows and all(set(r) == {"question_id", "answer"} for r in rows)


def test_stage2_model_predicts_with_a_bf16_llm_beside_float32_heads(stages, tmp_path):
    """Paper precision at inference (``mllm.llm.dtype: bfloat16``): the LLM loads in bf16 while the projectors, the
    end-of-image head, the diffusion MLP and the mask decoder stay float32; answers, generated images and masks all
    come out (a dtype mismatch at any boundary is a RuntimeError)."""
    from evaluation.predict.mllm import predict
    from setok.config import Config as _Config
    from setok.config import dump, from_dict

    cfg, _, tokenizer, _, s2 = stages
    ckpt = torch.load(s2, weights_only=True)
    ckpt["config"]["mllm"]["llm"]["dtype"] = "bfloat16"
    model_file = tmp_path / "model_bf16.pt"
    torch_save(ckpt, model_file)
    model, _, mask_decoder, _ = load_setokim(model_file)
    assert model.lm.get_input_embeddings().weight.dtype == torch.bfloat16
    assert {p.dtype for p in (*model.diffloss.parameters(), *model.input_projector.parameters(),
                              model.eoi_head.weight, *mask_decoder.parameters())} == {torch.float32}
    benches = {}
    for name in ("vqav2", "coco_fid", "refcoco+"):
        benches[name] = {k: (str(ROOT / v) if isinstance(v, str) and v.startswith("tests/") else v)
                         for k, v in to_dict(cfg.benchmarks[name]).items()}
        benches[name]["limit"] = 2
    cfg_file = tmp_path / "config.yaml"
    cfg_file.write_text(dump(from_dict(_Config, deep_merge(to_dict(cfg), {"benchmarks": benches}))))
    answers = yaml.safe_load(predict(model_file, tokenizer, cfg_file, "vqav2", tmp_path / "vqav2.json").read_text())
    assert len(answers) == 2 and all(isinstance(r["answer"], str) for r in answers)
    images = sorted(predict(model_file, tokenizer, cfg_file, "coco_fid", tmp_path / "coco_fid").iterdir())
    assert len(images) == 2
    masks = yaml.safe_load(predict(model_file, tokenizer, cfg_file, "refcoco+", tmp_path / "r.json").read_text())
    assert len(masks) == 2 and all("segmentation" in r for r in masks)


def test_zero3_stage_writes_the_full_weights_and_reloads(stages, tmp_path):
    """ZeRO-3 partitions every parameter; model.pt gathers them (it held zero-sized tensors) and reloads. The values
    written are those of the ZeRO-0 run of the same config, seed, data and steps (the ``stages`` fixture's Stage I).
    One rank, so no rank can skip a head: the config rejects ZeRO-3 for Stage I on several ranks (S10), and this
    checks the gather of ``_write_model`` that every MLLM stage shares (the mask-decoder phase may run ZeRO-3).

    Tolerance 2e-5 absolute on every weight, 1e-5 relative on the logged losses: ZeRO-3 runs the same AdamW on
    flattened fp32 partitions, so the sums of the gradient norm and of the flattened update differ from ZeRO-0's in
    their order only (measured: at most 3.7e-6, in input_projector.0.weight; 41 of 65 tensors bit-identical). Adam's
    normalised update lr * m / (sqrt(v) + eps) turns that rounding into at most a small share of one step, while a
    weight left at its initial or another partition's value is off by a whole step (lr = 1e-3) or more.
    """
    cfg, root, tokenizer, ckpts, _ = stages
    assert cfg.train_stage1.zero_stage == 0  # the fixture's Stage I is the ZeRO-0 reference
    cfg3 = from_dict(_Config, deep_merge(to_dict(cfg), {"train_stage1": {"zero_stage": 3}}))
    ckpt = torch.load(train(cfg3, "stage1", tmp_path, tokenizer_model=tokenizer), weights_only=True)
    zero0 = ckpts["stage1"]["weights"]
    assert {k: tuple(v.shape) for k, v in ckpt["weights"].items()} == {k: tuple(v.shape) for k, v in zero0.items()}
    for k, v in zero0.items():
        torch.testing.assert_close(ckpt["weights"][k], v, rtol=0, atol=2e-5, msg=k)
    rows = {name: [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
            for name, folder in (("zero0", root / "stage1"), ("zero3", tmp_path))}
    assert [r["step"] for r in rows["zero3"]] == [r["step"] for r in rows["zero0"]] == [1, 2]
    for a, b in zip(rows["zero0"], rows["zero3"]):
        for key in ("loss", "text", "vis", "eoi"):
            assert (key in a) == (key in b)
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-5), key
    model, _, _, _ = load_setokim(tmp_path / "model.pt")
    assert all(p.numel() for p in model.parameters())
