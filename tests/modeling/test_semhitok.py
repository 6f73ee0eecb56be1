"""SemHiTok's pieces against hand-computed answers: EMA VQ (Eq. 4), vanilla / norm VQ, SGHC (Eq. 5), flattening,
codebook usage, the decoder inputs of Table 9, stage freezing and the GAN objective of Eq. (7)."""
from pathlib import Path

import pytest
import torch
import yaml

from setok.config import deep_merge, resolve
from setok.modeling.discriminator import PatchDiscriminator, generator_loss, hinge_d_loss
from setok.modeling.hierarchical_codebook import HierarchicalCodebook, flatten_codes, unflatten_codes
from setok.modeling.quantizers import (
    CodeUsage,
    EMAVectorQuantizer,
    NormVectorQuantizer,
    VectorQuantizer,
    nearest_code,
)
from setok.modeling.semantic_codebook import distill_loss
from setok.modeling.vit import unpatchify

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------- EMA VQ (Eq. 4)


def ema_quantizer(codes: list[list[float]], decay: float, threshold: float = 0.0) -> EMAVectorQuantizer:
    q = EMAVectorQuantizer(num_codes=len(codes), dim=len(codes[0]), decay=decay, dead_code_threshold=threshold)
    q.embedding.copy_(torch.tensor(codes))
    return q


def test_ema_update_is_the_running_mean_of_eq4():
    q = ema_quantizer([[0.0, 0.0], [10.0, 10.0], [-50.0, 50.0]], decay=0.9)
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]])
    out = q(z)
    assert out.indices.tolist() == [0, 0, 1]
    # e_0 = 0.9 * (0, 0) + 0.1 * mean((1,0), (0,1)) ; e_1 = 0.9 * (10,10) + 0.1 * (9,9) ; e_2 unassigned: unchanged
    expected = torch.tensor([[0.05, 0.05], [9.9, 9.9], [-50.0, 50.0]])
    torch.testing.assert_close(q.embedding, expected)
    torch.testing.assert_close(q.usage, torch.tensor([0.2, 0.1, 0.0]))  # (1 - gamma) * counts
    # The output uses the codes before the update, with the straight-through gradient.
    torch.testing.assert_close(out.z_q, torch.tensor([[0.0, 0.0], [0.0, 0.0], [10.0, 10.0]]))
    # Loss: commitment only, beta * mean ||z - e||^2 over all coordinates.
    assert out.loss.item() == pytest.approx(0.25 * (1 + 1 + 1 + 1) / 6)


def test_ema_two_steps_compound_the_momentum():
    q = ema_quantizer([[0.0], [100.0]], decay=0.5)
    q(torch.tensor([[4.0]]))
    q(torch.tensor([[4.0]]))
    assert q.embedding[0].item() == pytest.approx(0.5 * (0.5 * 0 + 0.5 * 4) + 0.5 * 4)  # 3.0


def test_ema_frozen_in_eval_mode_and_float32_under_bf16():
    q = ema_quantizer([[0.0, 0.0], [1.0, 1.0]], decay=0.9).eval()
    before = q.embedding.clone()
    q(torch.randn(8, 2))
    assert torch.equal(q.embedding, before)
    q = q.to(torch.bfloat16)
    assert q.embedding.dtype == torch.float32 and q.usage.dtype == torch.float32


def test_ema_dead_codes_restart_on_batch_vectors():
    q = ema_quantizer([[0.0, 0.0], [100.0, 100.0], [-100.0, -100.0]], decay=0.9, threshold=0.05)
    z = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    q(z)
    # Codes 1 and 2 got nothing (usage 0 < 0.05): each now sits on one of the batch vectors, with usage reset to 1.
    for k in (1, 2):
        assert any(torch.equal(q.embedding[k], v) for v in z)
        assert q.usage[k].item() == 1.0
    assert q.usage[0].item() == pytest.approx(0.2)


# --------------------------------------------------------------------------------------------- vanilla / norm VQ


