"""The SemHiTok stages: the frozen semantic branch stays bit-identical through pixel training, exact resume,
pass-through stages, the enhanced decoder trained alone, and one-line errors for a wrong --init."""
import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from hand_training import moved  # tests/train is on sys.path (pytest rootdir import)

from setok.config import deep_merge, resolve
from setok.data import build_datasets, collate
from setok.io import DataError
from setok.model_file import write_model
from setok.train.schedule import StepBatchSampler
from setok.train.semhitok import train

ROOT = Path(__file__).resolve().parents[2]
STAGE = {"steps": 3, "batch_size": 4, "micro_batch_size": 2, "checkpoint_every": 2, "log_every": 1,
         "warmup_steps": 1}


def tiny_config(**overrides):
    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {
        **{f"train_{s}": STAGE for s in ("semantic_codebook", "pixel_codebook", "pixel_finetune", "pixel_decoder")},
        "datasets": {"bundled": {"limit": 6}},
        "tokenizer": {"semhitok": {"semantic": {"backbone": {"image_size": 32}}, "loss": {"disc_start": 1}}},
    })
    return resolve(deep_merge(raw, overrides), "semhitok")


def state(path: Path) -> dict:
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """semantic_codebook -> pixel_codebook -> pixel_decoder (enhanced), uninterrupted."""
    root = tmp_path_factory.mktemp("chain")
    cfg = tiny_config()
    sem = train(cfg, "semantic_codebook", root / "semantic")
    pix = train(cfg, "pixel_codebook", root / "pixel", init=sem)
    dec = train(cfg, "pixel_decoder", root / "tokenizer", init=pix)
    return root, state(sem), state(pix), state(dec)


def test_semantic_branch_is_bit_identical_after_pixel_training(chain):
    _, sem, pix, dec = chain
    semantic = {k: v for k, v in sem["weights"].items() if k.startswith("semantic.")}
    assert semantic and any(k.endswith("quantizer.embedding") for k in semantic)  # the EMA codebook itself
    for later in (pix, dec):
        for k, v in semantic.items():
            assert torch.equal(later["weights"][k], v), k
    # ... while the pixel branch did train.
    assert sem["stage"] == "semantic_codebook" and pix["stage"] == "pixel_codebook" and pix["step"] == 3
    rows = [yaml.safe_load(line) for line in (chain[0] / "pixel" / "train_log.jsonl").read_text().splitlines()]
    assert "adversarial" not in rows[0] and "adversarial" in rows[1] and "disc" in rows[2]  # warm-up: disc_start 1


def test_pixel_stage_logs_eq7_recomputed_by_hand_and_trains_exactly_its_modules(chain):
    """Eq. (7) written out: step 1's logged terms (last micro-batch, at the initial weights: the semantic model.pt
    and train()'s seed for the new pixel modules, discriminator and random LPIPS) and step 3's (at the weights of the
    step-2 checkpoint, the GAN on: the generator's -D(x_hat) and the hinge loss 0.5 (E relu(1 - D(x)) + E relu(1 +
    D(x_hat)))) equal the hand values (1e-6 relative: the same float32 ops, measured equal), and so does their
    weighted sum. The stage moves every weight of the pixel encoder, SGHC, pixel decoder and discriminator and
    nothing else."""
    from setok.train.semhitok import build_perceptual, build_stage

    root, _, pix, _ = chain
    cfg = tiny_config()
    tc, lc = cfg.train_pixel_codebook, cfg.tokenizer.semhitok.loss
    rows = [json.loads(line) for line in (root / "pixel" / "train_log.jsonl").read_text().splitlines()]
    torch.manual_seed(tc.seed)  # train()'s order: seed, stage model and discriminator, then LPIPS
    model, disc, _ = build_stage(cfg, "pixel_codebook", root / "semantic" / "model.pt")
    perceptual = build_perceptual(cfg)
    initial = tuple({k: v.clone() for k, v in m.state_dict().items()} for m in (model, disc))
    model.train()
    dataset = build_datasets([cfg.datasets[s] for s in tc.sources],
                             image_size=cfg.tokenizer.semhitok.semantic.backbone.image_size)
    sampler = StepBatchSampler(num_samples=len(dataset), batch_size=tc.batch_size,
                               micro_batch_size=tc.micro_batch_size, steps=tc.steps, seed=tc.seed)
    weights = {"l2": lc.l2_weight, "l1": lc.l1_weight, "codebook": lc.codebook_weight,
               "perceptual": lc.perceptual_weight, "adversarial": lc.adversarial_weight, "disc": 1.0}

    def last_micro_batch_terms(step: int) -> dict[str, float]:
        ids = sampler.global_batch(step)[-tc.micro_batch_size:]
        with torch.no_grad():
            out = model(collate([dataset[i] for i in ids])["image"])
            x, x_hat = out.target, out.recon
            terms = {"l2": ((x_hat - x) ** 2).mean(), "l1": (x_hat - x).abs().mean(), "codebook": out.vq_loss,
                     "perceptual": perceptual(x_hat, x).mean()}
            if step >= lc.disc_start:
                fake, real = disc(x_hat), disc(x)
                terms["adversarial"] = -fake.mean()
                terms["disc"] = 0.5 * (F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
        return {k: v.item() for k, v in terms.items()}

    assert lc.disc_start == 1 and sampler.accumulation == 2
    hand = {1: last_micro_batch_terms(0)}
    module = torch.load(root / "pixel" / "checkpoints" / "step00000002" / "mp_rank_00_model_states.pt",
                        weights_only=False)["module"]  # DeepSpeed's file: the PixelObjective after step 2
    model.load_state_dict({k.removeprefix("tokenizer."): v for k, v in module.items() if k.startswith("tokenizer.")})
    disc.load_state_dict({k.removeprefix("discriminator."): v for k, v in module.items()
                          if k.startswith("discriminator.")})
    hand[3] = last_micro_batch_terms(2)
    for step, terms in hand.items():
        row = rows[step - 1]
        assert row["step"] == step and set(terms) <= set(row)
        for k, v in terms.items():
            assert row[k] == pytest.approx(v, rel=1e-6), (step, k)
        assert row["loss"] == pytest.approx(sum(weights[k] * v for k, v in terms.items()), rel=1e-6), step
    assert "adversarial" in hand[3] and "adversarial" not in hand[1]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n.split(".")[0] for n in trainable} == {"pixel_encoder", "sghc", "pixel_decoder"}
    assert moved(initial[0], {**initial[0], **pix["weights"]}) == trainable
    assert moved(initial[1], pix["discriminator"]) == set(initial[1])


