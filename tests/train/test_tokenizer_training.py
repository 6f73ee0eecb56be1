"""The SeTok trainer: atomic checkpoints, and an interrupted run resumes to the same weights."""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from hand_training import HandOptimizer, moved  # tests/train is on sys.path (pytest rootdir import)

from setok.config import deep_merge, resolve
from setok.data import build_datasets, collate
from setok.modeling.build import build_setok
from setok.modeling.losses import concept_contrastive_loss, concept_similarities
from setok.train.concepts import sample_concepts
from setok.train.schedule import StepBatchSampler
from setok.train.tokenizer import train

ROOT = Path(__file__).resolve().parents[2]


# L_rec as the MSE alone (loss.objective: pixel, rec: mse), which the hand replay below writes out; the VQGAN objective
# of the paper and CI configs is tested in test_setok_objective.py.
MSE = {"objective": "pixel", "rec": "mse"}


def tiny_config(*, loss: dict | None = None, **train_overrides):
    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {
        "train_tokenizer": {"steps": 4, "batch_size": 4, "micro_batch_size": 2, "checkpoint_every": 2,
                            "log_every": 1, "warmup_steps": 1, **train_overrides},
        "datasets": {"bundled": {"limit": 6}},
        "tokenizer": {"backbone": {"image_size": 32}, "clustering": {"max_tokens": 8},
                      "loss": MSE if loss is None else loss},
    })
    return resolve(raw, "hard_cluster")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    final = train(tiny_config(), out)
    return out, torch.load(final, weights_only=True)