def test_vanilla_and_norm_vq_pick_different_codes():
    """Euclid picks the close short code; the norm VQ picks the code of the same direction."""
    codes = torch.tensor([[10.0, 1.0], [0.7, 0.7]])
    z = torch.tensor([[1.0, 0.0]])
    vanilla = VectorQuantizer(num_codes=2, dim=2)
    norm = NormVectorQuantizer(num_codes=2, dim=2)
    with torch.no_grad():
        vanilla.embedding.copy_(codes)
        norm.embedding.copy_(codes)
    assert vanilla(z).indices.item() == 1
    assert norm(z).indices.item() == 0
    assert nearest_code(z, codes).item() == 1


def test_vanilla_vq_loss_and_straight_through_gradient():
    q = VectorQuantizer(num_codes=2, dim=2, commitment=0.25)
    with torch.no_grad():
        q.embedding.copy_(torch.tensor([[1.0, 1.0], [5.0, 5.0]]))
    z = torch.tensor([[2.0, 1.0]], requires_grad=True)
    out = q(z)
    torch.testing.assert_close(out.z_q, torch.tensor([[1.0, 1.0]]))
    assert out.loss.item() == pytest.approx((1 + 0.25) * 0.5)  # mean over 2 coordinates of (1, 0)^2
    out.z_q.sum().backward(retain_graph=True)
    torch.testing.assert_close(z.grad, torch.ones(1, 2))  # straight-through: identity
    q.embedding.grad = None
    out.loss.backward()
    # d/de ||sg(z) - e||^2 / 2 for code 0 = (e - z) = (-1, 0); code 1 unused gets no gradient.
    torch.testing.assert_close(q.embedding.grad, torch.tensor([[-1.0, 0.0], [0.0, 0.0]]))


# --------------------------------------------------------------------------------------------- SGHC (Eq. 5)


def test_each_patch_uses_only_its_semantic_codes_sub_codebook():
    sghc = HierarchicalCodebook(num_semantic=3, sub_codebook_size=2, dim=2, normalize=False)
    with torch.no_grad():
        sghc.embedding.copy_(torch.tensor([
            [[1.0, 0.0], [0.0, 1.0]],      # sub-codebook of semantic code 0
            [[5.0, 5.0], [6.0, 6.0]],      # code 1
            [[-1.0, 0.0], [0.0, -1.0]],    # code 2
        ]))
    z = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]], requires_grad=True)
    semantic = torch.tensor([0, 1, 2])
    out = sghc(z, semantic)
    # The same vector gets the nearest code WITHIN its own sub-codebook, not the global nearest (1, 0).
    assert out.indices.tolist() == [0, 0, 1]
    torch.testing.assert_close(out.z_q, torch.tensor([[1.0, 0.0], [5.0, 5.0], [0.0, -1.0]]))
    out.loss.backward()
    grad_used = sghc.embedding.grad.abs().sum(-1)  # (K, m)
    assert torch.equal(grad_used > 0, torch.tensor([[True, False], [True, False], [False, True]]))
    torch.testing.assert_close(sghc.lookup(semantic, out.indices), out.z_q.detach())


def test_sghc_normalised_codes_are_unit_vectors():
    sghc = HierarchicalCodebook(num_semantic=4, sub_codebook_size=3, dim=5)
    out = sghc(torch.randn(10, 5), torch.randint(0, 4, (10,)))
    torch.testing.assert_close(out.z_q.norm(dim=-1), torch.ones(10))
    assert sghc.size == 12


def test_flatten_unflatten_round_trip():
    assert flatten_codes(torch.tensor(3), torch.tensor(5), 12).item() == 41
    sem = torch.randint(0, 16384, (4, 256))
    pix = torch.randint(0, 12, (4, 256))
    flat = flatten_codes(sem, pix, 12)
    assert flat.max() < 16384 * 12
    s2, p2 = unflatten_codes(flat, 12)
    assert torch.equal(s2, sem) and torch.equal(p2, pix)
    assert torch.equal(flatten_codes(*unflatten_codes(torch.arange(196_608), 12), 12), torch.arange(196_608))


# --------------------------------------------------------------------------------------------- usage, losses


