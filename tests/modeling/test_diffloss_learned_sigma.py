"""Learned-range variance of the Diffusion loss (MAR's released code; Nichol & Dhariwal 2021): KL helper, variance
interpolation, respaced betas, the detached-mean L_vlb and ancestral sampling with the learned variance."""
import math

import pytest
import torch
from test_diffloss import hand_alpha_bar  # tests/modeling is on sys.path (pytest rootdir import)
from torch import Tensor, nn

from setok.modeling.diffloss import DiffLoss
from setok.modeling.diffusion import (
    Chain,
    GaussianDiffusion,
    cosine_betas,
    discretized_gaussian_log_likelihood,
    gaussian_log_likelihood,
    normal_kl,
    respaced_betas,
    respaced_timesteps,
)


class GaussianOracle(nn.Module):
    """Exact eps for data ``x_0 ~ N(mu, s^2 I)`` with ``mu = z[:, :D]``, and ``v = z[:, D:]`` as the variance output.

    ``x_t ~ N(sqrt(ab) mu, ab s^2 + 1 - ab)``, so
    ``E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) mu) / (ab s^2 + 1 - ab)``
    (``s = 0``: the point mass at ``mu``).
    """

    def __init__(self, diffusion: GaussianDiffusion, s: float = 0.0) -> None:
        super().__init__()
        self.diffusion, self.s = diffusion, s

    def forward(self, x_t: Tensor, t: Tensor, z: Tensor) -> Tensor:
        d = x_t.shape[1]
        mu, v = z[:, :d], z[:, d:]
        ab = self.diffusion.alpha_bar(t, x_t)
        eps = (1 - ab).sqrt() * (x_t - ab.sqrt() * mu) / (ab * self.s**2 + 1 - ab)
        return torch.cat([eps, v], dim=1)


def oracle_head(dim: int = 3, s: float = 0.0) -> DiffLoss:
    head = DiffLoss(token_dim=dim, cond_dim=2 * dim, width=8, learn_sigma=True).double()
    head.net = GaussianOracle(head.diffusion, s)
    return head


def hand_sample_std(s: float, num_steps: int, v: float, temperature: float = 1.0, T: int = 1000) -> float:
    """Std of the final sample of the learned-variance ancestral chain for data N(mu, s^2) with the exact eps predictor.

    Every step is linear-Gaussian: ``x_{k-1} = A_k x_k + const + temperature * sigma_k * noise`` with
    ``A_k = coef1_k * dx0hat/dx_k + coef2_k`` and ``dx0hat/dx_k = sqrt(ab_k) s^2 / (ab_k s^2 + 1 - ab_k)``, so
    ``Var_{k-1} = A_k^2 Var_k + temperature^2 sigma_k^2`` from ``Var = 1`` (the chain's own respaced betas).
    """
    kept = sorted(round(999 - i * 999 / (num_steps - 1)) for i in range(num_steps))
    ab = [hand_alpha_bar((t + 1) / T) for t in kept]
    prev = [1.0] + ab[:-1]
    beta = [1 - a / p for a, p in zip(ab, prev)]
    post = [b * (1 - p) / (1 - a) for a, p, b in zip(ab, prev, beta)]
    var = 1.0
    for k in range(num_steps - 1, -1, -1):
        a, p, b = ab[k], prev[k], beta[k]
        gain = math.sqrt(a) * s * s / (a * s * s + 1 - a)
        big_a = b * math.sqrt(p) / (1 - a) * gain + (1 - p) * math.sqrt(1 - b) / (1 - a)
        frac = (v + 1) / 2
        step_var = math.exp(frac * math.log(b) + (1 - frac) * math.log(post[max(k, 1)])) if k else 0.0
        var = big_a**2 * var + temperature**2 * step_var
    return math.sqrt(var)


# ------------------------------------------------------------------------------------------------ (a) Gaussian KL


def test_normal_kl_matches_the_closed_form_on_a_hand_case():
    # KL(N(1, 2) || N(0, 1/2)) = 1/2 (log(0.5/2) + 2/0.5 + 1^2/0.5 - 1) = 1/2 (5 - log 4)
    kl = normal_kl(torch.tensor(1.0), torch.tensor(math.log(2.0)), torch.tensor(0.0), torch.tensor(math.log(0.5)))
    assert kl.item() == pytest.approx(0.5 * (5 - math.log(4)), rel=1e-6)
    assert normal_kl(torch.tensor(0.3), torch.tensor(-1.0), torch.tensor(0.3), torch.tensor(-1.0)).item() == 0.0
    m1, m2 = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    lv1, lv2 = torch.randn(5, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(m1, (0.5 * lv1).exp()), torch.distributions.Normal(m2, (0.5 * lv2).exp())
    )
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), ref, rtol=1e-12, atol=1e-12)


