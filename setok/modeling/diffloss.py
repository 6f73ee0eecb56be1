"""Diffusion loss ``L_vis`` of SeTokIM (Sec. 2.2 "Training Objectives", Appendix D.1; MAR, Li et al. 2024a).

The LLM produces a condition ``z_i`` for the next visual token; ``p(y_i | z_i)`` is a per-token diffusion model whose
denoiser is a small MLP of residual blocks (LayerNorm -> Linear -> SiLU -> Linear, residual), conditioned on
``z_i`` plus a timestep embedding through adaptive LayerNorm (shift, scale, gate), as in MAR's ``SimpleMLPAdaLN``.
The network predicts the noise ``eps`` and is trained with ``||eps - eps_theta(x_t, t, z)||^2``
(see :mod:`setok.modeling.diffusion` for the schedule and the sampler).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from setok.modeling.diffusion import GaussianDiffusion


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """AdaLN modulation ``x * (1 + scale) + shift`` (DiT); all ``(N, W)``."""
    return x * (1 + scale) + shift


def timestep_embedding(t: Tensor, dim: int, *, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding ``[cos(t * w_k), sin(t * w_k)]`` with ``w_k = max_period^(-k / (dim/2))``.

    Args:
        t: ``(N,)`` timesteps (may be fractional).
        dim: embedding width (an odd width gets a trailing zero).

    Returns: ``(N, dim)`` float32 (the phases of ``t`` up to ``T`` need float32 precision).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)  # (d/2,)
    args = t.to(torch.float32)[:, None] * freqs[None]  # (N, d/2)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (N, 2*(d/2))
    return nn.functional.pad(emb, (0, dim % 2))  # (N, dim)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features followed by a two-layer SiLU MLP: ``(N,) -> (N, width)``."""

    def __init__(self, *, width: int, frequency_dim: int = 256) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: Tensor) -> Tensor:
        """Args: t ``(N,)``. Returns: ``(N, width)``."""
        features = timestep_embedding(t, self.frequency_dim).to(self.mlp[0].weight.dtype)  # (N, F)
        return self.mlp(features)


class AdaLNResBlock(nn.Module):
    """``x + gate * MLP(modulate(LN(x), shift, scale))`` with ``(shift, scale, gate)`` from the condition ``y``.

    The MLP is Linear -> SiLU -> Linear (App. D.1). The modulation layer is zero-initialised, so the block is the
    identity at initialisation.
    """

    def __init__(self, *, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))
        nn.init.zeros_(self.modulation[-1].weight)
        nn.init.zeros_(self.modulation[-1].bias)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Args: x ``(N, W)`` hidden tokens; y ``(N, W)`` condition. Returns: ``(N, W)``."""
        shift, scale, gate = self.modulation(y).chunk(3, dim=-1)  # 3 x (N, W)
        return x + gate * self.mlp(modulate(self.norm(x), shift, scale))


class AdaLNFinalLayer(nn.Module):
    """``Linear(modulate(LN(x), shift, scale))`` to the output width; modulation and projection zero-initialised."""

    def __init__(self, *, width: int, out_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.linear = nn.Linear(width, out_dim)
        for layer in (self.modulation[-1], self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Args: x ``(N, W)``; y ``(N, W)``. Returns: ``(N, out_dim)``."""
        shift, scale = self.modulation(y).chunk(2, dim=-1)  # 2 x (N, W)
        return self.linear(modulate(self.norm(x), shift, scale))