def test_codebook_usage_counts_distinct_codes_over_all_batches():
    u = CodeUsage(8)
    u.update(torch.tensor([[0, 1, 1], [1, 2, 2]]))
    u.update(torch.tensor([7]))
    assert u.usage == 4 / 8
    assert u.counts.tolist() == [1, 3, 2, 0, 0, 0, 0, 1]
    assert u.perplexity == pytest.approx(float(torch.exp(-(torch.tensor([1, 3, 2, 1]) / 7 * (torch.tensor(
        [1, 3, 2, 1]) / 7).log()).sum())))
    with pytest.raises(ValueError, match="out of range"):
        u.update(torch.tensor([8]))


def test_distill_loss_is_one_minus_cosine():
    recon = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    target = torch.tensor([[[0.0, 1.0], [2.0, 2.0]]])
    assert distill_loss(recon, target).item() == pytest.approx((1.0 + 0.0) / 2)
    assert distill_loss(recon, target, kind="mse").item() == pytest.approx((1 + 1 + 1 + 1) / 4)


def test_hinge_losses_known_values():
    real = torch.tensor([2.0, 0.5])
    fake = torch.tensor([-2.0, 0.0])
    assert hinge_d_loss(real, fake).item() == pytest.approx(0.5 * ((0 + 0.5) / 2 + (0 + 1.0) / 2))
    assert generator_loss(fake).item() == pytest.approx(1.0)


def test_unpatchify_inverts_patchify():
    img = torch.randn(2, 3, 8, 12)
    p = 4
    patches = img.unfold(2, p, p).unfold(3, p, p)  # (B, 3, h, w, p, p)
    x = patches.permute(0, 2, 3, 4, 5, 1).reshape(2, 6, p * p * 3)  # (B, h*w, p*p*3), channels last
    torch.testing.assert_close(unpatchify(x, (2, 3), p), img)


# --------------------------------------------------------------------------------------------- the tokenizer


def tiny_cfg(**pixel):
    raw: dict = {}
    for f in ("config/paper.yaml", "config/ci.yaml"):
        raw = deep_merge(raw, yaml.safe_load((ROOT / f).read_text()))
    raw = deep_merge(raw, {"tokenizer": {"semhitok": {"pixel": pixel}}})
    return resolve(raw, "semhitok")


@pytest.fixture(scope="module")
def tokenizer():
    from setok.modeling.build import build_semhitok

    torch.manual_seed(0)
    return build_semhitok(tiny_cfg().tokenizer.semhitok).eval()


def test_encode_decode_shapes_and_vocabulary(tokenizer):
    images = torch.rand(2, 3, 32, 32)
    codes = tokenizer.encode(images)
    assert codes.grid == (8, 8) and codes.semantic.shape == codes.pixel.shape == (2, 64)
    assert tokenizer.vocab_size == 64 * 4
    flat = tokenizer.flat(codes)
    assert 0 <= flat.min() and flat.max() < tokenizer.vocab_size
    assert torch.equal(unflatten_codes(flat, 4)[0], codes.semantic)
    assert tokenizer.decode(codes).shape == (2, 3, 32, 32)
    sem, pix = tokenizer.code_features(codes)
    assert sem.shape == (2, 64, 8) and pix.shape == (2, 64, 4)


def test_decode_depends_only_on_the_codes(tokenizer):
    """Two images with the same codes decode identically: the decoder reads nothing but the quantized codes."""
    images = torch.rand(1, 3, 32, 32)
    codes = tokenizer.encode(images)
    out = tokenizer.forward_pixel(images)
    torch.testing.assert_close(out.recon, tokenizer.decode(codes))
    assert torch.equal(out.codes.semantic, codes.semantic) and torch.equal(out.codes.pixel, codes.pixel)


def test_bf16_tokenizer_decodes_codes_from_its_float32_codebooks():
    """A SemHiTok cast to bf16 (as the MLLM runs it, paper-notes S8) keeps float32 codebooks and decodes codes in
    bf16: the same image as the bf16 decoder over the bf16-rounded code vectors, as its training forward feeds it."""
    import copy

    from setok.modeling.build import build_semhitok

    torch.manual_seed(0)
    model = copy.deepcopy(build_semhitok(tiny_cfg().tokenizer.semhitok).eval()).to(torch.bfloat16)
    assert model.semantic.quantizer.codebook.dtype == torch.float32
    codes = model.encode(torch.rand(2, 3, 32, 32, dtype=torch.bfloat16))
    image = model.decode(codes)
    assert image.dtype == torch.bfloat16 and image.shape == (2, 3, 32, 32)
    z_sem, z_pix = model.code_features(codes)
    by_hand = model.pixel_decoder(model.decoder_input(z_sem.to(torch.bfloat16), z_pix.to(torch.bfloat16)))
    assert torch.equal(image, by_hand)


