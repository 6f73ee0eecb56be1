"""Cross-check of the hand-written cosine schedule (MAR's numerics, float64) against diffusers' ``DDPMScheduler`` with
``beta_schedule="squaredcos_cap_v2"`` (issue 18 item 11; docs/paper-notes.md S11).

Where the two define the same thing they agree to float precision:

* betas: diffusers evaluates Nichol & Dhariwal Eq. 17 in Python floats and stores float32, ours is float64: equal
  after rounding ours to float32.
* ``alphas_cumprod``: diffusers multiplies in float32; given diffusers' own betas in float64 the products are equal.
* the posterior (Ho et al. 2020 Eq. 6-7), the fixed-small and learned-range variances and whole ancestral chains on a
  respaced schedule: diffusers' ``timestep_spacing="linspace"`` keeps the same original timesteps as MAR's
  ``space_timesteps(T, "K")``, and its ``step`` recomputes ``beta_t = 1 - ab[t] / ab[prev_t]`` from ``alphas_cumprod``,
  which is MAR's ``SpacedDiffusion`` definition. The chain coefficients are compared with diffusers' formulas run on our
  float64 ``alphas_cumprod`` (definitions, to 1e-12) and on its own float32 schedule (precision, to float32 accuracy).

Where they differ by definition (asserted below): at the least noisy step MAR clips the posterior log variance to
``log beta~_1`` while diffusers clamps ``beta~_0 = 0`` to 1e-20; neither adds noise at that step, so sampled chains are
identical. diffusers' default ``timestep_spacing="leading"`` is a different respacing from MAR's.
"""
import math

import pytest
import torch

from setok.modeling.diffusion import Chain, GaussianDiffusion, respaced_betas, respaced_timesteps

diffusers = pytest.importorskip("diffusers")  # the test extra in pyproject.toml (environment.yml installs it)

T = 1000


def scheduler(**kw: object) -> "diffusers.DDPMScheduler":
    return diffusers.DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=False,
                                   **kw)


def float64_scheduler(d: GaussianDiffusion, **kw: object) -> "diffusers.DDPMScheduler":
    """diffusers' formulas on our float64 schedule (compares definitions, not float32 rounding)."""
    s = scheduler(**kw)
    s.betas, s.alphas, s.alphas_cumprod = d.betas.clone(), 1 - d.betas, d.alphas_cumprod.clone()
    s.one = torch.tensor(1.0, dtype=torch.float64)
    return s


def test_betas_equal_diffusers_squaredcos_cap_v2_to_float32_rounding():
    d, s = GaussianDiffusion(num_timesteps=T), scheduler()
    assert s.betas.dtype == torch.float32 and d.betas.dtype == torch.float64
    torch.testing.assert_close(d.betas.float(), s.betas, rtol=0, atol=0)
    assert d.betas[-1] == 0.999 and (d.betas[:-1] < 0.999).all()  # max_beta clips only the last step, in both


def test_alphas_cumprod_equal_diffusers():
    d, s = GaussianDiffusion(num_timesteps=T), scheduler()
    # Same definition: the cumulative product of diffusers' own betas, taken in float64, is ours to float64 rounding
    # of the float32 betas (relative 6e-8 per factor).
    torch.testing.assert_close(torch.cumprod(1 - s.betas.double(), 0), d.alphas_cumprod, rtol=1e-6, atol=1e-12)
    # diffusers' float32 product accumulates float32 error over 1000 factors.
    torch.testing.assert_close(s.alphas_cumprod.double(), d.alphas_cumprod, rtol=2e-5, atol=1e-9)
    # The training chain (a SpacedDiffusion keeping every step, betas recomputed from ab) is the same schedule.
    torch.testing.assert_close(d.chain.alphas_cumprod, d.alphas_cumprod, rtol=1e-14, atol=0)
    torch.testing.assert_close(d.chain.betas, d.betas, rtol=1e-12, atol=0)


def test_q_sample_equals_add_noise():
    d = GaussianDiffusion(num_timesteps=T)
    s = float64_scheduler(d)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(64, 8, generator=g, dtype=torch.float64), torch.randn(64, 8, generator=g,
                                                                                 dtype=torch.float64)
    t = torch.randint(0, T, (64,), generator=g)
    ours = d.q_sample(x0, t, noise)
    theirs = s.add_noise(x0, noise, t)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("num_steps", [1000, 250, 100, 64, 50, 7, 2])
def test_respacing_keeps_the_timesteps_of_diffusers_linspace(num_steps: int):
    s = scheduler(timestep_spacing="linspace")
    s.set_timesteps(num_steps)
    assert respaced_timesteps(T, num_steps).tolist() == s.timesteps.tolist()
    if num_steps not in (T, 2):  # diffusers' default spacing ("leading") is another respacing
        lead = scheduler()
        lead.set_timesteps(num_steps)
        assert respaced_timesteps(T, num_steps).tolist() != lead.timesteps.tolist()


