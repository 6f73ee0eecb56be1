"""Token Cluster of SeTok (Sec. 2.1, Eq. 1-2, Appendix C.1 Algorithm 1).

The public entry point is :func:`cluster` (docs/design.md §6). Everything is batched over images: the only Python
loop is over the *iterations* of Algorithm 1 (one new mask per iteration), never over the batch.

Readings of the paper chosen here (see ``docs/paper-notes.md`` §Clustering for the reasons):

* Eq. 1 and Eq. 2 are density-peak clustering (DPC-KNN, Du et al. 2016, which the paper cites): local density
  ``rho = exp(-mean_KNN ||u - v||^2)`` and ``delta`` = distance to the nearest denser feature
  (``density_measure="distance"``, default). ``density_measure="kernel"`` evaluates the equations literally with
  the similarity kernel ``phi`` of footnote 2.
* The kernel of footnote 2, ``phi(u, v) = exp(-||u - v||^2 * C * ln 2)``, equals 1/2 at ``||u - v||^2 = 1/C``; ``C``
  is a bandwidth (``kernel_c``), or ``kernel_c`` times the index of the mask being built (``kernel_scale="iteration"``).
* Algorithm 1 line 4 is ``alpha = sigmoid(logit(phi) - beta * s)`` (``alpha_form="logit"``, default): with
  ``beta = 0`` it is exactly the stick-breaking process of GENESIS-V2 (Engelcke et al. 2021) that the paper builds on.
  ``alpha_form="literal"`` computes ``sigmoid(phi - beta * s)`` as printed.
* Hard mode thresholds alpha at 1/2; soft mode keeps it continuous. The seed always belongs to its own mask.
* StopCondition: stop when the best remaining seed score ``max(z * s)`` falls below ``min_seed_score`` (scores are
  normalised per image to a maximum of 1), when the scope is exhausted, or at ``max_tokens``. The final scope is a
  token when some location is still mostly unexplained (``max z >= 1/2``); otherwise it is folded back by
  renormalising, so the masks still sum to one.
* Soft mode decides its seeds and its count on the *hard* scope (``soft_count="hard_scope"``, default): the scope
  that seeds are drawn from and that the StopCondition reads is updated with the thresholded alpha, while the masks
  use the continuous alpha on their own continuous scope. The soft count then equals the hard count on the same
  features. ``soft_count="soft_scope"`` runs Algorithm 1 on the continuous scope alone; there ``phi >= 2^(-4C)`` on
  unit-norm features shrinks every location's scope at every step, so the count is set by ``kernel_c`` and
  ``beta`` rather than by the content (paper-notes C6).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Mode = Literal["hard", "soft", "fixed"]
SOFT_COUNTS = ("hard_scope", "soft_scope")

_EPS = 1e-6


@dataclass(frozen=True)
class ClusterOutput:
    """Result of clustering a batch of feature maps.

    Attributes:
        masks: ``(B, H*W, C)`` concept masks ``M``; sums to 1 over ``C`` at every location; columns past
            ``num_tokens[b]`` are zero. ``C`` is the largest token count in the batch.
        num_tokens: ``(B,)`` LongTensor, the number of tokens of each image.
        seeds: ``(B, C)`` LongTensor, flat location of each mask's seed; ``-1`` for the final-scope mask and padding.
        scores: ``(B, H*W)`` seed scores ``s = rho * delta`` normalised to a per-image maximum of 1.
    """

    masks: Tensor
    num_tokens: Tensor
    seeds: Tensor
    scores: Tensor

    @property
    def valid(self) -> Tensor:
        """``(B, C)`` bool, True for real (non-padding) tokens."""
        c = torch.arange(self.masks.shape[-1], device=self.masks.device)
        return c[None, :] < self.num_tokens[:, None]

    def assignment(self) -> Tensor:
        """``(B, H*W)`` index of the token with the largest mask value at each location (exact in hard mode)."""
        return self.masks.argmax(dim=-1)


def cluster_agreement(a: ClusterOutput, b: ClusterOutput) -> dict[str, float]:
    """How far two clusterings of the same images agree (e.g. one tokenizer in fp32 and in bf16).

    Tokens are identified by their seed location (the final-scope token by ``-1``), so the comparison does not depend
    on token order. Returns ``count``: the share of images with the same number of tokens; ``patch``: the share of
    locations whose token (seed) is the same in both.
    """
    count = (a.num_tokens == b.num_tokens).float().mean().item()
    seed_a = a.seeds.gather(1, a.assignment())  # (B, N): the seed of each location's token
    seed_b = b.seeds.gather(1, b.assignment())
    return {"count": count, "patch": (seed_a == seed_b).float().mean().item()}


def pairwise_sq_distances(x: Tensor, *, unit_norm: bool = False) -> Tensor:
    """Squared Euclidean distances between all locations of each image.

    Args:
        x: ``(B, N, D)`` features.
        unit_norm: the rows of ``x`` have unit L2 norm, so ``||u - v||^2 = 2 - 2 u.v`` (one fused matmul).

    Returns:
        ``(B, N, N)`` matrix ``||x_i - x_j||^2``, clamped at 0, with an exact zero diagonal.
    """
    if unit_norm:
        two = x.new_full((1, 1, 1), 2.0)
        d2 = torch.baddbmm(two, x, x.transpose(1, 2), alpha=-2.0)  # (B, N, N)
    else:
        sq = x.pow(2).sum(-1)  # (B, N)
        d2 = torch.baddbmm(sq[:, :, None] + sq[:, None, :], x, x.transpose(1, 2), alpha=-2.0)  # (B, N, N)
    d2.clamp_(min=0.0)
    d2.diagonal(dim1=1, dim2=2).zero_()
    return d2


def kernel(d2: Tensor, c: float | Tensor) -> Tensor:
    """Footnote 2: ``phi(u, v) = exp(-||u - v||^2 * C * ln 2)`` from squared distances ``d2``."""
    return torch.exp(-d2 * (c * math.log(2.0)))


def local_density(d2: Tensor, *, knn: int, measure: str = "distance", kernel_c: float = 1.0) -> Tensor:
    """Eq. (1): local density from the ``knn`` nearest neighbours (self excluded).

    Args:
        d2: ``(B, N, N)`` squared distances.
        knn: number of neighbours ``K``.
        measure: ``"distance"`` uses ``||u - v||^2`` (DPC-KNN); ``"kernel"`` uses ``phi`` literally.
        kernel_c: bandwidth ``C`` of ``phi`` (only for ``measure="kernel"``).

    Returns:
        ``(B, N)`` density ``rho``.
    """
    n = d2.shape[-1]
    k = min(knn, n - 1)
    if k < 1:
        return torch.ones(d2.shape[:2], dtype=d2.dtype, device=d2.device)
    # The k+1 smallest include the location itself (distance 0); drop that one.
    nearest = torch.topk(d2, k + 1, dim=-1, largest=False).values[..., 1:]  # (B, N, k)
    if measure == "kernel":
        nearest = kernel(nearest, kernel_c)
    return torch.exp(-nearest.mean(-1))


def density_rank(rho: Tensor) -> Tensor:
    """``(B, N)`` rank of each location by density, 0 = densest; ties broken by the lower flat index.

    This makes "higher density" in Eq. (2) a strict total order, so exactly one location per image is the
    global peak and no random tie-breaking noise is needed.
    """
    order = torch.sort(rho, dim=-1, descending=True, stable=True).indices  # (B, N)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(rho.shape[1], device=rho.device).expand_as(order))
    return rank


def peak_distance(d2: Tensor, rho: Tensor, *, measure: str = "distance", kernel_c: float = 1.0) -> Tensor:
    """Eq. (2): ``delta``, the distance to the nearest denser location (the farthest one for the global peak).

    Args:
        d2: ``(B, N, N)`` squared distances.
        rho: ``(B, N)`` densities from Eq. (1).
        measure: ``"distance"`` uses ``||u - v||`` (DPC); ``"kernel"`` uses ``phi`` exactly as Eq. (2) prints it.
        kernel_c: bandwidth ``C`` of ``phi`` (only for ``measure="kernel"``).

    Returns:
        ``(B, N)`` ``delta``.
    """
    rank = density_rank(rho)
    denser = rank[:, None, :] < rank[:, :, None]  # (B, N, N): [b, i, j] = j is denser than i
    peak = rank.argmin(-1)  # (B,) the only location with no denser one
    batch = torch.arange(d2.shape[0], device=d2.device)
    if measure == "kernel":
        # Literal Eq. (2) with the similarity phi: min phi over denser locations is phi at the *farthest* denser
        # one (phi decreases with distance); the peak gets max_{m,n} phi = phi(x, x) = 1.
        farthest = d2.masked_fill(~denser, -math.inf).amax(-1)  # (B, N)
        delta = kernel(farthest, kernel_c)
        delta[batch, peak] = 1.0
        return delta
    # DPC: search on d2 (monotone in the distance) and take the square root of the (B, N) result only.
    nearest = d2.masked_fill(~denser, math.inf).amin(-1)  # (B, N); inf only at the global peak
    nearest[batch, peak] = d2[batch, peak].amax(-1)  # Eq. (2) "otherwise" branch: the farthest location
    return nearest.sqrt()


def seed_scores(
    features: Tensor,
    *,
    knn: int = 5,
    density_measure: str = "distance",
    kernel_c: float = 1.0,
    unit_norm: bool = False,
) -> tuple[Tensor, Tensor]:
    """Seed scores ``s = rho * delta`` (Sec. 2.1), normalised to a per-image maximum of 1.

    Args:
        features: ``(B, N, D)``.

    Returns:
        ``(scores (B, N), d2 (B, N, N))``; the squared distances are returned for reuse by Algorithm 1.
    """
    d2 = pairwise_sq_distances(features, unit_norm=unit_norm)
    rho = local_density(d2, knn=knn, measure=density_measure, kernel_c=kernel_c)
    delta = peak_distance(d2, rho, measure=density_measure, kernel_c=kernel_c)
    s = rho * delta
    s = s / s.amax(-1, keepdim=True).clamp_min(torch.finfo(s.dtype).tiny)
    return s, d2


def _alpha_logits(phi: Tensor, s: Tensor, *, beta: float, form: str) -> Tensor:
    """The argument of the sigmoid in Algorithm 1 line 4 for a batch of seeds. ``phi``, ``s``: ``(B, N)``."""
    if form == "logit":
        return torch.logit(phi.clamp(_EPS, 1.0 - _EPS)) - beta * s
    return phi - beta * s  # "literal": sigmoid(phi - beta * s) as printed


def _alpha(phi: Tensor, s: Tensor, *, beta: float, form: str, hard: bool) -> Tensor:
    """Algorithm 1 line 4 for a batch of seeds. ``phi``, ``s``: ``(B, N)``."""
    logits = _alpha_logits(phi, s, beta=beta, form=form)
    if hard:
        return (logits > 0).to(phi.dtype)
    return torch.sigmoid(logits)


def _stick_breaking(
    d2: Tensor,
    s: Tensor,
    *,
    hard: bool,
    beta: float,
    kernel_c: float,
    kernel_scale: str,
    alpha_form: str,
    min_seed_score: float,
    max_tokens: int,
    soft_count: str = "hard_scope",
) -> tuple[Tensor, Tensor, Tensor]:
    """Algorithm 1, batched. Returns ``(masks (B, N, T), num_tokens (B,), seeds (B, T))`` with T = max_tokens.

    ``z`` is the scope the masks are cut from (lines 5-6). ``zc`` is the scope that lines 3 and 8 and the
    StopCondition read: ``z`` itself in hard mode and with ``soft_count="soft_scope"``; with ``"hard_scope"`` in soft
    mode it is updated with the thresholded alpha, so seeds and count are those of hard mode (paper-notes C6).
    """
    b, n = s.shape
    batch = torch.arange(b, device=s.device)
    masks = s.new_zeros(b, n, max_tokens)
    seeds = torch.full((b, max_tokens), -1, dtype=torch.long, device=s.device)
    z = s.new_ones(b, n)  # scope
    hard_count = not hard and soft_count == "hard_scope"
    zc = s.new_ones(b, n) if hard_count else z  # the scope seeds and the StopCondition read
    active = torch.ones(b, dtype=torch.bool, device=s.device)
    count = torch.zeros(b, dtype=torch.long, device=s.device)
    # Leave one column for the final scope (line 8).
    for t in range(max_tokens - 1):
        zs = zc * s
        best, seed = zs.max(-1)  # line 3, (B,)
        # StopCondition: no seed worth taking, or nothing left to explain.
        active = active & (best >= min_seed_score) & (best > 0)
        if not bool(active.any()):
            break
        c = kernel_c * (t + 1) if kernel_scale == "iteration" else kernel_c
        phi = kernel(d2[batch, seed], c)  # (B, N): phi(X, x_seed)
        alpha = _alpha(phi, s, beta=beta, form=alpha_form, hard=hard)
        alpha[batch, seed] = 1.0  # the seed always belongs to its own mask
        alpha = alpha * active[:, None]  # stopped images add nothing more
        masks[:, :, t] = z * alpha  # line 5
        z = z * (1.0 - alpha)  # line 6
        if hard_count:
            alpha_hard = _alpha(phi, s, beta=beta, form=alpha_form, hard=True)
            alpha_hard[batch, seed] = 1.0
            zc = zc * (1.0 - alpha_hard * active[:, None])  # line 6 with the thresholded alpha
        else:
            zc = z
        seeds[:, t] = torch.where(active, seed, -1)
        count += active.long()
    # Line 8: the final scope explains the remaining embeddings. It is a token only if some location is still
    # mostly unexplained; otherwise its (negligible) mass is folded back by renormalising the masks.
    keep_final = zc.amax(-1) >= 0.5  # (B,)
    masks[batch, :, count] = torch.where(keep_final[:, None], z, masks[batch, :, count])
    folded = ~keep_final
    if bool(folded.any()):
        total = masks[folded].sum(-1, keepdim=True).clamp_min(_EPS)
        masks[folded] = masks[folded] / total
    num_tokens = count + keep_final.long()
    return masks, num_tokens, seeds


def _fixed_k(d2: Tensor, s: Tensor, *, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Fixed-K baseline of Table 5: the ``k`` highest seed scores are centres (DPC); every location joins its
    nearest centre. Returns hard ``(masks (B, N, k), num_tokens (B,), seeds (B, k))``."""
    b, n = s.shape
    if k > n:
        raise ValueError(f"fixed clustering asks for {k} tokens but the feature map has only {n} locations")
    seeds = torch.topk(s, k, dim=-1).indices  # (B, k)
    to_centre = torch.gather(d2, 1, seeds[:, :, None].expand(b, k, n))  # (B, k, N)
    nearest = to_centre.argmin(1)  # (B, N)
    nearest.scatter_(1, seeds, torch.arange(k, device=s.device).expand(b, k))  # centres keep their own token
    masks = torch.nn.functional.one_hot(nearest, k).to(s.dtype)  # (B, N, k)
    return masks, torch.full((b,), k, dtype=torch.long, device=s.device), seeds


