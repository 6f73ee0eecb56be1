"""Diffusion loss of SeTokIM: cosine schedule, forward process, DDPM/DDIM sampler, guidance and the AdaLN MLP.

These tests pin the fixed-variance eps-MSE head (``learn_sigma=False``); the learned variance (MAR's released code)
is tested in test_diffloss_learned_sigma.py and the bf16 precision in test_diffloss_precision.py."""
import math

import pytest
import torch
from torch import Tensor, nn

from setok.modeling.diffloss import AdaLNResBlock, DenoisingMLP, DiffLoss, timestep_embedding
from setok.modeling.diffusion import (
    GaussianDiffusion,
    cosine_alpha_bar,
    cosine_betas,
    ddim_step,
    respaced_timesteps,
)


def hand_alpha_bar(u: float) -> float:
    f = lambda v: math.cos((v + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    return f(u) / f(0.0)


class PointMassOracle(nn.Module):
    """The exact noise predictor when ``x_0 = z``: ``eps = (x_t - sqrt(ab_t) z) / sqrt(1 - ab_t)``."""

    def __init__(self, diffusion: GaussianDiffusion) -> None:
        super().__init__()
        self.diffusion = diffusion

    def forward(self, x_t: Tensor, t: Tensor, z: Tensor) -> Tensor:
        ab = self.diffusion.alpha_bar(t, x_t)
        return (x_t - ab.sqrt() * z) / (1 - ab).sqrt()


def oracle_head(num_timesteps: int = 1000, dim: int = 3) -> DiffLoss:
    head = DiffLoss(token_dim=dim, cond_dim=dim, width=8, num_timesteps=num_timesteps, learn_sigma=False).double()
    head.net = PointMassOracle(head.diffusion)
    return head


def test_cosine_schedule_endpoints_monotonicity_and_hand_value():
    ab = GaussianDiffusion(num_timesteps=1000).alphas_cumprod
    assert ab.dtype == torch.float64 and ab.shape == (1000,)
    assert 0.9999 < ab[0] < 1.0  # ab(1/T)
    assert ab[-1] < 1e-8
    assert bool((ab[1:] < ab[:-1]).all())
    # alphas_cumprod[i] = ab((i+1)/T) away from the clipped last step
    assert ab[499].item() == pytest.approx(hand_alpha_bar(0.5), rel=1e-12)
    assert hand_alpha_bar(0.5) == pytest.approx(0.49384, abs=1e-5)
    assert cosine_alpha_bar(torch.tensor(0.0, dtype=torch.float64)).item() == pytest.approx(1.0, abs=1e-15)


def test_only_the_last_beta_is_clipped():
    betas = cosine_betas(1000)
    assert betas[-1].item() == 0.999
    assert betas[-2].item() == pytest.approx(1 - hand_alpha_bar(0.999) / hand_alpha_bar(0.998), rel=1e-9)
    assert betas[-2] < 0.999


def test_q_sample_is_the_closed_form_forward_process():
    d = GaussianDiffusion(num_timesteps=1000)
    x0, eps = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    t = torch.tensor([0, 10, 499, 999])
    hand = [hand_alpha_bar((i + 1) / 1000) for i in (0, 10, 499)] + [d.alphas_cumprod[-1].item()]
    ab = torch.tensor(hand, dtype=torch.float64)
    expected = ab.sqrt()[:, None] * x0 + (1 - ab).sqrt()[:, None] * eps
    torch.testing.assert_close(d.q_sample(x0, t, eps), expected, rtol=1e-12, atol=1e-12)


def test_respaced_timesteps_span_the_chain_evenly():
    steps = respaced_timesteps(1000, 100)
    assert steps[0] == 999 and steps[-1] == 0 and len(steps) == 100
    assert bool((steps[:-1] > steps[1:]).all())
    assert respaced_timesteps(1000, 1).tolist() == [999]
    assert respaced_timesteps(10, 10).tolist() == list(range(9, -1, -1))
    with pytest.raises(ValueError):
        respaced_timesteps(10, 11)


def test_ddim_step_with_eta_one_is_the_ddpm_posterior():
    torch.manual_seed(0)
    x0, eps, noise = (torch.randn(6, 4, dtype=torch.float64) for _ in range(3))
    ab_t, ab_prev = 0.3, 0.7
    x_t = math.sqrt(ab_t) * x0 + math.sqrt(1 - ab_t) * eps
    beta = 1 - ab_t / ab_prev  # beta of the respaced step
    mean = (math.sqrt(ab_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - ab_prev) * x_t) / (1 - ab_t)
    std = math.sqrt(beta * (1 - ab_prev) / (1 - ab_t))
    out = ddim_step(x_t, eps, ab_t, ab_prev, noise=noise, eta=1.0, temperature=0.5)
    torch.testing.assert_close(out, mean + 0.5 * std * noise, rtol=1e-12, atol=1e-12)
    ddim = ddim_step(x_t, eps, ab_t, ab_prev, noise=noise, eta=0.0)
    torch.testing.assert_close(ddim, math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps)
    last = ddim_step(x_t, eps, ab_t, 1.0, noise=noise)
    torch.testing.assert_close(last, x0)


def test_loss_of_the_true_noise_predictor_is_zero():
    head = oracle_head()
    target = torch.randn(32, 3, dtype=torch.float64)
    loss = head(target, target, generator=torch.Generator().manual_seed(0))
    assert loss.item() < 1e-20


def test_loss_at_zero_init_is_the_noise_second_moment():
    head = DiffLoss(token_dim=4, cond_dim=6, width=16, diffusion_batch_mul=1, learn_sigma=False)
    g = torch.Generator().manual_seed(0)
    target, z = torch.randn(64, 4), torch.randn(64, 6)
    loss = head(target, z, generator=g)
    g.manual_seed(0)
    torch.randint(0, 1000, (64,), generator=g)
    noise = torch.randn(64, 4, generator=g)
    torch.testing.assert_close(loss, noise.pow(2).mean())  # the net outputs 0 at init


def test_masked_tokens_do_not_contribute():
    torch.manual_seed(0)
    head = DiffLoss(token_dim=4, cond_dim=6, width=16, learn_sigma=False)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.1 * torch.randn_like(p))  # leave the zero init so the net depends on its inputs
    target, z = torch.randn(10, 4), torch.randn(10, 6)
    mask = torch.tensor([1, 1, 0, 1, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    base = head(target, z, mask, generator=torch.Generator().manual_seed(3))
    target2, z2 = target.clone(), z.clone()
    target2[~mask] += 100.0
    z2[~mask] -= 50.0
    changed = head(target2, z2, mask, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(changed, base, rtol=0, atol=0)
    target2[0] += 1.0
    assert head(target2, z2, mask, generator=torch.Generator().manual_seed(3)) != base
    # the mean runs over the valid tokens only: a full mask on the valid subset gives the same number
    head.diffusion_batch_mul = 1
    g = torch.Generator().manual_seed(5)
    masked = head(target, z, mask, generator=g)
    g.manual_seed(5)
    t = torch.randint(0, 1000, (10,), generator=g)
    noise = torch.randn(10, 4, generator=g)
    per_token = (head.net(head.diffusion.q_sample(target, t, noise), t, z) - noise).pow(2).mean(-1)
    torch.testing.assert_close(masked, per_token[mask].mean())


def test_diffusion_batch_mul_repeats_each_token():
    head = oracle_head()
    seen = []

    class Recorder(PointMassOracle):
        def forward(self, x_t: Tensor, t: Tensor, z: Tensor) -> Tensor:
            seen.append(z)
            return super().forward(x_t, t, z)

    head.net = Recorder(head.diffusion)
    target = torch.randn(5, 3, dtype=torch.float64)
    head(target, target)
    assert seen[0].shape == (20, 3)
    torch.testing.assert_close(seen[0], target.repeat(4, 1))


def test_adaln_blocks_are_the_identity_and_the_net_outputs_zero_at_init():
    torch.manual_seed(0)
    block = AdaLNResBlock(width=8)
    x, y = torch.randn(5, 8), torch.randn(5, 8)
    torch.testing.assert_close(block(x, y), x, rtol=0, atol=0)
    net = DenoisingMLP(token_dim=4, cond_dim=6, width=8, depth=3)
    assert len(net.blocks) == 3
    out = net(torch.randn(5, 4), torch.randint(0, 1000, (5,)), torch.randn(5, 6))
    assert out.shape == (5, 4) and bool((out == 0).all())


def test_timestep_embedding_is_cos_then_sin():
    emb = timestep_embedding(torch.tensor([0.0, 2.0]), 6)
    torch.testing.assert_close(emb[0], torch.tensor([1.0, 1, 1, 0, 0, 0]))
    freqs = torch.tensor([1.0, 10000 ** (-1 / 3), 10000 ** (-2 / 3)])
    torch.testing.assert_close(emb[1], torch.cat([torch.cos(2 * freqs), torch.sin(2 * freqs)]))
    assert timestep_embedding(torch.tensor([1.0]), 7)[0, -1] == 0


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_sampler_with_the_oracle_recovers_a_point_mass(eta):
    head = oracle_head()
    c = torch.randn(6, 3, dtype=torch.float64) * 3
    out = head.sample(c, num_steps=50, eta=eta, temperature=1.3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, c, rtol=1e-8, atol=1e-8)


def test_guidance_extrapolates_from_the_unconditional_half():
    head = oracle_head()
    c, c_u = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    out = head.sample(torch.cat([c, c_u]), cfg=3.0, num_steps=20, generator=torch.Generator().manual_seed(1))
    expected = c_u + 3.0 * (c - c_u)  # guided oracle = oracle of the point mass at this point
    assert out.shape == (8, 3)
    torch.testing.assert_close(out, torch.cat([expected, expected]), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_guidance_with_equal_halves_equals_the_unguided_sampler(learn_sigma):
    torch.manual_seed(0)
    head = DiffLoss(token_dim=4, cond_dim=6, width=16, num_timesteps=100, learn_sigma=learn_sigma)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.1 * torch.randn_like(p))
    z = torch.randn(5, 6)
    plain = head.sample(z, cfg=1.0, num_steps=5, generator=torch.Generator().manual_seed(7))
    guided = head.sample(torch.cat([z, z]), cfg=4.0, num_steps=5, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(guided[:5], plain, rtol=1e-5, atol=1e-5)
    again = head.sample(z, num_steps=5, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(again, plain, rtol=0, atol=0)
    other = head.sample(z, num_steps=5, generator=torch.Generator().manual_seed(8))
    assert not torch.allclose(other, plain)


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_training_on_two_clusters_reduces_the_loss(one_thread, learn_sigma):
    torch.manual_seed(0)
    head = DiffLoss(token_dim=2, cond_dim=2, width=32, num_timesteps=1000, learn_sigma=learn_sigma)
    centers = torch.tensor([[2.0, -1.0], [-2.0, 1.0]])
    data = torch.Generator().manual_seed(1)

    def batch(n: int = 128) -> tuple[Tensor, Tensor]:
        k = torch.randint(0, 2, (n,), generator=data)
        return centers[k] + 0.05 * torch.randn(n, 2, generator=data), nn.functional.one_hot(k, 2).float()

    eval_target, eval_z = batch(512)

    def eval_loss() -> float:
        with torch.no_grad():
            return head(eval_target, eval_z, generator=torch.Generator().manual_seed(2)).item()

    before = eval_loss()
    opt = torch.optim.Adam(head.parameters(), lr=5e-3)
    for _ in range(40):
        loss = head(*batch())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    if not learn_sigma:
        assert before == pytest.approx(1.0, abs=0.05)
        assert after < 0.4 * before  # 0.97 -> 0.13 with this seed
    else:  # mse + L_vlb (bits)
        assert math.isfinite(after) and after < 0.5 * before
        sample = head.sample(torch.eye(2).repeat(50, 1), num_steps=20, generator=torch.Generator().manual_seed(3))
        assert torch.isfinite(sample).all() and sample.shape == (100, 2)
