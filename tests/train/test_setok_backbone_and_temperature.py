"""Two settings of SeTok as the official code has them (paper-notes M7, M8): 1/tau clamped at 100, and which block of
the vision tower feeds the tokenizer."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from test_tokenizer_training import tiny_config  # tests/train is on sys.path (pytest rootdir import)

from setok.config import ConfigError, resolve
from setok.modeling.build import build_backbone, build_setok


def setok(**loss):
    cfg = tiny_config()
    torch.manual_seed(0)
    return build_setok(replace(cfg.tokenizer, loss=replace(cfg.tokenizer.loss, **loss)))[0]


def test_inverse_temperature_is_clamped_at_100_and_then_gets_no_gradient():
    model = setok()
    with torch.no_grad():
        model.logit_scale.fill_(math.log(400.0))
    scale = model.contrastive_scale()
    assert scale.item() == pytest.approx(100.0)
    scale.sum().backward()
    assert model.logit_scale.grad.item() == 0.0  # clamped: the temperature stops moving, as in CLIP


def test_below_the_clamp_and_without_it_the_scale_is_exp_logit_scale():
    model = setok()
    assert model.contrastive_scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    unclamped = setok(max_logit_scale=None)
    with torch.no_grad():
        unclamped.logit_scale.fill_(math.log(400.0))
    assert unclamped.contrastive_scale().item() == pytest.approx(400.0, rel=1e-6)


def block_outputs(encoder, images: torch.Tensor) -> list[torch.Tensor]:
    """Every transformer block's output of the tower, recorded by hooks, as ``(B, h, w, d)``."""
    blocks = encoder.visual.transformer.resblocks
    outs: list[torch.Tensor] = []
    hooks = [b.register_forward_hook(lambda m, i, o: outs.append(o)) for b in blocks]
    try:
        encoder(images)
    finally:
        for h in hooks:
            h.remove()
    side = int(math.isqrt(outs[-1].shape[1] - 1))
    return [o[:, 1:].reshape(o.shape[0], side, side, -1) for o in outs]  # drop the class token


@pytest.mark.parametrize("layer", [-1, -2])
def test_select_layer_picks_that_blocks_output_before_the_final_norm(layer):
    cfg = tiny_config().tokenizer.backbone
    encoder, _ = build_backbone(replace(cfg, select_layer=layer))
    images = torch.rand(2, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = encoder(images)
        expected = block_outputs(encoder, images)[layer]
    torch.testing.assert_close(feats, expected)


def test_select_layer_counts_from_the_end():
    raw = {"tokenizer": {"backbone": {"select_layer": 0}}}
    with pytest.raises(ConfigError, match=r"tokenizer\.backbone\.select_layer: counts blocks from the end"):
        resolve(raw)
