"""SeTokIM mask decoder (App. D.1) and its BCE + Dice losses (Sec. 2.2): known answers, padding, a tiny fit."""
import math

import pytest
import torch
import torch.nn.functional as F

from setok.modeling.mask_decoder import MaskDecoder, RandomFourierPositionEncoding
from setok.modeling.mask_losses import dice_loss, mask_loss, sigmoid_bce_loss
from setok.modeling.two_way_transformer import TwoWayTransformer


def decoder(**kw) -> MaskDecoder:
    args = dict(image_dim=12, token_dim=10, dim=32, depth=2, heads=4, mlp_dim=64)
    args.update(kw)
    return MaskDecoder(**args)


# ---------------------------------------------------------------- losses


def test_dice_of_perfect_prediction_is_zero_and_of_complement_is_one():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    perfect = (target * 2 - 1) * 50  # logits +-50
    assert float(dice_loss(perfect, target)) < 1e-6
    # complement: sum(p t) = 0, sum p + sum t = 64 -> 1 - eps / (64 + eps)
    assert math.isclose(float(dice_loss(-perfect, target)), 1 - 1e-3 / (64 + 1e-3), rel_tol=1e-6)


def test_dice_hand_computed_partial_case_with_smoothing():
    # logits 0 -> p = 1/2 everywhere; one foreground pixel of four: sum(p t) = 1/2, sum p = 2, sum t = 1.
    logits = torch.zeros(1, 2, 2)
    target = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert math.isclose(float(dice_loss(logits, target, eps=1.0)), 1 - (1 + 1) / (3 + 1), rel_tol=1e-6)
    assert math.isclose(float(dice_loss(logits, target)), 1 - (1 + 1e-3) / (3 + 1e-3), rel_tol=1e-6)


def test_dice_is_averaged_over_masks_and_empty_mask_empty_prediction_is_zero():
    target = torch.zeros(2, 1, 4, 4)
    target[0, 0, :2] = 1
    logits = (target * 2 - 1) * 50
    logits[1] = -logits[1]  # mask 1: empty target, all-foreground prediction -> 1 - eps / (16 + eps)
    expected = (0 + 1 - 1e-3 / (16 + 1e-3)) / 2
    assert math.isclose(float(dice_loss(logits, target)), expected, rel_tol=1e-5)
    assert float(dice_loss(torch.full((1, 4, 4), -50.0), torch.zeros(1, 4, 4))) < 1e-6


def test_bce_matches_hand_value_and_torch():
    logits = torch.tensor([[[0.0, math.log(3.0)]]])  # p = 1/2, 3/4
    target = torch.tensor([[[1.0, 0.0]]])
    expected = (math.log(2.0) + math.log(4.0)) / 2
    assert math.isclose(float(sigmoid_bce_loss(logits, target)), expected, rel_tol=1e-6)
    x, t = torch.randn(2, 3, 5, 5), (torch.rand(2, 3, 5, 5) > 0.5).float()
    torch.testing.assert_close(sigmoid_bce_loss(x, t), F.binary_cross_entropy_with_logits(x, t))


def test_mask_loss_uses_lisa_weights():
    x, t = torch.randn(2, 1, 6, 6), (torch.rand(2, 1, 6, 6) > 0.5).float()
    torch.testing.assert_close(mask_loss(x, t), 2.0 * sigmoid_bce_loss(x, t) + 0.5 * dice_loss(x, t))


# ---------------------------------------------------------------- decoder


def test_fourier_position_encoding_is_bounded_and_distinct_per_location():
    torch.manual_seed(0)
    pe = RandomFourierPositionEncoding(dim=16)((3, 5))
    assert pe.shape == (15, 16)
    torch.testing.assert_close(pe[:, :8] ** 2 + pe[:, 8:] ** 2, torch.ones(15, 8))  # sin^2 + cos^2
    assert torch.cdist(pe, pe).add(torch.eye(15) * 10).min() > 1e-3


@pytest.mark.parametrize("num_mask_tokens", [1, 3])
def test_decoder_upsamples_8x8_grid_to_32x32_logits(num_mask_tokens):
    torch.manual_seed(0)
    m = decoder(num_mask_tokens=num_mask_tokens)
    logits = m(torch.randn(2, 8, 8, 12), torch.randn(2, 5, 10), torch.ones(2, 5, dtype=torch.bool))
    assert logits.shape == (2, num_mask_tokens, 32, 32)
    assert torch.isfinite(logits).all()