@pytest.mark.parametrize("num_steps", [1000, 100, 7])
def test_respaced_chain_coefficients_equal_diffusers_step(num_steps: int):
    """beta'_k, the posterior variance and both posterior-mean coefficients of the respaced chain, step by step."""
    d = GaussianDiffusion(num_timesteps=T)
    chain, kept = d.respaced_chain(num_steps)  # kept increasing
    # diffusers' own float32 schedule: 1 - ab_t and 1 - ab_t / ab_prev cancel near t = 0 (beta_0 and the posterior
    # coefficients of the first steps off by up to 5e-4 relative: the loss MAR's float64 schedule avoids).
    for s, rel, tol in ((float64_scheduler(d, timestep_spacing="linspace"), 1e-12, 1e-30),
                        (scheduler(timestep_spacing="linspace"), 1e-3, 3e-7)):
        s.set_timesteps(num_steps)
        assert s.timesteps.flip(0).tolist() == kept.tolist()
        for k, t in enumerate(kept.tolist()):
            prev_t = int(s.previous_timestep(t))
            ab_t = s.alphas_cumprod[t].double()
            ab_prev = s.alphas_cumprod[prev_t].double() if prev_t >= 0 else torch.tensor(1.0, dtype=torch.float64)
            beta = 1 - ab_t / ab_prev  # diffusers' current_beta_t
            coef1 = ab_prev**0.5 * beta / (1 - ab_t)  # pred_original_sample_coeff
            coef2 = (1 - beta) ** 0.5 * (1 - ab_prev) / (1 - ab_t)  # current_sample_coeff
            expect = {"betas": beta, "posterior_mean_coef1": coef1, "posterior_mean_coef2": coef2,
                      "posterior_variance": s._get_variance(t, variance_type="fixed_small").double()}
            for name, value in expect.items():
                got = getattr(chain, name)[k]
                if name == "posterior_variance" and k == 0:
                    assert got == 0 and value == pytest.approx(1e-20)  # diffusers clamps beta~_0 = 0 to 1e-20
                    continue
                assert math.isclose(got, value, rel_tol=rel, abs_tol=tol), (name, k, t, float(got), float(value))


def test_log_variance_clipping_at_the_first_step_is_the_one_difference():
    d = GaussianDiffusion(num_timesteps=T)
    s = float64_scheduler(d, timestep_spacing="linspace", variance_type="learned_range")
    s.set_timesteps(100)
    chain, kept = d.respaced_chain(100)
    v = torch.tensor([-1.0, -0.3, 0.0, 0.5, 1.0], dtype=torch.float64)[:, None]
    for k in (1, 2, 50, 99):
        ours = chain.learned_log_variance(v, torch.full((5,), k))
        theirs = s._get_variance(int(kept[k]), predicted_variance=v)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    # k = 0: MAR's posterior_log_variance_clipped uses log beta~_1; diffusers log(1e-20).
    assert chain.posterior_log_variance_clipped[0] == chain.posterior_log_variance_clipped[1]
    assert s._get_variance(int(kept[0]), predicted_variance=v)[0] == pytest.approx(math.log(1e-20))


def mean_var_fn(x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed smooth stand-in for the net: ``(eps, v)`` from ``x (N, D)`` and original timesteps ``t (N,)``."""
    tt = t.to(x)[:, None] / T
    return torch.tanh(x) * (1 - tt) + 0.3 * tt, torch.sin(3 * x + tt).clamp(-1, 1)


@pytest.mark.parametrize("num_steps", [100, 7])
def test_learned_variance_sampling_equals_diffusers_ddpm_chain(num_steps: int):
    d = GaussianDiffusion(num_timesteps=T)
    x_T = torch.randn(16, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = d.p_sample_loop(mean_var_fn, x_T, num_steps=num_steps, generator=torch.Generator().manual_seed(2))
    s = float64_scheduler(d, timestep_spacing="linspace", variance_type="learned_range")
    s.set_timesteps(num_steps)
    x, g = x_T.clone(), torch.Generator().manual_seed(2)
    for t in s.timesteps.tolist():
        eps, v = mean_var_fn(x, torch.full((x.shape[0],), t))
        x = s.step(torch.cat([eps, v], 1), t, x, generator=g).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("num_steps", [100, 7])
def test_fixed_small_ddpm_sampling_equals_diffusers(num_steps: int):
    d = GaussianDiffusion(num_timesteps=T)
    x_T = torch.randn(16, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    eps_fn = lambda x, t: mean_var_fn(x, t)[0]  # noqa: E731
    ours = d.sample_loop(eps_fn, x_T, num_steps=num_steps, eta=1.0, generator=torch.Generator().manual_seed(4))
    s = float64_scheduler(d, timestep_spacing="linspace")
    s.set_timesteps(num_steps)
    x, g = x_T.clone(), torch.Generator().manual_seed(4)
    for t in s.timesteps.tolist():
        x = s.step(eps_fn(x, torch.full((x.shape[0],), t)), t, x, generator=g).prev_sample
    torch.testing.assert_close(ours, x, rtol=1e-8, atol=1e-10)


def test_respaced_betas_are_recomputed_from_alpha_bar():
    """MAR's SpacedDiffusion and diffusers' step both derive beta'_k from alpha_bar of the kept steps; the original
    betas at those steps are a different (wrong) chain."""
    d = GaussianDiffusion(num_timesteps=T)
    kept = respaced_timesteps(T, 10).flip(0)
    b = respaced_betas(d.alphas_cumprod, kept)
    torch.testing.assert_close(torch.cumprod(1 - b, 0), d.alphas_cumprod[kept], rtol=1e-9, atol=0)
    assert not torch.allclose(b, d.betas[kept])
    assert Chain.from_betas(b).alphas_cumprod[-1] == pytest.approx(float(d.alphas_cumprod[-1]), rel=1e-13)