@pytest.mark.parametrize("pixel,in_dim,tokens", [
    ({"concat": "dim"}, 8 + 4, 64), ({"concat": "length"}, 8 + 4, 128), ({"concat": "none"}, 4, 64),
    ({"sghc": False}, 8, 64),
])
def test_decoder_input_of_each_concat_type(pixel, in_dim, tokens):
    from setok.modeling.build import build_semhitok

    model = build_semhitok(tiny_cfg(**pixel).tokenizer.semhitok).eval()
    assert model.pixel_decoder.proj.in_features == in_dim and model.pixel_decoder.pos.shape[1] == tokens
    z_sem, z_pix = torch.ones(1, 64, 8), torch.full((1, 64, 4), 2.0)
    x = model.decoder_input(z_sem, None if model.sghc is None else z_pix)
    assert x.shape == (1, tokens, in_dim)
    if pixel.get("concat") == "length":  # each sequence in its own channels, the other's zero
        assert x[0, :64, :8].eq(1).all() and x[0, :64, 8:].eq(0).all()
        assert x[0, 64:, :8].eq(0).all() and x[0, 64:, 8:].eq(2).all()
    assert model.decode(model.encode(torch.rand(1, 3, 32, 32))).shape == (1, 3, 32, 32)


def test_pixel_stage_freezes_the_semantic_branch(tokenizer):
    import copy

    model = copy.deepcopy(tokenizer).set_stage("pixel_codebook").train()
    assert not model.semantic.training and not model.semantic.quantizer.training
    assert model.pixel_encoder.training and model.pixel_decoder.training
    assert not any(p.requires_grad for p in model.semantic.parameters())
    assert all(p.requires_grad for p in model.sghc.parameters())
    before = {k: v.clone() for k, v in model.semantic.state_dict().items()}
    model(torch.rand(2, 3, 32, 32))
    assert all(torch.equal(v, model.semantic.state_dict()[k]) for k, v in before.items())
    model.set_stage("pixel_decoder")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        n for n, _ in model.named_parameters() if n.startswith("pixel_decoder.")]


def test_objective_gives_each_network_only_its_own_gradient(tokenizer):
    import copy

    from setok.train.semhitok_objective import PixelObjective

    model = copy.deepcopy(tokenizer).set_stage("pixel_codebook")
    disc = PatchDiscriminator(channels=8, layers=2)
    obj = PixelObjective(tokenizer=model, discriminator=disc, l1_weight=0.0, l2_weight=1.0, codebook_weight=1.0,
                         perceptual_weight=0.0, adversarial_weight=0.5, disc_start=0).train()
    images = torch.rand(2, 3, 32, 32)
    loss, terms = obj(images, step=0)
    # D's gradient is that of its hinge loss alone (the generator's term sees D detached) ...
    d_grads = torch.autograd.grad(loss, list(disc.parameters()), retain_graph=True)
    out = model(images)
    hinge = hinge_d_loss(disc(out.target), disc(out.recon.detach()))
    for g, h in zip(d_grads, torch.autograd.grad(hinge, list(disc.parameters()))):
        torch.testing.assert_close(g, h)
    # ... and the decoder's is that of Eq. (7) without the hinge loss.
    dec = list(model.pixel_decoder.parameters())
    g_total = torch.autograd.grad(loss, dec, retain_graph=True)
    gen = terms["l2"] + terms["codebook"] + 0.5 * terms["adversarial"]
    for a, b in zip(g_total, torch.autograd.grad(gen, dec)):
        torch.testing.assert_close(a, b)
    # Before the warm-up ends there is no adversarial term at all.
    _, early = PixelObjective(tokenizer=model, discriminator=disc, l1_weight=0.0, l2_weight=1.0,
                              codebook_weight=1.0, perceptual_weight=0.0, adversarial_weight=0.5,
                              disc_start=10)(images, step=9)
    assert "adversarial" not in early and "disc" not in early
