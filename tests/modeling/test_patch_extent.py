"""The patch-14 grid of a 384 px image covers 378 px (27 x 14); mask targets and per-patch coverage come from those
pixels, and predicted masks map back onto them (issue 18 item 10; docs/paper-notes.md S14)."""
from types import SimpleNamespace

import torch

from setok.modeling.patch_extent import covered_region, covered_size, logits_over_image, pooled_over_grid
from setok.train.mllm import _mask_decoder_loss
from setok.train.mllm_batch import mask_target, pooled_coverage

S, G = 384, (27, 27)  # SigLIP-SO400M-patch14-384


def last_six_pixels(n: int = 1) -> torch.Tensor:
    """``(n, 384, 384)`` object masks whose content lies only in the last 6 rows and columns (unseen by the grid)."""
    r = torch.zeros(n, S, S)
    r[:, 378:, :] = 1
    r[:, :, 378:] = 1
    return r


def test_covered_size():
    assert covered_size(384, 27) == 378 and covered_size(224, 16) == 224 and covered_size(64, 16) == 64
    assert covered_size(336, 24) == 336 and covered_size(448, 32) == 448  # patch 14 at 336 and 448 px: exact


def test_content_the_grid_never_sees_covers_no_patch():
    assert pooled_coverage(last_six_pixels(), G).abs().max() == 0  # was up to 0.64 for the last row/column of patches


def test_mask_decoder_target_ignores_the_uncovered_strip():
    assert not mask_target(last_six_pixels(), G, (108, 108)).any()  # the last cells used to be all object


def test_patch_coverage_is_the_mean_over_each_patchs_pixels():
    r = torch.zeros(1, S, S)
    r[0, 14:28, 28:42] = 1  # exactly patch (1, 2)
    r[0, 370:378, 0:7] = 1  # the lower 8 rows and left half of patch (26, 0)
    cov = pooled_coverage(r, G).view(27, 27)
    expected = torch.zeros(27, 27)
    expected[1, 2], expected[26, 0] = 1.0, 8 * 7 / 14**2
    torch.testing.assert_close(cov, expected)
    target = mask_target(r, G, (108, 108))  # 3.5 pixels per decoder cell
    assert target[4:8, 8:12].all() and target.sum() == 16 + 2 * 2  # patch (1, 2) and 2 x 2 cells of the half patch


def test_mask_decoder_loss_reads_the_covered_target():
    """The training loss: a decoder that says "no object" everywhere is right for an object it cannot see."""
    n, c = 2, 4
    raw = SimpleNamespace(regions=last_six_pixels(n), has_region=torch.ones(n, dtype=torch.bool))
    tok = SimpleNamespace(valid=torch.ones(n, c, dtype=torch.bool), features=torch.zeros(n, 27, 27, 8),
                          tokens=torch.zeros(n, c, 8), grid=G)
    engine = lambda feats, tokens, valid: torch.full((feats.shape[0], 1, 108, 108), -30.0)  # noqa: E731
    loss, _ = _mask_decoder_loss(engine, raw, tok, torch.ones(n, c, dtype=torch.bool), dtype=torch.float32)
    assert loss.item() < 1e-6


def test_identity_when_the_patches_tile_the_image():
    r = torch.rand(3, 64, 64)
    assert covered_region(r, (16, 16)) is not None and covered_region(r, (16, 16)).shape == (3, 64, 64)
    torch.testing.assert_close(pooled_over_grid(r, (16, 16), (16, 16)),
                               torch.nn.functional.adaptive_avg_pool2d(r[:, None], 16)[:, 0])
    lg = torch.randn(64, 64)
    assert logits_over_image(lg, (16, 16), 64) is lg


def test_predicted_logits_cover_the_grid_and_extend_to_the_uncovered_strip():
    lg = torch.full((108, 108), -5.0)
    lg[-1, :] = 5.0  # the decoder's last row: pixels 374.5 .. 378
    img = logits_over_image(lg, G, S)
    assert img.shape == (S, S)
    rows = (img > 0).any(1)
    assert rows[376:].all() and not rows[:374].any()  # the uncovered rows 378..383 repeat row 377
    assert torch.equal(img[378:], img[377:378].expand(6, -1))
    assert not (logits_over_image(torch.full((108, 108), -5.0), G, S) > 0).any()
