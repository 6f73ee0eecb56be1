"""SeTok's L_rec as the official code's loss module computes it (issue 18 item 2; docs/paper-notes.md M3): L1 + LPIPS +
a hinge PatchGAN whose generator term VQGAN's adaptive weight scales, after a warm-up, trained with SeTok in one
DeepSpeed engine."""
from __future__ import annotations

import json

import pytest
import torch
from test_tokenizer_training import tiny_config  # tests/train is on sys.path (pytest rootdir import)
from torch import nn

from setok.config import ConfigError
from setok.modeling.build import build_discriminator, build_setok, load_setok
from setok.modeling.discriminator import adaptive_weight, hinge_d_loss
from setok.train.setok_objective import AdversarialReconstruction, build_reconstruction, detokenizer_last_layer
from setok.train.tokenizer import setok_loss, train

# The CI config's objective (vqgan, L1, random LPIPS-Alex, tiny PatchGAN) with the GAN on from step 2 of 4.
VQGAN = {"objective": "vqgan", "rec": "l1", "disc_start": 2}


# ------------------------------------------------------------------------------------------- the adaptive weight


def linear_decoder() -> tuple[nn.Parameter, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A "decoder" ``x_hat = z W^T`` (its last layer is ``W``, (2, 2)), latents ``z`` (3, 2), a target ``x`` (3, 2)
    and a frozen linear "discriminator" ``v`` (3, 2) whose logits are ``v * x_hat``."""
    w = nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64))
    z = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]], dtype=torch.float64)
    x = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]], dtype=torch.float64)
    v = torch.tensor([[1.0, -1.0], [0.5, 2.0], [-3.0, 1.0]], dtype=torch.float64)
    return w, z, x, v


def test_adaptive_weight_is_vqgans_gradient_norm_ratio_at_the_last_layer():
    w, z, x, v = linear_decoder()
    x_hat = z @ w.T  # (3, 2)
    nll = (x_hat - x).abs().mean()
    g_loss = -(v * x_hat).mean()
    # By hand: d mean|x_hat - x| / dW = sign(x_hat - x)^T z / 6 and d -mean(v * x_hat) / dW = -v^T z / 6.
    with torch.no_grad():
        grad_nll = torch.sign(x_hat - x).T @ z / 6
        grad_g = -v.T @ z / 6
    expected = grad_nll.norm() / (grad_g.norm() + 1e-4)
    weight = adaptive_weight(nll, g_loss, w)
    assert weight.item() == pytest.approx(expected.item(), rel=1e-12)
    assert 0.1 < weight.item() < 10  # not at the clamp: the ratio itself is checked
    assert not weight.requires_grad  # detached: no gradient flows through lambda
    assert w.grad is None  # nothing accumulated into .grad: the training backward that follows is untouched
    (nll + weight * g_loss).backward()  # the graph is still there
    torch.testing.assert_close(w.grad, grad_nll + weight * grad_g)


def test_adaptive_weight_is_clamped_to_1e4():
    w, z, x, v = linear_decoder()
    x_hat = z @ w.T
    nll = 1e3 * (x_hat - x).abs().mean()
    assert adaptive_weight(nll, -1e-6 * (v * x_hat).mean(), w).item() == 1e4  # ratio ~1e9
    assert adaptive_weight(nll, 0.0 * x_hat.sum(), w).item() == 1e4  # a zero adversarial gradient: ||.|| / 1e-4


# ------------------------------------------------------------------------------------------- the objective module


@pytest.fixture(scope="module")
def objective() -> tuple[AdversarialReconstruction, nn.Module]:
    cfg = tiny_config(loss={**VQGAN, "disc_start": 3})
    torch.manual_seed(0)
    model, _ = build_setok(cfg.tokenizer)
    obj, perceptual = build_reconstruction(cfg.tokenizer.loss, model)
    assert obj is not None and perceptual is not None and obj.adaptive and obj.disc_start == 3
    return obj.train(), perceptual


def reconstruct(obj: AdversarialReconstruction) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 32, 32, generator=g)
    _, recon = obj.tokenizer(images)
    return recon, torch.rand(recon.shape, generator=g) * 2 - 1


def grads(loss: torch.Tensor, params: list[nn.Parameter]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))


def test_one_backward_gives_each_network_its_own_losss_gradient(objective):
    """The generator term sees D detached and D's hinge loss sees sg(x_hat): the gradient of L_rec + L_D is L_D's for
    D and L_rec's (lambda a constant) for the tokenizer; lambda is the ratio at the detokenizer's last layer."""
    obj, perceptual = objective
    recon, target = reconstruct(obj)
    rec, disc, terms = obj.loss(recon, target, step=3, perceptual=perceptual)
    assert set(terms) == {"pixel", "perceptual", "adversarial", "disc_weight", "disc"}
    total = rec + disc
    d_params = list(obj.discriminator.parameters())
    hinge = hinge_d_loss(obj.discriminator(target), obj.discriminator(recon.detach()))
    for a, b in zip(grads(total, d_params), grads(hinge, d_params)):
        torch.testing.assert_close(a, b)
    dec = [p for p in obj.tokenizer.detokenizer.parameters()]
    nll = terms["pixel"] + terms["perceptual"]  # perceptual_weight 1
    lam = terms["disc_weight"]
    assert not lam.requires_grad
    for a, b in zip(grads(total, dec), grads(nll + lam * terms["adversarial"], dec)):
        torch.testing.assert_close(a, b)
    last = detokenizer_last_layer(obj.tokenizer)
    assert last is obj.tokenizer.detokenizer.pixel_decoder.out[-1].weight and last.shape[0] == 3  # RGB out
    (g_nll,), (g_adv,) = grads(nll, [last]), grads(terms["adversarial"], [last])
    assert lam.item() == pytest.approx((g_nll.norm() / (g_adv.norm() + 1e-4)).item(), rel=1e-5)


def test_fixed_weight_switch_uses_disc_weight_alone(objective):
    obj, perceptual = objective
    fixed = AdversarialReconstruction(tokenizer=obj.tokenizer, discriminator=obj.discriminator, pixel="l1",
                                      perceptual_weight=1.0, disc_weight=0.25, adaptive=False, disc_start=0)
    recon, target = reconstruct(obj)
    rec, _, terms = fixed.loss(recon, target, step=0, perceptual=perceptual)
    assert terms["disc_weight"] == 0.25
    torch.testing.assert_close(rec, terms["pixel"] + terms["perceptual"] + 0.25 * terms["adversarial"])


def test_before_disc_start_there_is_no_adversarial_term_and_d_gets_no_gradient(objective):
    obj, perceptual = objective
    recon, target = reconstruct(obj)
    rec, disc, terms = obj.loss(recon, target, step=2, perceptual=perceptual)  # disc_start 3
    assert disc is None and set(terms) == {"pixel", "perceptual"}
    torch.testing.assert_close(rec, terms["pixel"] + terms["perceptual"])
    assert all(g is None for g in grads(rec, list(obj.discriminator.parameters())))


def test_pixel_objective_is_the_old_mse_loss_and_vqgan_without_lpips_or_gan_equals_it():
    """``objective: pixel, rec: mse`` is today's L_rec (the whole training run is replayed by hand in
    test_tokenizer_training.py); the VQGAN objective with LPIPS off, before disc_start, is the same number."""
    cfg = tiny_config()
    torch.manual_seed(0)
    model, text = build_setok(cfg.tokenizer)
    batch = {"image": torch.rand(2, 3, 32, 32), "labels": [["cat"], ["dog"]], "contrastive": torch.tensor([True, True])}
    loss, logs = setok_loss(model, text, batch, cfg, step=0)
    assert set(logs) == {"rec", "tokens", "tokens_std", "tokens_min", "tokens_max", "contrastive", "loss"}
    vq = tiny_config(loss={"objective": "vqgan", "rec": "mse", "perceptual_weight": 0.0, "disc_start": 1})
    obj, perceptual = build_reconstruction(vq.tokenizer.loss, model)
    assert perceptual is None
    loss2, logs2 = setok_loss(model, text, batch, vq, step=0, objective=obj)
    assert loss2.item() == loss.item() and logs2["rec"] == logs["rec"] == logs2["pixel"]


# ------------------------------------------------------------------------------------------- training


def log_rows(out) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def vqgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vqgan")
    return out, train(tiny_config(loss=VQGAN), out)


def test_training_warms_up_then_trains_the_gan_and_writes_a_model_downstream_loaders_read(vqgan_run):
    out, final = vqgan_run
    rows = log_rows(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all("pixel" in r and "perceptual" in r and "contrastive" in r for r in rows)
    # The log's steps are 1-based, the objective's 0-based: disc_start 2 -> the GAN from logged step 3 on.
    assert [r["step"] for r in rows if "adversarial" in r] == [3, 4]
    assert all(0 <= r["disc_weight"] <= 1e4 and r["disc"] > 0 for r in rows[2:])
    ckpt = torch.load(final, weights_only=True)
    cfg = tiny_config(loss=VQGAN)
    torch.manual_seed(cfg.train_tokenizer.seed)  # as train() builds them: SeTok, then its discriminator
    fresh, _ = build_setok(cfg.tokenizer)
    initial_disc = build_discriminator(cfg.tokenizer.loss).state_dict()
    assert set(ckpt["weights"]) == set(fresh.state_dict())  # SeTok's keys alone, as before: no "tokenizer." prefix
    _, _, trained = load_setok(final)  # what SeTokIM training and the evaluation read
    assert trained.tokenizer.loss.objective == "vqgan"
    assert set(ckpt["discriminator"]) == set(initial_disc)  # the discriminator is an extra beside the weights ...
    for k, v in initial_disc.items():  # ... trained by its hinge loss from disc_start on
        assert not torch.equal(ckpt["discriminator"][k], v), k


def test_interrupted_vqgan_training_resumes_to_the_same_tokenizer_and_discriminator(vqgan_run, tmp_path):
    _, final = vqgan_run
    full = torch.load(final, weights_only=True)
    assert train(tiny_config(loss=VQGAN), tmp_path, stop_after=3) is None
    resumed = torch.load(train(tiny_config(loss=VQGAN), tmp_path), weights_only=True)
    for part in ("weights", "discriminator"):
        for k, v in full[part].items():
            torch.testing.assert_close(resumed[part][k], v, rtol=0, atol=0, msg=f"{part} {k}")


def test_zero1_engine_trains_to_the_same_weights(vqgan_run, tmp_path):
    """The paper config's ZeRO-1 (partitioned optimizer state, gradients reduced after the backward): the adaptive
    weight's two autograd.grad calls inside the step leave its gradients as ZeRO-0's (one rank; 1e-5: the flattened
    buffers sum in another order)."""
    _, final = vqgan_run
    full = torch.load(final, weights_only=True)
    zero1 = torch.load(train(tiny_config(loss=VQGAN, zero_stage=1), tmp_path), weights_only=True)
    for part in ("weights", "discriminator"):
        for k, v in full[part].items():
            torch.testing.assert_close(zero1[part][k], v, rtol=0, atol=1e-5, msg=f"{part} {k}")


def test_fp16_with_per_network_clipping_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"train_tokenizer\.precision: fp16 with tokenizer\.loss\.clip_per_network"):
        train(tiny_config(loss=VQGAN, precision="fp16"), tmp_path)