def test_decoder_accepts_zero_prompt_tokens():
    torch.manual_seed(0)
    logits = decoder()(torch.randn(2, 4, 4, 12), torch.randn(2, 0, 10), torch.ones(2, 0, dtype=torch.bool))
    assert logits.shape == (2, 1, 16, 16)


def test_padded_prompt_tokens_do_not_change_valid_samples_logits():
    torch.manual_seed(0)
    m = decoder().eval()
    image = torch.randn(2, 8, 8, 12)
    tok0, tok1 = torch.randn(1, 3, 10), torch.randn(1, 5, 10)
    alone0 = m(image[:1], tok0)
    alone1 = m(image[1:], tok1)
    valid = torch.tensor([[True] * 3 + [False] * 2, [True] * 5])
    for garbage in (1e3 * torch.randn(1, 2, 10), torch.full((1, 2, 10), -7.0)):
        batch = torch.cat([torch.cat([tok0, garbage], 1), tok1], 0)  # (2, 5, 10)
        out = m(image, batch, valid)
        torch.testing.assert_close(out[:1], alone0, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(out[1:], alone1, atol=1e-4, rtol=1e-4)


def test_two_way_transformer_ignores_padding_tokens_in_tokens_and_image_outputs():
    torch.manual_seed(0)
    t = TwoWayTransformer(depth=2, dim=16, heads=2, mlp_dim=32).eval()
    image, pe, tokens = torch.randn(1, 9, 16), torch.randn(1, 9, 16), torch.randn(1, 3, 16)
    ref_tokens, ref_image = t(image, pe, tokens)
    padded = torch.cat([tokens, 100 * torch.randn(1, 4, 16)], 1)
    valid = torch.tensor([[True] * 3 + [False] * 4])
    out_tokens, out_image = t(image, pe, padded, valid)
    torch.testing.assert_close(out_tokens[:, :3], ref_tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_image, ref_image, atol=1e-5, rtol=1e-5)
    unmasked_tokens, unmasked_image = t(image, pe, padded)
    assert (unmasked_image - ref_image).abs().max() > 1e-2  # without the mask, the padding would leak in


def test_different_prompt_changes_the_mask():
    torch.manual_seed(0)
    m = decoder().eval()
    image = torch.randn(1, 8, 8, 12)
    a, b = m(image, torch.randn(1, 4, 10)), m(image, torch.randn(1, 4, 10))
    assert (a - b).abs().max() > 1e-2


def test_adam_fits_a_square_mask_from_a_fixed_embedding(one_thread):
    torch.manual_seed(0)
    m = decoder()
    image, tokens = torch.randn(1, 8, 8, 12), torch.randn(1, 3, 10)
    target = torch.zeros(1, 1, 32, 32)
    target[..., 8:20, 12:28] = 1
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = mask_loss(m(image, tokens), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    with torch.no_grad():
        pred = m(image, tokens) > 0
    iou = (pred & target.bool()).sum() / (pred | target.bool()).sum()
    assert iou > 0.8


def test_position_encoding_keeps_float32_phases_when_the_decoder_is_cast_to_bf16():
    """DeepSpeed's bf16 engine casts the frequency buffer; the phases 2 pi (2c - 1) G must not be computed in bf16
    (up to 0.15 off on a 27 x 27 grid), or training and float32 inference see different encodings."""
    torch.manual_seed(0)
    pe = RandomFourierPositionEncoding(dim=256, scale=1.0)
    want = pe((27, 27))
    got = pe.to(torch.bfloat16)((27, 27))
    g = pe.frequencies.float()  # the bf16-rounded frequencies, now the module's parameters of record
    ys = (torch.arange(27) + 0.5) / 27
    coords = torch.stack(torch.meshgrid(ys, ys, indexing="xy"), -1).reshape(-1, 2)
    proj = 2 * math.pi * (2 * coords - 1) @ g
    torch.testing.assert_close(got, torch.cat([proj.sin(), proj.cos()], -1), rtol=0, atol=1e-5)
    assert (got - want).abs().max() < 0.1  # only the frequencies' own rounding separates it from float32


def test_two_way_blocks_use_sams_relu_mlp():
    t = TwoWayTransformer(depth=2, dim=32, heads=2, mlp_dim=64)
    assert [type(m).__name__ for blk in t.blocks for m in blk.mlp] == ["Linear", "ReLU", "Linear"] * 2
