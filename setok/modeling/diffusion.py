"""Gaussian diffusion over single tokens for the Diffusion loss of SeTokIM (Sec. 2.2, after MAR, Li et al. 2024a).

* Forward process (Ho et al. 2020): ``x_t = sqrt(ab_t) * x_0 + sqrt(1 - ab_t) * eps``.
* Cosine schedule (Nichol & Dhariwal 2021, Eq. 17): ``f(t) = cos^2((t/T + s) / (1 + s) * pi/2)``, ``ab(t) = f(t)/f(0)``,
  ``beta_i = min(1 - ab((i+1)/T) / ab(i/T), max_beta)``; step index ``i = 0..T-1`` sits at time ``(i+1)/T``, so without
  clipping ``alphas_cumprod[i] = ab((i+1)/T)``.
* Sampling on a respaced chain of ``num_steps`` original timesteps (Nichol & Dhariwal 2021 Sec. 4) with the DDIM
  update (Song et al. 2021, Eq. 12): ``eta = 1`` is ancestral DDPM with the posterior ("fixed small") variance,
  ``eta = 0`` deterministic DDIM. ``temperature`` multiplies the noise added at each step (MAR's convention); the
  initial noise is not scaled.
* Learned variance (MAR's released code: ``learn_sigma=True`` -> ``ModelVarType.LEARNED_RANGE``, loss ``MSE``; Nichol &
  Dhariwal 2021, "Improved DDPM"): the net also outputs ``v`` (nominally in ``[-1, 1]``, not clamped) and
  ``log Sigma = frac * log(beta_t) + (1 - frac) * log(beta~_t)`` with ``frac = (v + 1) / 2`` (their Eq. 15), trained by
  ``L_hybrid = L_simple + L_vlb`` (their Eq. 16; MAR uses weight 1 on ``L_vlb``, in bits, with the predicted mean
  detached so ``L_vlb`` only trains the variance). ``L_vlb`` terms (their Eq. 4-6, Ho et al. 2020 Eq. 5):
  ``L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))`` for ``t > 0`` and the decoder NLL ``-log p(x_0 | x_1)``
  at ``t = 0``. Sampling is ancestral with that variance: ``x_prev = mu(x0_hat, x_t) + temperature * exp(log Sigma / 2)
  * noise`` (no noise at the last step). On a respaced chain ``t_0 < ... < t_{K-1}`` the betas are recomputed,
  ``beta'_k = 1 - ab[t_k] / ab[t_{k-1}]`` (``ab[t_{-1}] = 1``), and both the posterior and the variance range use them,
  while the net still receives the original timestep ``t_k`` (Nichol & Dhariwal 2021 Sec. 4; MAR's ``SpacedDiffusion``).

Precision: the schedule is float64 and is rebuilt in float64 whenever the module is cast (``.bfloat16()`` by
DeepSpeed's bf16 engine would otherwise round ``alpha_bar`` of the first ~21 steps to exactly 1). Every coefficient,
square roots included, is computed in float64 and only then cast (as MAR does): ``sqrt(1 - ab)`` from a float32 ``ab``
is off by 2.6e-4 relative at ``t = 0``. The forward process, the losses and the sampling chain run in
:func:`compute_dtype` (float32 for half-precision tokens, the tokens' own dtype otherwise); only the net's input is
cast to the net's dtype.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor, nn

EpsFn = Callable[[Tensor, Tensor], Tensor]
MeanVarFn = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the diffusion arithmetic runs in for tokens of ``dtype``: at least float32 (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


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

    The coefficients are computed in float64 and cast to ``x_t``'s dtype (as MAR computes its schedule): in float32,
    ``1 - ab_t`` near ``t = 0`` keeps few significant bits (``sqrt(1 - ab)`` off by 2.6e-4 relative at ``t = 0``).
    Pass ``ab_t`` and ``ab_prev`` in float64 for that to hold.
    """
    ab_t = torch.as_tensor(ab_t, dtype=torch.float64, device=x_t.device)
    ab_prev = torch.as_tensor(ab_prev, dtype=torch.float64, device=x_t.device)
    sigma = eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).clamp_min(0).sqrt()
    sqrt_ab_t, sqrt_one_minus_ab_t, sqrt_ab_prev, c_direction, c_noise = (
        c.to(x_t.dtype) for c in (ab_t.sqrt(), (1 - ab_t).sqrt(), ab_prev.sqrt(),
                                  (1 - ab_prev - sigma**2).clamp_min(0).sqrt(), temperature * sigma)
    )
    x0 = (x_t - sqrt_one_minus_ab_t * eps) / sqrt_ab_t
    return sqrt_ab_prev * x0 + c_direction * eps + c_noise * noise


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """Elementwise ``KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2)))`` in nats (all arguments broadcast).

    ``KL = 1/2 * (logvar2 - logvar1 + exp(logvar1 - logvar2) + (mean1 - mean2)^2 * exp(-logvar2) - 1)``.
    """
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def approx_standard_normal_cdf(x: Tensor) -> Tensor:
    """The tanh approximation ``Phi(x) ~ 1/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` used by ADM/MAR."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_log_likelihood(
    x: Tensor, *, means: Tensor, log_scales: Tensor, half_bin: float = 1.0 / 255.0
) -> Tensor:
    """``log P(bin of x)`` under ``N(means, exp(log_scales)^2)`` for data on a 256-level grid in ``[-1, 1]`` (Ho et al.
    2020 Eq. 13, as in ADM/MAR's decoder term).

    The bin is ``[x - half_bin, x + half_bin]``; for ``x < -0.999`` it extends to ``-inf`` and for ``x > 0.999`` to
    ``+inf``. Probabilities are clamped at ``1e-12`` before the log. All tensors ``(N, D)``; returns ``(N, D)`` nats.
    """
    centered = x - means
    inv_std = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centered + half_bin))
    cdf_min = approx_standard_normal_cdf(inv_std * (centered - half_bin))
    log_cdf_plus = cdf_plus.clamp(min=1e-12).log()
    log_one_minus_cdf_min = (1.0 - cdf_min).clamp(min=1e-12).log()
    log_delta = (cdf_plus - cdf_min).clamp(min=1e-12).log()
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


def gaussian_log_likelihood(x: Tensor, *, means: Tensor, log_scales: Tensor) -> Tensor:
    """Continuous log density ``log N(x; means, exp(log_scales)^2)`` (nats), elementwise on ``(N, D)``."""
    return -0.5 * math.log(2 * math.pi) - log_scales - 0.5 * ((x - means) * torch.exp(-log_scales)) ** 2


def respaced_betas(alphas_cumprod: Tensor, kept: Tensor) -> Tensor:
    """Betas of the chain that keeps only the timesteps ``kept`` of an original chain (MAR/IDDPM ``SpacedDiffusion``).

    ``beta'_k = 1 - ab[t_k] / ab[t_{k-1}]`` with ``ab[t_{-1}] = 1``, so ``prod_{j<=k} (1 - beta'_j) = ab[t_k]``.

    Args:
        alphas_cumprod: ``(T,)`` float64 ``alpha_bar`` of the original chain.
        kept: ``(K,)`` long, strictly increasing original timesteps ``t_0 < ... < t_{K-1}``.

    Returns: ``(K,)`` float64.
    """
    ab = alphas_cumprod[kept.to(alphas_cumprod.device)]  # (K,)
    ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])  # (K,)
    return 1 - ab / ab_prev


class Chain(NamedTuple):
    """Per-step coefficients of a (possibly respaced) chain of ``K`` steps, all ``(K,)`` and indexed by the chain's own
    step ``k`` (``k = 0`` is the least noisy step). Built in float64 by :meth:`from_betas` (IDDPM/MAR conventions).

    * ``alphas_cumprod[k] = prod_{j<=k} (1 - beta_j)``; ``alphas_cumprod_prev[k] = alphas_cumprod[k-1]`` (1 at ``k=0``).
    * Posterior ``q(x_{k-1} | x_k, x_0) = N(coef1 x_0 + coef2 x_k, beta~_k)`` (Ho et al. 2020 Eq. 6-7):
      ``beta~_k = beta_k (1 - ab_{k-1}) / (1 - ab_k)``, ``coef1 = beta_k sqrt(ab_{k-1}) / (1 - ab_k)``,
      ``coef2 = (1 - ab_{k-1}) sqrt(1 - beta_k) / (1 - ab_k)``.
    * ``posterior_log_variance_clipped``: ``log beta~_k`` with ``beta~_0 = 0`` replaced by ``beta~_1`` (a one-step
      chain, which never adds noise, uses ``log beta_0``).
    * ``x_0 = sqrt(1/ab_k) x_k - sqrt(1/ab_k - 1) eps`` uses ``sqrt_recip_alphas_cumprod``/``sqrt_recipm1_...``.
    """

    betas: Tensor
    log_betas: Tensor
    alphas_cumprod: Tensor
    alphas_cumprod_prev: Tensor
    posterior_variance: Tensor
    posterior_log_variance_clipped: Tensor
    posterior_mean_coef1: Tensor
    posterior_mean_coef2: Tensor
    sqrt_recip_alphas_cumprod: Tensor
    sqrt_recipm1_alphas_cumprod: Tensor

    @classmethod
    def from_betas(cls, betas: Tensor) -> Chain:
        """Args: betas ``(K,)`` (float64 for accuracy). Returns: the chain's coefficients in ``betas``' dtype."""
        ab = torch.cumprod(1 - betas, 0)  # (K,)
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])  # (K,)
        post_var = betas * (1 - ab_prev) / (1 - ab)  # (K,); 0 at k = 0
        clipped = torch.cat([post_var[1:2], post_var[1:]]) if len(betas) > 1 else betas
        return cls(
            betas=betas,
            log_betas=betas.log(),
            alphas_cumprod=ab,
            alphas_cumprod_prev=ab_prev,
            posterior_variance=post_var,
            posterior_log_variance_clipped=clipped.log(),
            posterior_mean_coef1=betas * ab_prev.sqrt() / (1 - ab),
            posterior_mean_coef2=(1 - ab_prev) * (1 - betas).sqrt() / (1 - ab),
            sqrt_recip_alphas_cumprod=(1 / ab).sqrt(),
            sqrt_recipm1_alphas_cumprod=(1 / ab - 1).sqrt(),
        )

    def cast(self, dtype: torch.dtype) -> Chain:
        """All coefficients converted to ``dtype`` (computed in float64 first, as MAR does)."""
        return Chain(*(c.to(dtype) for c in self))

    @staticmethod
    def at(coef: Tensor, k: Tensor, like: Tensor) -> Tensor:
        """``coef[k]`` for ``k (N,)`` as ``(N, 1)`` in the dtype/device of ``like``."""
        return coef[k.to(coef.device)].to(like)[:, None]

    def predict_x0(self, x_t: Tensor, k: Tensor, eps: Tensor) -> Tensor:
        """``x0_hat = sqrt(1/ab_k) x_t - sqrt(1/ab_k - 1) eps``; ``x_t, eps (N, D)``, ``k (N,)`` -> ``(N, D)``."""
        c_x = self.at(self.sqrt_recip_alphas_cumprod, k, x_t)  # (N, 1)
        c_eps = self.at(self.sqrt_recipm1_alphas_cumprod, k, x_t)  # (N, 1)
        return c_x * x_t - c_eps * eps

    def posterior(self, x0: Tensor, x_t: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Mean ``(N, D)`` and clipped log variance ``(N, 1)`` of ``q(x_{k-1} | x_k, x_0)``."""
        mean = self.at(self.posterior_mean_coef1, k, x_t) * x0 + self.at(self.posterior_mean_coef2, k, x_t) * x_t
        return mean, self.at(self.posterior_log_variance_clipped, k, x_t)

    def learned_log_variance(self, v: Tensor, k: Tensor) -> Tensor:
        """LEARNED_RANGE (Nichol & Dhariwal 2021 Eq. 15): ``frac = (v + 1) / 2``,
        ``log Sigma = frac log beta_k + (1 - frac) log beta~_k`` (clipped); ``v (N, D)`` -> ``(N, D)``.
        ``v = 1`` gives ``beta_k`` ("fixed large"), ``v = -1`` the posterior variance ("fixed small")."""
        frac = (v + 1) / 2
        return frac * self.at(self.log_betas, k, v) + (1 - frac) * self.at(self.posterior_log_variance_clipped, k, v)

    def p_mean_log_variance(self, x_t: Tensor, k: Tensor, eps: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """``p(x_{k-1} | x_k) = N(mu, Sigma)``: ``mu = posterior mean at x0_hat(x_t, eps)`` (no clipping, as MAR's
        ``clip_denoised=False``) and the learned ``log Sigma``. Inputs ``(N, D)``, ``k (N,)``; returns 2 x
        ``(N, D)``."""
        mean, _ = self.posterior(self.predict_x0(x_t, k, eps), x_t, k)
        return mean, self.learned_log_variance(v, k)


def vb_terms_bits(
    chain: Chain, x0: Tensor, x_t: Tensor, k: Tensor, eps: Tensor, v: Tensor, *, decoder: str = "discretized"
) -> Tensor:
    """One term of the variational bound per token, in bits (nats / ln 2), averaged over the token's ``D`` channels
    (Nichol & Dhariwal 2021 Eq. 4-6; MAR's ``_vb_terms_bpd``).

    ``L_{k-1} = KL(q(x_{k-1} | x_k, x_0) || p(x_{k-1} | x_k))`` for ``k > 0`` with the clipped posterior log variance;
    at ``k = 0`` the decoder NLL ``L_0 = -log p(x_0 | x_1)``.

    Decoder term. ``decoder="discretized"`` (default) is MAR's released behaviour, inherited from ADM:
    :func:`discretized_gaussian_log_likelihood`, which assumes 8-bit data in ``[-1, 1]`` (bins of width 2/255, open
    tails beyond +-0.999). SeTok tokens are continuous and not confined to ``[-1, 1]``, so the principled term would be
    the continuous density (``decoder="gaussian"``, :func:`gaussian_log_likelihood`). We keep MAR's copy as the
    default: the term only reaches the variance output at ``k = 0`` (the mean is detached by the caller), and that
    variance is never used when sampling (the last step adds no noise), so the choice only nudges shared weights
    through ``1/T`` of the samples.

    Args:
        chain: coefficients of the chain ``k`` indexes.
        x0: ``(N, D)`` clean tokens; x_t: ``(N, D)`` noised tokens; k: ``(N,)`` long chain steps.
        eps: ``(N, D)`` predicted noise (pass it detached to train only the variance, as MAR does).
        v: ``(N, D)`` variance outputs of the net.
        decoder: ``"discretized"`` (MAR) or ``"gaussian"``.

    Returns: ``(N,)`` bits.
    """
    true_mean, true_log_var = chain.posterior(x0, x_t, k)  # (N, D), (N, 1)
    mean, log_var = chain.p_mean_log_variance(x_t, k, eps, v)  # 2 x (N, D)
    kl = normal_kl(true_mean, true_log_var, mean, log_var).mean(-1) / math.log(2.0)  # (N,)
    if decoder == "discretized":
        ll = discretized_gaussian_log_likelihood(x0, means=mean, log_scales=0.5 * log_var)
    elif decoder == "gaussian":
        ll = gaussian_log_likelihood(x0, means=mean, log_scales=0.5 * log_var)
    else:
        raise ValueError(f"decoder must be 'discretized' or 'gaussian', got {decoder!r}")
    nll = -ll.mean(-1) / math.log(2.0)  # (N,)
    return torch.where(k.to(kl.device) == 0, nll, kl)


class GaussianDiffusion(nn.Module):
    """The cosine-schedule forward process, its variational-bound term and its respaced samplers.

    The schedule lives in float64 non-persistent buffers (moved by ``.to(device)``, and rebuilt in float64 after any
    dtype cast of the module). Coefficients are cast to the dtype of the tensors they multiply, which callers keep at
    :func:`compute_dtype` (at least float32).

    Args:
        num_timesteps: ``T`` (1000 in MAR).
        s, max_beta: cosine schedule parameters (0.008, 0.999).
    """

    def __init__(self, *, num_timesteps: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> None:
        super().__init__()
        self.num_timesteps = num_timesteps
        self.s, self.max_beta = s, max_beta
        self._build(torch.device("cpu"))

    def _build(self, device: torch.device) -> None:
        with torch.device("cpu"):  # computed on the CPU in float64 even inside a `with torch.device("meta")` build
            betas = cosine_betas(self.num_timesteps, s=self.s, max_beta=self.max_beta)  # (T,)
            alphas_cumprod = torch.cumprod(1 - betas, 0)  # (T,)
            # The training chain as MAR builds it (a SpacedDiffusion keeping every step: betas recomputed from ab).
            chain = Chain.from_betas(respaced_betas(alphas_cumprod, torch.arange(self.num_timesteps)))
        self.register_buffer("betas", betas.to(device), persistent=False)
        self.register_buffer("alphas_cumprod", alphas_cumprod.to(device), persistent=False)
        # q(x_t | x_0)'s coefficients, square roots taken in float64 (cast per use): float32 1 - ab loses bits at t ~ 0.
        self.register_buffer("sqrt_alphas_cumprod", alphas_cumprod.sqrt().to(device), persistent=False)
        self.register_buffer("sqrt_one_minus_alphas_cumprod", (1 - alphas_cumprod).sqrt().to(device),
                             persistent=False)
        for name, value in chain._asdict().items():
            self.register_buffer(f"chain_{name}", value.to(device), persistent=False)
        # Sampling chains by (steps, dtype): generation samples once per visual token, always with the same chain.
        self._sampling_chains: dict[tuple[int, torch.dtype], tuple[Chain, list[int]]] = {}

    def _apply(self, fn, recurse=True):  # noqa: ANN001, ANN202 - torch's signature
        """Apply ``fn`` (``.to``, ``.bfloat16()``, ...) and then rebuild the schedule in float64 on the new device."""
        super()._apply(fn, recurse)
        self._build(self.betas.device)
        return self

    @property
    def chain(self) -> Chain:
        """The ``T``-step training chain (float64, indexed by the original timestep)."""
        return Chain(*(getattr(self, f"chain_{name}") for name in Chain._fields))

    def alpha_bar(self, t: Tensor, like: Tensor) -> Tensor:
        """``alpha_bar`` at integer timesteps ``t (N,)``, as ``(N, 1)`` in the dtype/device of ``like``."""
        return self.alphas_cumprod[t.to(self.alphas_cumprod.device)].to(like)[:, None]  # (N, 1)

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Draw ``x_t ~ q(x_t | x_0)``, computed in :func:`compute_dtype` of ``x0`` (float32 for bf16 tokens).

        Args:
            x0: ``(N, D)`` clean tokens.
            t: ``(N,)`` long timesteps in ``[0, T)``.
            noise: ``(N, D)`` standard normal.

        Returns: ``(N, D)`` ``sqrt(ab_t) x0 + sqrt(1 - ab_t) noise``, in the compute dtype; both square roots are
        taken in float64 and then cast (MAR's ``_extract_into_tensor`` of float64 arrays).
        """
        dtype = compute_dtype(x0.dtype)
        x0, noise = x0.to(dtype), noise.to(dtype)
        t = t.to(self.alphas_cumprod.device)
        a = self.sqrt_alphas_cumprod[t].to(x0)[:, None]  # (N, 1)
        b = self.sqrt_one_minus_alphas_cumprod[t].to(x0)[:, None]  # (N, 1)
        return a * x0 + b * noise

    def vb_terms(
        self, x0: Tensor, x_t: Tensor, t: Tensor, eps: Tensor, v: Tensor, *, decoder: str = "discretized"
    ) -> Tensor:
        """:func:`vb_terms_bits` on the training chain; inputs ``(N, D)`` (same dtype), ``t (N,)``; returns ``(N,)``."""
        return vb_terms_bits(self.chain, x0, x_t, t, eps, v, decoder=decoder)

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
        """Run the DDIM/DDPM reverse chain (fixed variance) over :func:`respaced_timesteps` from ``x_T`` to ``x_0``.

        The chain runs in :func:`compute_dtype` of ``x_T``; ``eps_fn`` receives ``x`` in that dtype and its output is
        cast to it.

        Args:
            eps_fn: ``(x_t (N, D), t (N,) long original timesteps) -> eps (N, D)``.
            x_T: ``(N, D)`` initial noise.
            num_steps: length of the respaced chain.
            temperature, eta: see :func:`ddim_step`.
            generator: source of the per-step noise.

        Returns: ``(N, D)`` samples in the compute dtype.
        """
        steps = respaced_timesteps(self.num_timesteps, num_steps).tolist()
        x = x_T.to(compute_dtype(x_T.dtype))
        for k, t in enumerate(steps):
            t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)  # (N,)
            ab_t = self.alphas_cumprod[t]  # float64: ddim_step takes its square roots before casting
            ab_prev = self.alphas_cumprod[steps[k + 1]] if k + 1 < len(steps) else ab_t.new_ones(())
            eps = eps_fn(x, t_batch).to(x.dtype)
            last = k + 1 == len(steps)
            noise = x.new_zeros(x.shape) if last else torch.randn(
                x.shape, generator=generator, device=x.device, dtype=x.dtype
            )
            x = ddim_step(x, eps, ab_t, ab_prev, noise=noise, eta=eta, temperature=temperature)
        return x

    def respaced_chain(self, num_steps: int) -> tuple[Chain, Tensor]:
        """The ``num_steps``-step chain (float64) and its original timesteps ``(K,)`` in increasing order."""
        kept = respaced_timesteps(self.num_timesteps, num_steps).flip(0).to(self.alphas_cumprod.device)  # (K,)
        return Chain.from_betas(respaced_betas(self.alphas_cumprod, kept)), kept

    def p_sample_loop(
        self,
        mean_var_fn: MeanVarFn,
        x_T: Tensor,
        *,
        num_steps: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Ancestral sampling with the learned variance on the respaced chain (MAR's ``p_sample_loop``).

        For ``k = K-1 .. 0``: ``(eps, v) = mean_var_fn(x, t_k)`` with the ORIGINAL timestep ``t_k``;
        ``x <- mu + temperature * exp(log Sigma / 2) * noise`` (:meth:`Chain.p_mean_log_variance` with the respaced
        betas), no noise at ``k = 0``. Runs in :func:`compute_dtype` of ``x_T`` with float64-built coefficients.

        Args:
            mean_var_fn: ``(x_t (N, D), t (N,) long original timesteps) -> (eps (N, D), v (N, D))``.
            x_T: ``(N, D)`` initial noise.
            num_steps: ``K``.
            temperature: scale of the added noise.
            generator: source of the per-step noise.

        Returns: ``(N, D)`` samples in the compute dtype.
        """
        x = x_T.to(compute_dtype(x_T.dtype))
        key = (num_steps, x.dtype)
        if key not in self._sampling_chains:
            chain, kept = self.respaced_chain(num_steps)
            self._sampling_chains[key] = chain.cast(x.dtype), kept.tolist()
        chain, kept = self._sampling_chains[key]
        for k in range(num_steps - 1, -1, -1):
            k_batch = torch.full((x.shape[0],), k, dtype=torch.long, device=x.device)  # (N,)
            t_batch = torch.full((x.shape[0],), kept[k], dtype=torch.long, device=x.device)  # (N,)
            eps, v = mean_var_fn(x, t_batch)
            mean, log_var = chain.p_mean_log_variance(x, k_batch, eps.to(x.dtype), v.to(x.dtype))
            if k == 0:
                x = mean
            else:
                noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
                x = mean + temperature * torch.exp(0.5 * log_var) * noise
        return x
