"""Known answers for the SeTok losses: Eq. (3) reconstruction and Eq. (5)-(7) concept contrastive loss."""
import math

import torch

from setok.modeling.losses import concept_contrastive_loss, concept_similarities, reconstruction_loss


def test_contrastive_loss_on_hand_computed_2x2_batch():
    # Two images, one text each, tau = 1. S = [[1, 0], [0, 1]].
    # Eq. (5) per image: -log(e / (e + 1)); Eq. (6) per text: the same; Eq. (7) = their sum.
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    loss = concept_contrastive_loss(concept_similarities(v, t), torch.ones(2, 1, dtype=torch.bool), 1.0)
    expected = 2 * math.log(1 + math.exp(-1))
    assert math.isclose(float(loss), expected, rel_tol=1e-6)


def test_contrastive_loss_two_texts_per_image_sums_positives():
    # Image 0 has texts (a, b), image 1 has (c, d). Similarities chosen by hand; tau = 0.5 (scale 2).
    sim = torch.tensor([[[0.9, 0.5], [0.1, 0.2]], [[0.3, 0.0], [0.8, 0.7]]])  # S[i, j, k] = V_i . T_jk
    valid = torch.ones(2, 2, dtype=torch.bool)
    e = lambda x: math.exp(2 * x)  # noqa: E731
    i2t_0 = -math.log((e(0.9) + e(0.5)) / (e(0.9) + e(0.5) + e(0.1) + e(0.2)))
    i2t_1 = -math.log((e(0.8) + e(0.7)) / (e(0.3) + e(0.0) + e(0.8) + e(0.7)))
    t2i_0 = -math.log((e(0.9) + e(0.5)) / (e(0.9) + e(0.3) + e(0.5) + e(0.0)))  # texts of image 0 vs images 0, 1
    t2i_1 = -math.log((e(0.8) + e(0.7)) / (e(0.1) + e(0.8) + e(0.2) + e(0.7)))
    expected = (i2t_0 + i2t_1) / 2 + (t2i_0 + t2i_1) / 2
    assert math.isclose(float(concept_contrastive_loss(sim, valid, 2.0)), expected, rel_tol=1e-6)


def test_padding_texts_and_unlabelled_images_are_ignored():
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    t = torch.tensor([[[1.0, 0.0], [5.0, 5.0]], [[0.0, 1.0], [9.0, 9.0]], [[7.0, 7.0], [7.0, 7.0]]])
    valid = torch.tensor([[True, False], [True, False], [False, False]])
    loss = concept_contrastive_loss(concept_similarities(v, t), valid, 1.0)
    assert math.isclose(float(loss), 2 * math.log(1 + math.exp(-1)), rel_tol=1e-6)


def test_max_token_similarity_takes_the_best_token():
    tokens = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # one image, two tokens
    texts = torch.tensor([[[0.0, 1.0]]])
    assert float(concept_similarities(tokens, texts)[0, 0, 0]) == 1.0


def test_reconstruction_loss_mse_and_l1():
    a, b = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert math.isclose(float(reconstruction_loss(a, b)), 0.25)
    assert math.isclose(float(reconstruction_loss(a, b, kind="l1")), 0.5)


def test_a_micro_batch_without_labelled_images_gives_zero_gradients_to_the_temperature_too():
    """Reconstruction-only micro-batches (ImageNet) add 0, but the learned temperature must still get a (zero)
    gradient: ZeRO-1/2 needs the same parameters reduced on every rank."""
    sim = torch.randn(2, 2, 3, requires_grad=True)
    logit_scale = torch.tensor(math.log(1 / 0.07), requires_grad=True)
    loss = concept_contrastive_loss(sim, torch.zeros(2, 3, dtype=torch.bool), logit_scale.exp())
    loss.backward()
    assert loss.item() == 0.0
    assert logit_scale.grad is not None and logit_scale.grad.item() == 0.0
    assert torch.equal(sim.grad, torch.zeros_like(sim))
