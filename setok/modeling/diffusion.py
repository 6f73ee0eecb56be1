"""Gaussian diffusion over single tokens for the Diffusion loss of SeTokIM (Sec. 2.2, after MAR, Li et al. 2024a).

* Forward process (Ho et al. 2020): ``x_t = sqrt(ab_t) * x_0 + sqrt(1 - ab_t) * eps``.
* Cosine schedule (Nichol & Dhariwal 2021, Eq. 17): ``f(t) = cos^2((t/T + s) / (1 + s) * pi/2)``, ``ab(t) = f(t)/f(0)``,
  ``beta_i = min(1 - ab((i+1)/T) / ab(i/T), max_beta)``; step index ``i = 0..T-1`` sits at time ``(i+1)/T``, so without
  clipping ``alphas_cumprod[i] = ab((i+1)/T)``.
* Sampling on a respaced chain of ``num_steps`` original timesteps (Nichol & Dhariwal 2021 Sec. 4) with the DDIM
  update (Song et al. 2021, Eq. 12): ``eta = 1`` is ancestral DDPM with the posterior ("fixed small") variance,
  ``eta = 0`` deterministic DDIM. ``temperature`` multiplies the noise added at each step (MAR's convention); the
  initial noise is not scaled.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

EpsFn = Callable[[Tensor, Tensor], Tensor]


def cosine_alpha_bar(t: Tensor, *, s: float = 0.008) -> Tensor:
    """Continuous cosine ``ab(t) = f(t) / f(0)`` with ``f(t) = cos^2((t + s) / (1 + s) * pi/2)``.

    Args:
        t: times in ``[0, 1]`` (any shape).
        s: offset that keeps ``beta`` from being tiny near ``t = 0``.

    Returns: ``ab(t)``, same shape as ``t``.
    """
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return f / math.cos(s / (1 + s) * math.pi / 2) ** 2


def cosine_betas(num_timesteps: int, *, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Discrete betas of the cosine schedule.

    Args:
        num_timesteps: ``T``.
        s: see :func:`cosine_alpha_bar`.
        max_beta: clip that avoids the singularity at ``t = T`` (only the last step is clipped for ``T >= 3``).

    Returns: ``(T,)`` float64 ``beta_i = min(1 - ab((i+1)/T) / ab(i/T), max_beta)``.
    """
    grid = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps  # (T+1,)
    ab = cosine_alpha_bar(grid, s=s)  # (T+1,)
    return (1 - ab[1:] / ab[:-1]).clamp(max=max_beta)


def respaced_timesteps(num_timesteps: int, num_steps: int) -> Tensor:
    """Evenly spaced original timesteps for a ``num_steps``-step sampler, from ``T-1`` down to ``0``.

    Returns: ``(num_steps,)`` long, strictly decreasing; ``[T-1]`` when ``num_steps == 1``.
    """
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"num_steps must be in [1, {num_timesteps}], got {num_steps}")
    return torch.linspace(num_timesteps - 1, 0, num_steps, dtype=torch.float64).round().long()


def ddim_step(
    x_t: Tensor,
    eps: Tensor,
    ab_t: Tensor | float,
    ab_prev: Tensor | float,
    *,
    noise: Tensor,
    eta: float = 1.0,
    temperature: float = 1.0,
) -> Tensor:
    """One reverse step ``x_t -> x_prev`` from a noise prediction (DDIM Eq. 12).

    ``x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)``;
    ``sigma = eta * sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev))``;
    ``x_prev = sqrt(ab_prev) x0 + sqrt(1 - ab_prev - sigma^2) eps + temperature * sigma * noise``.
    With ``eta = 1`` the mean and ``sigma^2`` are those of the posterior ``q(x_prev | x_t, x0)``; with ``ab_prev = 1``
    (the last step) ``x_prev = x0``.

    Args:
        x_t: ``(N, D)`` current state.
        eps: ``(N, D)`` predicted noise.
        ab_t, ab_prev: ``alpha_bar`` at this and the next (less noisy) step, scalars or broadcastable to ``(N, D)``.
        noise: ``(N, D)`` standard normal draw.
        eta: 1 for DDPM, 0 for DDIM.
        temperature: scale of the added noise.

    Returns: ``(N, D)`` ``x_prev``.
    """
    ab_t = torch.as_tensor(ab_t, dtype=x_t.dtype, device=x_t.device)
    ab_prev = torch.as_tensor(ab_prev, dtype=x_t.dtype, device=x_t.device)
    x0 = (x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).clamp_min(0).sqrt()
    direction = (1 - ab_prev - sigma**2).clamp_min(0).sqrt() * eps
    return ab_prev.sqrt() * x0 + direction + temperature * sigma * noise


class GaussianDiffusion(nn.Module):
    """The cosine-schedule forward process and its respaced sampler.

    The schedule lives in float64 non-persistent buffers (moved by ``.to(device)``); coefficients are cast to the
    dtype of the tensors they multiply.

    Args:
        num_timesteps: ``T`` (1000 in MAR).
        s, max_beta: cosine schedule parameters (0.008, 0.999).
    """

    def __init__(self, *, num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> None:
        super().__init__()
        self.num_timesteps = num_timesteps
        betas = cosine_betas(num_timesteps, s=s, max_beta=max_beta)  # (T,)
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0), persistent=False)

    def alpha_bar(self, t: Tensor, like: Tensor) -> Tensor:
        """``alpha_bar`` at integer timesteps ``t (N,)``, as ``(N, 1)`` in the dtype/device of ``like``."""
        return self.alphas_cumprod[t.to(self.alphas_cumprod.device)].to(like)[:, None]  # (N, 1)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Draw ``x_t ~ q(x_t | x_0)``.

        Args:
            x0: ``(N, D)`` clean tokens.
            t: ``(N,)`` long timesteps in ``[0, T)``.
            noise: ``(N, D)`` standard normal.

        Returns: ``(N, D)`` ``sqrt(ab_t) x0 + sqrt(1 - ab_t) noise``.
        """
        ab = self.alpha_bar(t, x0)  # (N, 1)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def sample_loop(
        self,
        eps_fn: EpsFn,
        x_T: Tensor,
        *,
        num_steps: int,
        temperature: float = 1.0,
        eta: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Run the reverse chain over :func:`respaced_timesteps` from ``x_T`` to ``x_0``.

        Args:
            eps_fn: ``(x_t (N, D), t (N,) long original timesteps) -> eps (N, D)``.
            x_T: ``(N, D)`` initial noise.
            num_steps: length of the respaced chain.
            temperature, eta: see :func:`ddim_step`.
            generator: source of the per-step noise.

        Returns: ``(N, D)`` samples.
        """
        steps = respaced_timesteps(self.num_timesteps, num_steps).tolist()
        x = x_T
        for k, t in enumerate(steps):
            t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)  # (N,)
            ab_t = self.alphas_cumprod[t]
            ab_prev = self.alphas_cumprod[steps[k + 1]] if k + 1 < len(steps) else ab_t.new_ones(())
            eps = eps_fn(x, t_batch)
            last = k + 1 == len(steps)
            noise = x.new_zeros(x.shape) if last else torch.randn(
                x.shape, generator=generator, device=x.device, dtype=x.dtype
            )
            x = ddim_step(x, eps, ab_t.to(x), ab_prev.to(x), noise=noise, eta=eta, temperature=temperature)
        return x