def test_training_writes_model_log_config_and_checkpoints(uninterrupted):
    out, ckpt = uninterrupted
    assert ckpt["step"] == 4
    rows = [yaml.safe_load(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and "contrastive" in r and r["tokens"] >= 1 for r in rows)
    # the spread of tokens per image, not only the mean (a clustering stuck at 1 token or at the cap shows)
    assert all(1 <= r["tokens_min"] <= r["tokens"] <= r["tokens_max"] <= 8 and r["tokens_std"] >= 0 for r in rows)
    assert (out / "checkpoints" / "latest").read_text().strip() == "step00000004"
    assert not list((out / "checkpoints").glob(".tmp-*"))
    assert yaml.safe_load((out / "config.yaml").read_text())["name"] == "hard_cluster"


def test_interrupted_training_resumes_to_the_same_weights(uninterrupted, tmp_path):
    _, full = uninterrupted
    # Stop after step 3, as a kill between checkpoints would: step 3 is lost and redone from checkpoint 2.
    assert train(tiny_config(), tmp_path, stop_after=3) is None
    assert not (tmp_path / "model.pt").exists()  # Snakemake sees the stage as not done
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step00000002"
    resumed = torch.load(train(tiny_config(), tmp_path), weights_only=True)
    assert resumed["step"] == 4
    for k, v in full["weights"].items():
        torch.testing.assert_close(resumed["weights"][k], v, rtol=0, atol=0, msg=k)


# SigLIP's pooling head, which SeTok never reads (it takes the patch tokens): trainable, but no loss reaches it.
NO_GRADIENT = {"encoder.visual.proj", "encoder.visual.ln_post.weight", "encoder.visual.ln_post.bias"}


def test_every_step_is_eq3_and_adamw_written_out_by_hand(uninterrupted):
    """The run replayed in plain PyTorch: the same initial weights (seed), each step's global batch from
    StepBatchSampler in micro-batches, Eq. (3) written out (MSE reconstruction of the bicubic target in [-1, 1] +
    the concept contrastive loss), and hand_training.HandOptimizer. Every logged loss (the step's last micro-batch,
    at the weights before the step) and every final weight agree; a loss term dropped or mis-weighted, a batch
    read twice, a missing 1/accumulation or clipping, a module cut off from the loss all break one of them.

    Tolerances: losses 1e-5 relative (measured 1e-7: the same float32 ops); weights 2e-6 absolute (measured 2e-7:
    DeepSpeed's clip_grad_norm_ sums the norm in another order, and Adam's normalised step turns that rounding into
    a small share of one step, lr = 3e-4, while a wrong gradient moves a weight by up to a whole step). Weights whose
    gradient is zero by construction (a conv bias just before a GroupNorm, the key bias of an attention; measured
    |g| < 6e-8 against > 6e-4 for all others) are moved by rounding noise that Adam scales up to a step, so they are
    only held to lr x steps.
    """
    out, final = uninterrupted
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    cfg = tiny_config()
    tc, lc, size = cfg.train_tokenizer, cfg.tokenizer.loss, cfg.tokenizer.detokenizer.image_size
    assert (lc.objective, lc.rec) == ("pixel", "mse") and tc.steps == 4
    torch.manual_seed(tc.seed)  # as train() does before building the model
    model, text = build_setok(cfg.tokenizer)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    dataset = build_datasets([cfg.datasets[s] for s in tc.sources], image_size=cfg.tokenizer.backbone.image_size)
    sampler = StepBatchSampler(num_samples=len(dataset), batch_size=tc.batch_size,
                               micro_batch_size=tc.micro_batch_size, steps=tc.steps, seed=tc.seed)
    assert sampler.accumulation == 2
    opt = HandOptimizer([model], tc)
    peak = {n: torch.zeros_like(p) for n, p in model.named_parameters()}  # largest |gradient| of every element
    for step in range(tc.steps):
        opt.zero_grad()
        ids = sampler.global_batch(step)
        for k in range(sampler.accumulation):
            batch = collate([dataset[i] for i in ids[k * tc.micro_batch_size:(k + 1) * tc.micro_batch_size]])
            target = F.interpolate(batch["image"], size=(size, size), mode="bicubic", antialias=True,
                                   align_corners=False) * 2 - 1
            tok, recon = model(batch["image"])
            rec = ((recon - target) ** 2).mean()
            prompts, valid = sample_concepts(batch["labels"], batch["contrastive"].tolist(), k=lc.objects_per_image,
                                             templates=list(lc.prompt_templates),
                                             generator=torch.Generator().manual_seed(tc.seed * 7919 + step))
            texts = text(prompts).view(len(prompts) // lc.objects_per_image, lc.objects_per_image, -1)
            sim = concept_similarities(model.embed(tok.tokens, tok.valid), texts)
            con = concept_contrastive_loss(sim, valid, model.logit_scale.exp())
            loss = lc.rec_weight * rec + lc.contrastive_weight * con
            (loss / sampler.accumulation).backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                peak[n] = torch.maximum(peak[n], p.grad.abs())
        if step == 0:  # every trainable module is reached by the objective; the frozen text encoder is not trained
            silent = {n for n, p in model.named_parameters() if p.requires_grad and not bool(peak[n].max() > 0)}
            assert silent == NO_GRADIENT
            assert not any(p.requires_grad for p in text.parameters())
        row = rows[step]
        assert row["step"] == step + 1
        for key, value in (("loss", loss), ("rec", rec), ("contrastive", con)):
            assert row[key] == pytest.approx(value.item(), rel=1e-5), (step + 1, key)
        opt.step()
    assert final["step"] == 4
    for n, p in model.named_parameters():
        atol = torch.where(peak[n] < 1e-6, tc.lr * tc.steps, 2e-6)
        diff = (final["weights"][n] - p.detach()).abs()
        assert bool((diff <= atol).all()), f"{n}: off by {diff.max().item():.3g}"
    for n, b in model.named_buffers():
        if n in final["weights"]:
            torch.testing.assert_close(final["weights"][n], b, rtol=0, atol=2e-6, msg=n)
    # ... and training moved every trainable tensor but the pooling head's 1-D ones (no gradient and no weight decay)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable - moved(initial, final["weights"]) == NO_GRADIENT - {"encoder.visual.proj"}


def test_loss_runs_on_a_bfloat16_model():
    """The paper config trains in bf16: images are cast to the weights' dtype and the target to the output's. The bf16
    loss is the float32 loss of the same weights and batch to bf16 precision (10%; measured 0.3% on the reconstruction
    term, 4% on the contrastive one, whose similarities are divided by a temperature of 0.07 after rounding to bf16's
    8 mantissa bits), and its gradient reaches the same parameters."""
    from setok.train.tokenizer import setok_loss

    cfg = tiny_config()
    torch.manual_seed(0)
    model, text = build_setok(cfg.tokenizer)
    image = torch.rand(2, 3, 32, 32)
    batch = {"labels": [["cat"], ["dog", "ball"]], "contrastive": torch.tensor([True, True])}
    loss32, logs32 = setok_loss(model, text, {**batch, "image": image}, cfg, step=0)
    loss32.backward()
    reached = {n for n, p in model.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
    model.zero_grad(set_to_none=True)
    model = model.to(torch.bfloat16)
    loss, logs = setok_loss(model, text, {**batch, "image": image.to(torch.bfloat16)}, cfg, step=0)
    loss.backward()
    assert loss.dtype == torch.bfloat16 and torch.isfinite(loss)
    for key in ("loss", "rec", "contrastive"):
        assert logs[key] == pytest.approx(logs32[key], rel=0.1), key
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for n, p in model.named_parameters() if n in reached)
    assert {n for n, p in model.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)} >= \
        {n for n in reached if n.startswith(("merger.", "detokenizer."))}


def test_training_an_uncalibrated_config_says_so(tmp_path, caplog):
    """A config whose clustering the workflow would calibrate, trained directly, warns that its values are guesses."""
    import logging

    from setok.config import load_config
    from setok.train.tokenizer import train

    cfg = load_config([str(ROOT / "config" / "paper.yaml"), str(ROOT / "config" / "ci.yaml")], "no_pe")
    assert cfg.tokenizer.calibrates and cfg.tokenizer.calibration.calibrated is None
    with caplog.at_level(logging.WARNING, logger="setok.train"):
        train(cfg, tmp_path, stop_after=1)
    assert any("carries no calibrated values" in r.getMessage() for r in caplog.records)