def test_decoder_likelihoods():
    x = torch.tensor([0.2, -1.0, 1.0], dtype=torch.float64)
    means = torch.tensor([0.2, -1.0, 1.0], dtype=torch.float64)
    log_scales = torch.full((3,), math.log(0.01), dtype=torch.float64)
    ll = discretized_gaussian_log_likelihood(x, means=means, log_scales=log_scales)
    # interior bin +-1/255 around the mean: P = Phi(0.392) - Phi(-0.392); edge bins open to -inf / +inf
    std_normal = torch.distributions.Normal(0.0, 1.0)
    interior = (std_normal.cdf(torch.tensor(100 / 255)) - std_normal.cdf(torch.tensor(-100 / 255))).log().item()
    edge = std_normal.cdf(torch.tensor(100 / 255)).log().item()
    assert ll[0].item() == pytest.approx(interior, abs=2e-3)  # tanh approximation of Phi
    assert ll[1].item() == pytest.approx(edge, abs=2e-3) and ll[2].item() == pytest.approx(edge, abs=2e-3)
    ref = torch.distributions.Normal(means, log_scales.exp()).log_prob(x + 0.1)
    torch.testing.assert_close(gaussian_log_likelihood(x + 0.1, means=means, log_scales=log_scales), ref)


# ------------------------------------------------------------------------------------------------ (b) learned range


def test_learned_log_variance_spans_beta_and_the_clipped_posterior_variance():
    chain = GaussianDiffusion(num_timesteps=1000).chain
    t = torch.tensor([0, 1, 10, 500, 998])
    ones = torch.ones(5, 2, dtype=torch.float64)
    betas = cosine_betas(1000)
    hand_post = []
    for i in t.tolist():
        j = max(i, 1)  # clipped: the t = 0 posterior variance (0) is replaced by that of t = 1
        a, p = hand_alpha_bar((j + 1) / 1000), hand_alpha_bar(j / 1000)
        hand_post.append((1 - a / p) * (1 - p) / (1 - a))
    hand_post = torch.tensor(hand_post, dtype=torch.float64)[:, None]
    log_beta = betas[t].log()[:, None].expand(5, 2)
    torch.testing.assert_close(chain.learned_log_variance(ones, t), log_beta, rtol=1e-9, atol=0)
    torch.testing.assert_close(chain.learned_log_variance(-ones, t), hand_post.log().expand(5, 2), rtol=1e-9, atol=0)
    mid = chain.learned_log_variance(0 * ones, t)
    torch.testing.assert_close(mid, (0.5 * betas[t].log()[:, None] + 0.5 * hand_post.log()).expand(5, 2))
    assert bool((hand_post[1:, 0] < betas[t[1:]]).all())  # beta~ < beta: the range is not degenerate


def test_one_step_chain_has_a_finite_clipped_variance():
    chain = Chain.from_betas(torch.tensor([0.5], dtype=torch.float64))
    assert torch.isfinite(chain.posterior_log_variance_clipped).all()


# ------------------------------------------------------------------------------------------------ (c) respacing


def test_respaced_betas_reproduce_alpha_bar_at_the_kept_steps():
    d = GaussianDiffusion(num_timesteps=1000)
    kept = respaced_timesteps(1000, 100).flip(0)
    betas = respaced_betas(d.alphas_cumprod, kept)
    assert betas.shape == (100,) and betas.dtype == torch.float64
    torch.testing.assert_close(torch.cumprod(1 - betas, 0), d.alphas_cumprod[kept], rtol=1e-10, atol=0)
    assert betas[0].item() == pytest.approx(d.betas[0].item(), rel=1e-12)  # t_0 = 0 keeps the first beta
    # a respaced beta spans ~10 original steps: 1 - prod(1 - beta_j) over them
    j = 50
    span = d.betas[kept[j - 1] + 1: kept[j] + 1]
    assert betas[j].item() == pytest.approx(1 - torch.prod(1 - span).item(), rel=1e-10)
    assert betas[j] > 5 * d.betas[kept[j]]
    chain, kept2 = d.respaced_chain(100)
    assert kept2.tolist() == kept.tolist()
    torch.testing.assert_close(chain.betas, betas)