def test_semantic_stage_moves_the_ema_codebook(chain):
    from setok.modeling.build import build_semhitok

    _, sem, _, _ = chain
    torch.manual_seed(0)
    fresh = build_semhitok(tiny_config().tokenizer.semhitok)
    key = "semantic.quantizer.embedding"
    assert not torch.equal(fresh.state_dict()[key], sem["weights"][key])
    assert sem["discriminator"] is None and "semantic_encoder.visual.conv1.weight" not in sem["weights"]


def test_enhanced_decoder_stage_trains_only_the_new_larger_decoder(chain):
    from setok.modeling.build import load_semhitok

    root, _, pix, dec = chain
    assert dec["enhanced"] and not pix["enhanced"]
    for k, v in pix["weights"].items():
        if not k.startswith("pixel_decoder."):
            assert torch.equal(dec["weights"][k], v), k
    model, cfg = load_semhitok(root / "tokenizer" / "model.pt")
    assert model.pixel_decoder.proj.out_features == cfg.tokenizer.semhitok.pixel.enhanced_decoder.dim == 48
    assert len(model.pixel_decoder.blocks.blocks) == 2
    assert model.decode(model.encode(torch.rand(1, 3, 32, 32))).shape == (1, 3, 32, 32)


def test_interrupted_pixel_stage_resumes_to_the_same_weights(chain, tmp_path):
    root, _, full, _ = chain
    cfg = tiny_config()
    init = root / "semantic" / "model.pt"
    assert train(cfg, "pixel_codebook", tmp_path, init=init, stop_after=1) is None
    assert not (tmp_path / "model.pt").exists()
    resumed = state(train(cfg, "pixel_codebook", tmp_path, init=init))
    assert resumed["step"] == 3
    for k, v in full["weights"].items():
        torch.testing.assert_close(resumed["weights"][k], v, rtol=0, atol=0, msg=k)
    for k, v in full["discriminator"].items():
        torch.testing.assert_close(resumed["discriminator"][k], v, rtol=0, atol=0, msg=k)


def test_stage_with_zero_steps_passes_its_input_through(chain, tmp_path):
    root, _, pix, _ = chain
    out = train(tiny_config(train_pixel_finetune={"steps": 0}), "pixel_finetune", tmp_path / "ft",
                init=root / "pixel" / "model.pt")
    through = state(out)
    assert through["stage"] == "pixel_finetune" and through["step"] == pix["step"]
    assert all(torch.equal(through["weights"][k], v) for k, v in pix["weights"].items())
    no_enhance = tiny_config(tokenizer={"semhitok": {"pixel": {"enhanced_decoder": None}}})
    final = state(train(no_enhance, "pixel_decoder", tmp_path / "tok", init=out))
    assert not final["enhanced"] and all(torch.equal(final["weights"][k], v) for k, v in pix["weights"].items())


def test_wrong_init_is_a_one_line_error(chain, tmp_path):
    cfg = tiny_config()
    with pytest.raises(DataError, match="--init: stage pixel_codebook starts from"):
        train(cfg, "pixel_codebook", tmp_path / "a")
    bogus = tmp_path / "setok.pt"
    write_model(bogus, family="setok", stage="tokenizer", weights={}, config={}, config_sha="", step=0)
    with pytest.raises(DataError, match="a setok model file, expected semhitok"):
        train(cfg, "pixel_codebook", tmp_path / "b", init=bogus)
    other = tiny_config(tokenizer={"semhitok": {"pixel": {"sub_codebook_size": 3}}})
    with pytest.raises(DataError, match="do not match the config"):
        train(other, "pixel_decoder", tmp_path / "c", init=chain[0] / "pixel" / "model.pt")
    setok_cfg = copy.deepcopy(cfg)
    object.__setattr__(setok_cfg.tokenizer, "kind", "setok")
    with pytest.raises(DataError, match="tokenizer.kind"):
        train(setok_cfg, "semantic_codebook", tmp_path / "d")


def test_checkpoints_of_another_config_are_set_aside_not_resumed(tmp_path, caplog):
    """Snakemake reruns a job whose config changed: its old checkpoints must not be loaded into the new model."""
    train(tiny_config(), "semantic_codebook", tmp_path, stop_after=2)
    assert (tmp_path / "checkpoints" / "latest").read_text().strip() == "step00000002"
    wider = tiny_config(tokenizer={"semhitok": {"semantic": {"decoder_dim": 16}}})  # other shapes
    final = state(train(wider, "semantic_codebook", tmp_path))
    assert final["step"] == 3 and final["weights"]["semantic.pos"].shape[-1] == 16
    assert (tmp_path / "checkpoints.stale-0" / "step00000002").is_dir()  # kept, not deleted
    assert "moved to" in caplog.text
    rows = [yaml.safe_load(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows][-3:] == [1, 2, 3]  # the new run started from step 0
