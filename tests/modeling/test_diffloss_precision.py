"""Precision of the Diffusion loss: under bf16 (DeepSpeed's bf16 engine casts tokens, z and the net) the schedule stays
float64 and the forward process, losses and sampling chain run in float32; every schedule coefficient, square roots
included, is taken in float64 before the cast (MAR's convention), so float32 matches float64 near t = 0."""
import math

import pytest
import torch
from test_diffloss import hand_alpha_bar  # tests/modeling is on sys.path (pytest rootdir import)

from setok.modeling.diffloss import DiffLoss
from setok.modeling.diffusion import GaussianDiffusion, ddim_step, respaced_timesteps


def perturbed(head: DiffLoss, seed: int = 0) -> DiffLoss:
    """Leave the zero init so the net depends on its inputs."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return head


def test_the_schedule_stays_float64_through_module_casts():
    ref = GaussianDiffusion(num_timesteps=1000)
    for cast in (lambda m: m.bfloat16(), lambda m: m.half(), lambda m: m.float(), lambda m: m.to(torch.bfloat16)):
        head = cast(DiffLoss(token_dim=4, cond_dim=6, width=16))
        d = head.diffusion
        assert d.alphas_cumprod.dtype == torch.float64 and d.chain.betas.dtype == torch.float64
        torch.testing.assert_close(d.alphas_cumprod, ref.alphas_cumprod, rtol=0, atol=0)
        torch.testing.assert_close(d.chain.posterior_log_variance_clipped, ref.chain.posterior_log_variance_clipped,
                                   rtol=0, atol=0)
        assert d.alphas_cumprod[0] < 1.0
    assert head.net.input_proj.weight.dtype == torch.bfloat16


def test_q_sample_on_bf16_input_keeps_the_noise_at_small_t():
    d = GaussianDiffusion(num_timesteps=1000).bfloat16()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(21, 8, generator=g).bfloat16()
    noise = torch.randn(21, 8, generator=g).bfloat16()
    t = torch.arange(21)  # bf16(alpha_bar[t]) == 1 for all of these
    assert bool((d.alphas_cumprod[t].bfloat16() == 1).all())
    x_t = d.q_sample(x0, t, noise)
    assert x_t.dtype == torch.float32
    assert bool((x_t != x0.float()).all())  # the noise term is present
    ab = d.alphas_cumprod[t][:, None]  # float64
    a, b = ab.sqrt().float(), (1 - ab).sqrt().float()
    torch.testing.assert_close(x_t, a * x0.float() + b * noise.float(), rtol=0, atol=0)
    torch.testing.assert_close(x_t - a * x0.float(), b * noise.float())


@pytest.mark.parametrize("learn_sigma", [True, False])
def test_bf16_head_gives_a_finite_loss_and_finite_samples(learn_sigma):
    head = perturbed(DiffLoss(token_dim=4, cond_dim=6, width=16, learn_sigma=learn_sigma)).bfloat16()
    seen = []
    head.net.input_proj.register_forward_hook(lambda mod, args, out: seen.append(args[0].dtype))
    target, z = torch.randn(32, 4).bfloat16(), torch.randn(32, 6).bfloat16()
    loss = head(target, z, generator=torch.Generator().manual_seed(1))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert seen == [torch.bfloat16]  # the net receives x_t in its own dtype
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)
    with torch.no_grad():
        for cfg, zz in ((1.0, z), (3.0, torch.cat([z, torch.randn(32, 6).bfloat16()]))):
            out = head.sample(zz, cfg=cfg, num_steps=100, generator=torch.Generator().manual_seed(2))
            assert out.dtype == torch.bfloat16 and out.shape == (zz.shape[0], 4)
            assert torch.isfinite(out).all()


def test_bf16_loss_sees_the_noise_at_t0():
    """At t = 0 a perfect x_0 copy is not a zero-loss answer: the net input differs from the target."""
    head = DiffLoss(token_dim=4, cond_dim=6, width=16, diffusion_batch_mul=1, num_timesteps=1000).bfloat16()
    inputs = []
    head.net.input_proj.register_forward_hook(lambda mod, args, out: inputs.append(args[0]))
    target = torch.randn(64, 4).bfloat16()
    head(target, torch.randn(64, 6).bfloat16(), generator=torch.Generator().manual_seed(0))
    # the bf16 net input is x_t rounded to bf16; x_t - x0 ~ sqrt(1 - ab) noise is visible for most t
    assert (inputs[0] != target).float().mean() > 0.5


def test_float32_loss_and_sampler_are_bitwise_the_plain_formulas():
    """The float32 path is the plain formulas with float64 coefficients: same RNG draws, same dtype."""
    head = perturbed(DiffLoss(token_dim=4, cond_dim=6, width=16, num_timesteps=100, diffusion_batch_mul=2,
                              learn_sigma=False))
    target, z = torch.randn(5, 4), torch.randn(5, 6)
    loss = head(target, z, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 100, (10,), generator=g)
    noise = torch.randn(10, 4, generator=g)
    ab = head.diffusion.alphas_cumprod[t][:, None]  # float64
    x_t = ab.sqrt().float() * target.repeat(2, 1) + (1 - ab).sqrt().float() * noise
    hand = (head.net(x_t, t, z.repeat(2, 1)) - noise).pow(2).mean(-1).mean()
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, hand, rtol=0, atol=0)

    with torch.no_grad():
        out = head.sample(z, num_steps=6, temperature=0.8, generator=torch.Generator().manual_seed(4))
        g = torch.Generator().manual_seed(4)
        x = torch.randn(5, 4, generator=g)
        steps = respaced_timesteps(100, 6).tolist()
        for k, step in enumerate(steps):
            ab_t = head.diffusion.alphas_cumprod[step]
            ab_prev = head.diffusion.alphas_cumprod[steps[k + 1]] if k + 1 < len(steps) else ab_t.new_ones(())
            eps = head.net(x, torch.full((5,), step), z)
            noise = torch.zeros(5, 4) if k + 1 == len(steps) else torch.randn(5, 4, generator=g)
            x = ddim_step(x, eps, ab_t, ab_prev, noise=noise, eta=1.0, temperature=0.8)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, x, rtol=0, atol=0)


def closed_form_alpha_bar(i: int, T: int = 1000) -> float:
    """``alphas_cumprod[i]`` from the continuous cosine schedule in float64: ``ab((i+1)/T)``, and for the last step
    the clipped ``beta = 0.999`` (``ab((T-1)/T) * (1 - 0.999)``)."""
    return hand_alpha_bar((T - 1) / T) * (1 - 0.999) if i == T - 1 else hand_alpha_bar((i + 1) / T)


@pytest.mark.parametrize("t", [0, 1, 500, 999])
def test_q_sample_coefficients_are_the_float64_square_roots(t):
    """``q_sample`` in float32 scales ``x_0`` by ``sqrt(ab_t)`` and the noise by ``sqrt(1 - ab_t)`` to 1e-7 relative of
    the closed-form float64 values. Taking ``sqrt(1 - ab)`` of a float32 ``ab`` missed by 2.6e-4 at t = 0 (and 9e-5 at
    t = 1): near t = 0, ``1 - ab`` is a difference of nearly equal numbers."""
    d = GaussianDiffusion(num_timesteps=1000)
    ab = closed_form_alpha_bar(t)
    tt = torch.tensor([t])
    scale_x0 = d.q_sample(torch.ones(1, 1), tt, torch.zeros(1, 1)).item()
    scale_noise = d.q_sample(torch.zeros(1, 1), tt, torch.ones(1, 1)).item()
    assert scale_x0 == pytest.approx(math.sqrt(ab), rel=1e-7)
    assert scale_noise == pytest.approx(math.sqrt(1 - ab), rel=1e-7)


@pytest.mark.parametrize("t, t_prev", [(1, 0), (2, 1), (10, 5)])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step_in_float32_matches_float64_near_t0(t, t_prev, eta):
    """A reverse step near t = 0 in float32 agrees with the same step in float64 to 1e-6 (measured 6e-7 on values up
    to 4); with the coefficients computed in float32 it was off by 2.4e-6 to 1.2e-5."""
    d = GaussianDiffusion(num_timesteps=1000)
    g = torch.Generator().manual_seed(0)
    x, eps, noise = (torch.randn(512, 8, generator=g) for _ in range(3))
    ab_t, ab_prev = d.alphas_cumprod[t], d.alphas_cumprod[t_prev]
    out32 = ddim_step(x, eps, ab_t, ab_prev, noise=noise, eta=eta)
    out64 = ddim_step(x.double(), eps.double(), ab_t, ab_prev, noise=noise.double(), eta=eta)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), out64, rtol=0, atol=1e-6)
