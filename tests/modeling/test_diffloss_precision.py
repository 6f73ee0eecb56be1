"""Precision of the Diffusion loss under bf16 (DeepSpeed's bf16 engine casts tokens, z and the net): the schedule stays
float64, the forward process, losses and sampling chain run in float32, and float32 results are unchanged."""
import pytest
import torch

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
    ab = d.alphas_cumprod[t].float()[:, None]
    torch.testing.assert_close(x_t, ab.sqrt() * x0.float() + (1 - ab).sqrt() * noise.float(), rtol=0, atol=0)
    torch.testing.assert_close(x_t - ab.sqrt() * x0.float(), (1 - ab).sqrt() * noise.float())


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
    """The float32 path is unchanged: same RNG draws, same dtype, same arithmetic."""
    head = perturbed(DiffLoss(token_dim=4, cond_dim=6, width=16, num_timesteps=100, diffusion_batch_mul=2,
                              learn_sigma=False))
    target, z = torch.randn(5, 4), torch.randn(5, 6)
    loss = head(target, z, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 100, (10,), generator=g)
    noise = torch.randn(10, 4, generator=g)
    ab = head.diffusion.alphas_cumprod[t].to(torch.float32)[:, None]
    x_t = ab.sqrt() * target.repeat(2, 1) + (1 - ab).sqrt() * noise
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
            x = ddim_step(x, eps, ab_t.float(), ab_prev.float(), noise=noise, eta=1.0, temperature=0.8)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, x, rtol=0, atol=0)