class DenoisingMLP(nn.Module):
    """The noise predictor ``eps_theta(x_t, t, z)`` of the Diffusion loss (App. D.1).

    ``h = W_in x_t``; ``y = TimestepEmbed(t) + W_z z``; ``h = AdaLNResBlock(h, y)`` ``depth`` times;
    ``eps = AdaLNFinalLayer(h, y)``. Linear layers are Xavier-uniform with zero bias, the timestep MLP N(0, 0.02),
    and every modulation and the output projection zero (so the network outputs 0 at initialisation).

    Args:
        token_dim: width ``D`` of a visual token.
        cond_dim: width ``C`` of the LLM condition ``z``.
        width: hidden width of the MLP.
        depth: number of residual blocks (3 in the paper).
        frequency_dim: width of the sinusoidal timestep features.
    """

    def __init__(self, *, token_dim: int, cond_dim: int, width: int, depth: int = 3, frequency_dim: int = 256) -> None:
        super().__init__()
        self.input_proj = nn.Linear(token_dim, width)
        self.cond_proj = nn.Linear(cond_dim, width)
        self.time_embed = TimestepEmbedder(width=width, frequency_dim=frequency_dim)
        self.blocks = nn.ModuleList(AdaLNResBlock(width=width) for _ in range(depth))
        self.final = AdaLNFinalLayer(width=width, out_dim=token_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        zeroed = [blk.modulation[-1] for blk in self.blocks] + [self.final.modulation[-1], self.final.linear]
        time_mlp = [self.time_embed.mlp[0], self.time_embed.mlp[2]]
        for module in self.modules():
            if not isinstance(module, nn.Linear):
                continue
            if any(module is z for z in zeroed):
                nn.init.zeros_(module.weight)
            elif any(module is m for m in time_mlp):
                nn.init.normal_(module.weight, std=0.02)
            else:
                nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(self, x_t: Tensor, t: Tensor, z: Tensor) -> Tensor:
        """Args:
            x_t: ``(N, D)`` noisy tokens.
            t: ``(N,)`` timesteps.
            z: ``(N, C)`` conditions.

        Returns: ``(N, D)`` predicted noise.
        """
        h = self.input_proj(x_t)  # (N, W)
        y = self.time_embed(t) + self.cond_proj(z)  # (N, W)
        for blk in self.blocks:
            h = blk(h, y)
        return self.final(h, y)


class DiffLoss(nn.Module):
    """Per-token diffusion head: the training loss ``L_vis`` and the sampler of ``p(y | z)``.

    Args:
        token_dim: width ``D`` of a visual token.
        cond_dim: width ``C`` of the LLM condition ``z``.
        width: hidden width of the denoising MLP.
        depth: residual blocks (3, App. D.1).
        num_timesteps: training diffusion steps ``T`` (1000).
        diffusion_batch_mul: each token is noised this many times per loss call (MAR; 4).
    """

    def __init__(
        self,
        *,
        token_dim: int,
        cond_dim: int,
        width: int,
        depth: int = 3,
        num_timesteps: int = 1000,
        diffusion_batch_mul: int = 4,
    ) -> None:
        super().__init__()
        self.token_dim = token_dim
        self.diffusion_batch_mul = diffusion_batch_mul
        self.net = DenoisingMLP(token_dim=token_dim, cond_dim=cond_dim, width=width, depth=depth)
        self.diffusion = GaussianDiffusion(num_timesteps=num_timesteps)

    def forward(
        self, target: Tensor, z: Tensor, mask: Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """``L_vis``: mean over valid tokens (and their ``diffusion_batch_mul`` copies) of ``mean_D (eps - eps_hat)^2``.

        Args:
            target: ``(N, D)`` ground-truth tokens ``y_i``.
            z: ``(N, C)`` LLM conditions ``z_i``.
            mask: ``(N,)`` bool or float weights, 0 for tokens that must not contribute; all tokens when None.
            generator: source of ``t ~ U{0..T-1}`` and ``eps ~ N(0, I)``.

        Returns: scalar loss (0 when no token is valid).
        """
        mul = self.diffusion_batch_mul
        target = target.repeat(mul, 1)  # (mul*N, D)
        z = z.repeat(mul, 1)  # (mul*N, C)
        n = target.shape[0]
        t = torch.randint(0, self.diffusion.num_timesteps, (n,), generator=generator, device=target.device)  # (mul*N,)
        noise = torch.randn(target.shape, generator=generator, device=target.device, dtype=target.dtype)
        x_t = self.diffusion.q_sample(target, t, noise)  # (mul*N, D)
        per_token = (self.net(x_t, t, z) - noise).pow(2).mean(-1)  # (mul*N,)
        if mask is None:
            return per_token.mean()
        weight = mask.to(per_token.dtype).repeat(mul)  # (mul*N,)
        return (per_token * weight).sum() / weight.sum().clamp_min(1)

    @torch.no_grad()
    def sample(
        self,
        z: Tensor,
        *,
        temperature: float = 1.0,
        cfg: float = 1.0,
        num_steps: int = 100,
        eta: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Draw tokens from ``p(y | z)`` on a ``num_steps`` respaced chain.

        With ``cfg != 1`` the batch is ``[cond; uncond]`` (MAR): one chain per conditional row is run with
        ``eps = eps_u + cfg * (eps_c - eps_u)`` and its result is returned in both halves (callers keep the first).

        Args:
            z: ``(N, C)`` conditions (``N`` even when ``cfg != 1``).
            temperature: scale of the noise added at each step.
            cfg: classifier-free guidance scale.
            num_steps: sampling steps (100 in MAR).
            eta: 1 for ancestral DDPM (MAR), 0 for DDIM.
            generator: makes the draw deterministic.

        Returns: ``(N, D)`` tokens, in the dtype of ``z``.
        """
        guided = cfg != 1.0
        if guided and z.shape[0] % 2:
            raise ValueError("classifier-free guidance needs z = [cond; uncond] with an even batch")
        m = z.shape[0] // 2 if guided else z.shape[0]
        x_T = torch.randn((m, self.token_dim), generator=generator, device=z.device, dtype=z.dtype)  # (M, D)

        def eps_fn(x: Tensor, t: Tensor) -> Tensor:
            if not guided:
                return self.net(x, t, z)  # (N, D)
            eps_c, eps_u = self.net(x.repeat(2, 1), t.repeat(2), z).chunk(2)  # 2 x (M, D)
            return eps_u + cfg * (eps_c - eps_u)

        x0 = self.diffusion.sample_loop(
            eps_fn, x_T, num_steps=num_steps, temperature=temperature, eta=eta, generator=generator
        )  # (M, D)
        return x0.repeat(2, 1) if guided else x0  # (N, D)
