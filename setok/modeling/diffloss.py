"""Diffusion loss ``L_vis`` of SeTokIM (Sec. 2.2 "Training Objectives", Appendix D.1; MAR, Li et al. 2024a).

The LLM produces a condition ``z_i`` for the next visual token; ``p(y_i | z_i)`` is a per-token diffusion model whose
denoiser is a small MLP of residual blocks (LayerNorm -> Linear -> SiLU -> Linear, residual), conditioned on
``z_i`` plus a timestep embedding through adaptive LayerNorm (shift, scale, gate), as in MAR's ``SimpleMLPAdaLN``.
The network predicts the noise ``eps`` and is trained with ``||eps - eps_theta(x_t, t, z)||^2``
(see :mod:`setok.modeling.diffusion` for the schedule and the sampler).

``learn_sigma`` chooses between the two readings of "the Diffusion loss (Li et al., 2024a)":

* ``True`` (default; MAR's released code, ``out_channels = 2 * D``, ``create_diffusion(learn_sigma=True)``): the net
  also outputs ``v`` for the LEARNED_RANGE variance and the loss per token is ``mse(eps) + L_vlb`` with the mean
  detached inside ``L_vlb`` (Nichol & Dhariwal 2021 Eq. 16 with weight 1, bits); sampling is ancestral with the
  learned variance on the respaced chain.
* ``False``: MAR's paper equation, the plain eps-MSE, with the fixed-small-variance DDPM/DDIM sampler (``eta``).

Precision: the forward process, the losses and the sampling chain run in float32 (or float64) even when the tokens,
``z`` and the net are bf16; only the net's input is cast to the net's dtype (see :mod:`setok.modeling.diffusion`).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from setok.modeling.diffusion import GaussianDiffusion, compute_dtype


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
    ``out = AdaLNFinalLayer(h, y)``. Linear layers are Xavier-uniform with zero bias, the timestep MLP N(0, 0.02),
    and every modulation and the output projection zero (so the network outputs 0 at initialisation).

    Args:
        token_dim: width ``D`` of a visual token.
        cond_dim: width ``C`` of the LLM condition ``z``.
        width: hidden width of the MLP.
        depth: number of residual blocks (3 in the paper).
        frequency_dim: width of the sinusoidal timestep features.
        out_dim: output width; ``token_dim`` (eps only) by default, ``2 * token_dim`` for ``[eps, v]`` (learned
            variance).
    """

    def __init__(
        self,
        *,
        token_dim: int,
        cond_dim: int,
        width: int,
        depth: int = 3,
        frequency_dim: int = 256,
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.input_proj = nn.Linear(token_dim, width)
        self.cond_proj = nn.Linear(cond_dim, width)
        self.time_embed = TimestepEmbedder(width=width, frequency_dim=frequency_dim)
        self.blocks = nn.ModuleList(AdaLNResBlock(width=width) for _ in range(depth))
        self.final = AdaLNFinalLayer(width=width, out_dim=token_dim if out_dim is None else out_dim)
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

        Returns: ``(N, out_dim)``: the predicted noise ``(N, D)``, followed by ``v (N, D)`` when ``out_dim = 2 D``.
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
        learn_sigma: learned-range variance trained by ``L_vlb`` (MAR's released code) when True; plain eps-MSE with
            the fixed posterior variance when False (see the module docstring).
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
        learn_sigma: bool = True,
    ) -> None:
        super().__init__()
        self.token_dim = token_dim
        self.diffusion_batch_mul = diffusion_batch_mul
        self.learn_sigma = learn_sigma
        out_dim = 2 * token_dim if learn_sigma else token_dim
        self.net = DenoisingMLP(token_dim=token_dim, cond_dim=cond_dim, width=width, depth=depth, out_dim=out_dim)
        self.diffusion = GaussianDiffusion(num_timesteps=num_timesteps)

    def _net_dtype(self, default: torch.dtype) -> torch.dtype:
        """The dtype of the net's parameters (``default`` for a parameter-free stand-in)."""
        param = next(self.net.parameters(), None)
        return default if param is None else param.dtype

    def forward(
        self, target: Tensor, z: Tensor, mask: Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """``L_vis``: mean over valid tokens (and their ``diffusion_batch_mul`` copies) of ``mean_D (eps - eps_hat)^2``,
        plus (``learn_sigma``) the token's variational-bound term in bits with ``eps_hat`` detached.

        ``x_t``, the noise and the loss are float32 for half-precision inputs (the net sees ``x_t`` in its own dtype).

        Args:
            target: ``(N, D)`` ground-truth tokens ``y_i``.
            z: ``(N, C)`` LLM conditions ``z_i``.
            mask: ``(N,)`` bool or float weights, 0 for tokens that must not contribute; all tokens when None.
            generator: source of ``t ~ U{0..T-1}`` and ``eps ~ N(0, I)``.

        Returns: scalar loss in the compute dtype (0 when no token is valid).
        """
        mul, d = self.diffusion_batch_mul, self.token_dim
        dtype = compute_dtype(target.dtype)
        target = target.repeat(mul, 1).to(dtype)  # (mul*N, D)
        z = z.repeat(mul, 1)  # (mul*N, C)
        n = target.shape[0]
        t = torch.randint(0, self.diffusion.num_timesteps, (n,), generator=generator, device=target.device)  # (mul*N,)
        noise = torch.randn(target.shape, generator=generator, device=target.device, dtype=dtype)  # (mul*N, D)
        x_t = self.diffusion.q_sample(target, t, noise)  # (mul*N, D)
        out = self.net(x_t.to(self._net_dtype(dtype)), t, z).to(dtype)  # (mul*N, D or 2D)
        eps = out[:, :d]  # (mul*N, D)
        per_token = (eps - noise).pow(2).mean(-1)  # (mul*N,)
        if self.learn_sigma:
            per_token = per_token + self.diffusion.vb_terms(target, x_t, t, eps.detach(), out[:, d:])
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
        With ``learn_sigma`` only the eps channels are guided; the chain uses the conditional row's own variance
        (MAR keeps each row's variance channels and the caller keeps the conditional half), and ``eta`` is unused
        (ancestral sampling with the learned variance). The chain runs in float32 for half-precision ``z``.

        Args:
            z: ``(N, C)`` conditions (``N`` even when ``cfg != 1``).
            temperature: scale of the noise added at each step.
            cfg: classifier-free guidance scale.
            num_steps: sampling steps (100 in MAR).
            eta: 1 for ancestral DDPM, 0 for DDIM (``learn_sigma=False`` only).
            generator: makes the draw deterministic.

        Returns: ``(N, D)`` tokens, in the dtype of ``z``.
        """
        guided = cfg != 1.0
        if guided and z.shape[0] % 2:
            raise ValueError("classifier-free guidance needs z = [cond; uncond] with an even batch")
        m = z.shape[0] // 2 if guided else z.shape[0]
        d, dtype = self.token_dim, compute_dtype(z.dtype)
        net_dtype = self._net_dtype(dtype)
        x_T = torch.randn((m, d), generator=generator, device=z.device, dtype=dtype)  # (M, D)

        def net_out(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
            """``x (M, D)`` (chain dtype) -> guided ``eps (M, D)`` and the conditional rows' output ``(M, *)``."""
            if not guided:
                out = self.net(x.to(net_dtype), t, z).to(x.dtype)  # (M, D or 2D)
                return out[:, :d], out
            out_c, out_u = self.net(x.to(net_dtype).repeat(2, 1), t.repeat(2), z).to(x.dtype).chunk(2)  # 2 x (M, *)
            eps_c, eps_u = out_c[:, :d], out_u[:, :d]
            return eps_u + cfg * (eps_c - eps_u), out_c

        if self.learn_sigma:
            def mean_var_fn(x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
                eps, out_c = net_out(x, t)
                return eps, out_c[:, d:]  # the conditional row's own variance channels

            x0 = self.diffusion.p_sample_loop(
                mean_var_fn, x_T, num_steps=num_steps, temperature=temperature, generator=generator
            )  # (M, D)
        else:
            x0 = self.diffusion.sample_loop(
                lambda x, t: net_out(x, t)[0], x_T, num_steps=num_steps, temperature=temperature, eta=eta,
                generator=generator,
            )  # (M, D)
        x0 = x0.to(z.dtype)
        return x0.repeat(2, 1) if guided else x0  # (N, D)
