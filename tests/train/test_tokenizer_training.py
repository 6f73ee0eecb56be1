"""The SeTok trainer: atomic checkpoints, and an interrupted run resumes to the same weights."""
from pathlib import Path

import pytest
import torch
import yaml

from setok.config import deep_merge, resolve
from setok.train.tokenizer import train

ROOT = Path(__file__).resolve().parents[2]


def tiny_config(**train_overrides):
    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {
        "train_tokenizer": {"steps": 4, "batch_size": 4, "micro_batch_size": 2, "checkpoint_every": 2,
                            "log_every": 1, "warmup_steps": 1, **train_overrides},
        "datasets": {"bundled": {"limit": 6}},
        "tokenizer": {"backbone": {"image_size": 32}, "clustering": {"max_tokens": 8}},
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
    for k, v in full["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][k], v, rtol=0, atol=0, msg=k)


def test_training_actually_updates_the_weights(uninterrupted):
    _, full = uninterrupted
    from setok.modeling.build import build_setok

    fresh, _ = build_setok(tiny_config().tokenizer)
    changed = [k for k, v in fresh.state_dict().items() if not torch.equal(v, full["state_dict"][k])]
    assert any(k.startswith("merger.") for k in changed) and any(k.startswith("detokenizer.") for k in changed)


def test_loss_runs_on_a_bfloat16_model():
    """The paper config trains in bf16: images are cast to the weights' dtype and the target to the output's."""
    from setok.modeling.build import build_setok
    from setok.train.tokenizer import setok_loss

    cfg = tiny_config()
    model, text = build_setok(cfg.tokenizer)
    model = model.to(torch.bfloat16)
    batch = {"image": torch.rand(2, 3, 32, 32, dtype=torch.bfloat16), "labels": [["cat"], ["dog", "ball"]],
             "contrastive": torch.tensor([True, True])}
    loss, logs = setok_loss(model, text, batch, cfg, step=0)
    loss.backward()
    assert loss.dtype == torch.bfloat16 and torch.isfinite(loss) and logs["contrastive"] > 0

