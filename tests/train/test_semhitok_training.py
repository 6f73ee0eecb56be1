"""The SemHiTok stages: the frozen semantic branch stays bit-identical through pixel training, exact resume,
pass-through stages, the enhanced decoder trained alone, and one-line errors for a wrong --init."""
import copy
from pathlib import Path

import pytest
import torch
import yaml

from setok.config import deep_merge, resolve
from setok.io import DataError
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
    semantic = {k: v for k, v in sem["state_dict"].items() if k.startswith("semantic.")}
    assert semantic and any(k.endswith("quantizer.embedding") for k in semantic)  # the EMA codebook itself
    for later in (pix, dec):
        for k, v in semantic.items():
            assert torch.equal(later["state_dict"][k], v), k
    # ... while the pixel branch did train.
    assert sem["stage"] == "semantic_codebook" and pix["stage"] == "pixel_codebook" and pix["step"] == 3
    rows = [yaml.safe_load(line) for line in (chain[0] / "pixel" / "train_log.jsonl").read_text().splitlines()]
    assert "adversarial" not in rows[0] and "adversarial" in rows[1] and "disc" in rows[2]  # warm-up: disc_start 1


def test_semantic_stage_moves_the_ema_codebook(chain):
    from setok.modeling.build import build_semhitok

    _, sem, _, _ = chain
    torch.manual_seed(0)
    fresh = build_semhitok(tiny_config().tokenizer.semhitok)
    key = "semantic.quantizer.embedding"
    assert not torch.equal(fresh.state_dict()[key], sem["state_dict"][key])
    assert sem["discriminator"] is None and "semantic_encoder.visual.conv1.weight" not in sem["state_dict"]


def test_enhanced_decoder_stage_trains_only_the_new_larger_decoder(chain):
    from setok.modeling.build import load_semhitok

    root, _, pix, dec = chain
    assert dec["enhanced"] and not pix["enhanced"]
    for k, v in pix["state_dict"].items():
        if not k.startswith("pixel_decoder."):
            assert torch.equal(dec["state_dict"][k], v), k
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
    for k, v in full["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][k], v, rtol=0, atol=0, msg=k)
    for k, v in full["discriminator"].items():
        torch.testing.assert_close(resumed["discriminator"][k], v, rtol=0, atol=0, msg=k)


def test_stage_with_zero_steps_passes_its_input_through(chain, tmp_path):
    root, _, pix, _ = chain
    out = train(tiny_config(train_pixel_finetune={"steps": 0}), "pixel_finetune", tmp_path / "ft",
                init=root / "pixel" / "model.pt")
    through = state(out)
    assert through["stage"] == "pixel_finetune" and through["step"] == pix["step"]
    assert all(torch.equal(through["state_dict"][k], v) for k, v in pix["state_dict"].items())
    no_enhance = tiny_config(tokenizer={"semhitok": {"pixel": {"enhanced_decoder": None}}})
    final = state(train(no_enhance, "pixel_decoder", tmp_path / "tok", init=out))
    assert not final["enhanced"] and all(torch.equal(final["state_dict"][k], v) for k, v in pix["state_dict"].items())


def test_wrong_init_is_a_one_line_error(chain, tmp_path):
    cfg = tiny_config()
    with pytest.raises(DataError, match="--init: stage pixel_codebook starts from"):
        train(cfg, "pixel_codebook", tmp_path / "a")
    bogus = tmp_path / "setok.pt"
    torch.save({"state_dict": {}, "config": {}}, bogus)
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
    assert final["step"] == 3 and final["state_dict"]["semantic.pos"].shape[-1] == 16
    assert (tmp_path / "checkpoints.stale-0" / "step00000002").is_dir()  # kept, not deleted
    assert "moved to" in caplog.text
    rows = [yaml.safe_load(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows][-3:] == [1, 2, 3]  # the new run started from step 0