# ------------------------------------------------------------------------------------------------ (d) vb term


class FixedOutput(nn.Module):
    """A stand-in net whose output is a trainable tensor (so gradients w.r.t. the eps / v channels are visible)."""

    def __init__(self, out: Tensor) -> None:
        super().__init__()
        self.out = nn.Parameter(out)

    def forward(self, x_t: Tensor, t: Tensor, z: Tensor) -> Tensor:
        return self.out + 0 * x_t.sum()


def test_vb_trains_only_the_variance_and_mse_only_the_mean():
    torch.manual_seed(0)
    n, d = 16, 3
    head = DiffLoss(token_dim=d, cond_dim=2, width=8, diffusion_batch_mul=1, learn_sigma=True).double()
    head.net = FixedOutput(0.3 * torch.randn(n, 2 * d, dtype=torch.float64))
    target, z = torch.randn(n, d, dtype=torch.float64), torch.randn(n, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    head(target, z, generator=g).backward()
    grad = head.net.out.grad
    g.manual_seed(1)
    torch.randint(0, 1000, (n,), generator=g)
    noise = torch.randn(n, d, generator=g, dtype=torch.float64)
    # the eps channels get the MSE gradient only: d/d eps of mean_N mean_D (eps - noise)^2
    mse_grad = 2 * (head.net.out[:, :d] - noise).detach() / (n * d)
    torch.testing.assert_close(grad[:, :d], mse_grad, rtol=1e-12, atol=1e-15)
    assert grad[:, d:].abs().min() > 0  # the variance channels are trained by L_vlb

    # the same term without the detach does reach the eps channels (so the check above is not vacuous)
    eps = head.net.out[:, :d].detach().clone().requires_grad_(True)
    t = torch.full((n,), 300)
    x_t = head.diffusion.q_sample(target, t, noise)
    head.diffusion.vb_terms(target, x_t, t, eps, head.net.out[:, d:].detach()).sum().backward()
    assert eps.grad.abs().sum() > 0


def test_vb_of_the_oracle_with_the_posterior_variance_is_zero_after_t0():
    head = oracle_head(dim=4)
    x0 = torch.randn(8, 4, dtype=torch.float64)
    t = torch.tensor([1, 2, 10, 100, 400, 700, 900, 999])
    noise = torch.randn(8, 4, dtype=torch.float64)
    x_t = head.diffusion.q_sample(x0, t, noise)
    ab = head.diffusion.alpha_bar(t, x_t)
    eps = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()  # exact for the point mass at x0
    vb_small = head.diffusion.vb_terms(x0, x_t, t, eps, -torch.ones_like(x0))
    vb_large = head.diffusion.vb_terms(x0, x_t, t, eps, torch.ones_like(x0))
    torch.testing.assert_close(vb_small, torch.zeros(8, dtype=torch.float64), rtol=0, atol=1e-9)
    # KL(N(m, s) || N(m, b)) = (log(b/s) + s/b - 1) / 2 / ln 2 with the true mean
    chain = head.diffusion.chain
    s_, b_ = chain.posterior_variance[t], chain.betas[t]
    expected = 0.5 * ((b_ / s_).log() + s_ / b_ - 1) / math.log(2)
    torch.testing.assert_close(vb_large, expected, rtol=1e-9, atol=1e-12)


def test_loss_at_zero_init_is_mse_plus_the_hand_vb():
    n, d = 64, 2
    head = DiffLoss(token_dim=d, cond_dim=3, width=16, diffusion_batch_mul=1, learn_sigma=True).double()
    g = torch.Generator().manual_seed(0)
    target, z = torch.randn(n, d, dtype=torch.float64), torch.randn(n, 3, dtype=torch.float64)
    loss = head(target, z, generator=g)
    g.manual_seed(0)
    t = torch.randint(0, 1000, (n,), generator=g)
    noise = torch.randn(n, d, generator=g, dtype=torch.float64)
    assert bool((t > 0).all())  # this seed draws no decoder term
    total = 0.0
    for i in range(n):
        ti = t[i].item()
        a, p = hand_alpha_bar((ti + 1) / 1000), hand_alpha_bar(ti / 1000)
        if ti == 999:  # the clipped last beta
            b = 0.999
            a = p * (1 - b)
        else:
            b = 1 - a / p
        post = b * (1 - p) / (1 - a)
        x0, e = target[i].tolist(), noise[i].tolist()
        kl = 0.0
        for x, ei in zip(x0, e):
            xt = math.sqrt(a) * x + math.sqrt(1 - a) * ei
            c1, c2 = b * math.sqrt(p) / (1 - a), (1 - p) * math.sqrt(1 - b) / (1 - a)
            true_mean = c1 * x + c2 * xt
            model_mean = c1 * xt / math.sqrt(a) + c2 * xt  # eps_hat = 0
            var = math.sqrt(b * post)  # v = 0: the geometric mean of beta and beta~
            kl += 0.5 * (math.log(var / post) + post / var + (true_mean - model_mean) ** 2 / var - 1)
        total += sum(ei**2 for ei in e) / d + kl / d / math.log(2)
    assert loss.item() == pytest.approx(total / n, rel=1e-6)


# ------------------------------------------------------------------------------------------------ (e), (f) sampling


def test_learned_variance_sampler_with_the_oracle_recovers_a_point_mass():
    head = oracle_head(dim=3)
    c = torch.randn(6, 3, dtype=torch.float64) * 3
    z = torch.cat([c, -torch.ones_like(c)], dim=1)  # v = -1: the posterior variance
    out = head.sample(z, num_steps=50, temperature=1.3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, c, rtol=1e-8, atol=1e-8)


def test_hand_sample_std_is_below_the_data_std_and_orders_the_variances():
    # the exact-score fixed-small chain shrinks on a short chain; the fixed-large one inflates
    assert hand_sample_std(0.5, 20, -1.0) == pytest.approx(0.4297, abs=1e-3)
    assert hand_sample_std(0.5, 20, 1.0) == pytest.approx(0.5247, abs=1e-3)
    assert hand_sample_std(0.5, 1000, -1.0) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(("v", "temperature"), [(-1.0, 1.0), (1.0, 1.0), (-1.0, 0.5)])
def test_learned_variance_sampler_on_gaussian_data_has_the_computed_std(v, temperature):
    d, n, s, steps = 4, 5000, 0.5, 20
    head = oracle_head(dim=d, s=s)
    mu = torch.tensor([1.0, -2.0, 0.0, 3.0], dtype=torch.float64)
    z = torch.cat([mu.expand(n, d), torch.full((n, d), v, dtype=torch.float64)], dim=1)
    out = head.sample(z, num_steps=steps, temperature=temperature, generator=torch.Generator().manual_seed(0))
    expected = hand_sample_std(s, steps, v, temperature)
    assert (out - mu).std().item() == pytest.approx(expected, abs=0.01)
    torch.testing.assert_close(out.mean(0), mu, rtol=0, atol=0.02)


def test_guidance_uses_the_conditional_rows_variance():
    d, n, s, steps = 4, 4000, 0.5, 20
    head = oracle_head(dim=d, s=s)
    mu = torch.zeros(n, d, dtype=torch.float64)
    cond = torch.cat([mu, -torch.ones(n, d, dtype=torch.float64)], dim=1)
    uncond = torch.cat([mu, torch.ones(n, d, dtype=torch.float64)], dim=1)
    out = head.sample(torch.cat([cond, uncond]), cfg=3.0, num_steps=steps, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2 * n, d)
    torch.testing.assert_close(out[:n], out[n:], rtol=0, atol=0)
    assert out[:n].std().item() == pytest.approx(hand_sample_std(s, steps, -1.0), abs=0.01)


def test_learned_guidance_extrapolates_the_eps_channels():
    head = oracle_head(dim=3)
    c, c_u = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    v = -torch.ones(4, 3, dtype=torch.float64)
    z = torch.cat([torch.cat([c, v], 1), torch.cat([c_u, v], 1)])
    out = head.sample(z, cfg=3.0, num_steps=20, generator=torch.Generator().manual_seed(1))
    expected = c_u + 3.0 * (c - c_u)
    torch.testing.assert_close(out, torch.cat([expected, expected]), rtol=1e-8, atol=1e-8)


def test_learned_head_outputs_two_channels_per_dim():
    assert DiffLoss(token_dim=2, cond_dim=2, width=32, learn_sigma=True).net.final.linear.out_features == 4
    assert DiffLoss(token_dim=2, cond_dim=2, width=32, learn_sigma=False).net.final.linear.out_features == 2