@torch.no_grad()
def cluster(
    features: Tensor,
    *,
    mode: Mode = "hard",
    knn: int = 5,
    beta: float = 1.0,
    kernel_c: float = 1.0,
    kernel_scale: str = "constant",
    density_measure: str = "distance",
    alpha_form: str = "logit",
    min_seed_score: float = 0.1,
    max_tokens: int = 64,
    num_clusters: int | None = None,
    normalize: bool = True,
    soft_count: str = "hard_scope",
) -> ClusterOutput:
    """Cluster patch features into a variable number of concept masks (Algorithm 1).

    Args:
        features: ``(B, H, W, D)`` visual embeddings ``X``.
        mode: ``"hard"`` (every location in exactly one token), ``"soft"`` (continuous masks) or ``"fixed"``
            (exactly ``num_clusters`` tokens, the Table 5 baselines).
        knn: ``K`` of Eq. (1).
        beta: penalty weight of Algorithm 1 line 4.
        kernel_c: bandwidth ``C`` of the kernel in footnote 2.
        kernel_scale: ``"constant"`` or ``"iteration"`` (``C`` grows with the index of the mask).
        density_measure: ``"distance"`` (DPC-KNN reading of Eq. 1-2) or ``"kernel"`` (literal).
        alpha_form: ``"logit"`` (``sigmoid(logit(phi) - beta s)``) or ``"literal"`` (``sigmoid(phi - beta s)``).
        min_seed_score: StopCondition threshold on the best remaining normalised seed score.
        max_tokens: largest number of masks per image, final scope included.
        num_clusters: tokens per image in ``"fixed"`` mode.
        normalize: L2-normalise features before measuring distances (squared distances then lie in [0, 4]).
        soft_count: soft mode only: ``"hard_scope"`` draws seeds and stops on the thresholded scope (same seeds and
            count as hard mode; the masks stay soft), ``"soft_scope"`` on the continuous scope (paper-notes C6).

    Returns:
        :class:`ClusterOutput` with masks ``(B, H*W, C)``.
    """
    if features.dim() != 4:
        raise ValueError(f"features must be (B, H, W, D), got shape {tuple(features.shape)}")
    b, h, w, d = features.shape
    x = features.reshape(b, h * w, d).float()
    if normalize:
        x = torch.nn.functional.normalize(x, dim=-1)
    s, d2 = seed_scores(x, knn=knn, density_measure=density_measure, kernel_c=kernel_c, unit_norm=normalize)
    if mode == "fixed":
        if num_clusters is None:
            raise ValueError("mode='fixed' needs num_clusters")
        masks, num_tokens, seeds = _fixed_k(d2, s, k=num_clusters)
    elif mode in ("hard", "soft"):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if soft_count not in SOFT_COUNTS:
            raise ValueError(f"soft_count must be one of {SOFT_COUNTS}, got {soft_count!r}")
        masks, num_tokens, seeds = _stick_breaking(
            d2, s, hard=mode == "hard", beta=beta, kernel_c=kernel_c, kernel_scale=kernel_scale,
            alpha_form=alpha_form, min_seed_score=min_seed_score, max_tokens=max_tokens, soft_count=soft_count,
        )
    else:
        raise ValueError(f"unknown clustering mode {mode!r}; expected 'hard', 'soft' or 'fixed'")
    c = int(num_tokens.max())
    return ClusterOutput(
        masks=masks[:, :, :c].to(features.dtype), num_tokens=num_tokens, seeds=seeds[:, :c], scores=s
    )
