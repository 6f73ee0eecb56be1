"""Fréchet distance between Gaussian feature statistics (the FID formula).

The distance itself is torch-fidelity's ``fid_statistics_to_metric`` (TTUR formula,
``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 * sum(sqrt(eig(S1 @ S2)))``); this module only validates shapes and does the
bookkeeping, so the number is the one torch-fidelity reports for the same statistics.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from evaluation.bootstrap import DEFAULT_RESAMPLES, percentile_interval


class FidStats(TypedDict):
    """Mean and covariance of a feature set (float64)."""

    mu: np.ndarray
    sigma: np.ndarray


def fid_statistics(features: np.ndarray) -> FidStats:
    """Mean and (unbiased, ``ddof=1``) covariance of ``(n, d)`` features, as torch-fidelity computes them.

    Args:
        features: ``(n, d)`` array with ``n >= 2``.

    Returns:
        ``{"mu": (d,), "sigma": (d, d)}`` in float64.
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"features must be (n, d) with n >= 2, got shape {f.shape}")
    return {"mu": f.mean(axis=0), "sigma": np.atleast_2d(np.cov(f, rowvar=False))}


def frechet_distance(stats1: FidStats, stats2: FidStats) -> float:
    """Fréchet distance between two Gaussians given as ``{"mu", "sigma"}`` (torch-fidelity's implementation).

    Args:
        stats1: Statistics of the first set.
        stats2: Statistics of the second set.

    Returns:
        The distance (>= 0 up to rounding).
    """
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    s1 = {k: np.asarray(stats1[k], dtype=np.float64) for k in ("mu", "sigma")}
    s2 = {k: np.asarray(stats2[k], dtype=np.float64) for k in ("mu", "sigma")}
    d = s1["mu"].shape[0] if s1["mu"].ndim == 1 else -1
    for s in (s1, s2):
        if s["mu"].shape != (d,) or s["sigma"].shape != (d, d):
            raise ValueError(
                f"statistics do not match: mu {s1['mu'].shape} vs {s2['mu'].shape}, "
                f"sigma {s1['sigma'].shape} vs {s2['sigma'].shape}"
            )
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def joint_span_projection(
    features1: np.ndarray, features2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Express both feature sets in an orthonormal basis of the span of their centred rows and the mean difference.

    FID is invariant under rotations, both covariances vanish outside that span and the mean difference lies in it,
    so the FID of the projected sets equals the FID of the originals (exactly, in exact arithmetic). When
    ``n1 + n2 < d`` (few images, 2048-d features) this turns a rank-deficient ``d x d`` eigenproblem -- slow and noisy
    (tens of seconds at d = 2048) -- into a small well-conditioned one.

    Args:
        features1: ``(n1, d)`` features.
        features2: ``(n2, d)`` features.

    Returns:
        ``(n1, r)`` and ``(n2, r)`` coordinates, ``r <= n1 + n2 - 1`` the numerical rank of the span.
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    span = np.concatenate([f1 - mu1, f2 - mu2, (mu1 - mu2)[None]], axis=0)
    _, sv, vt = np.linalg.svd(span, full_matrices=False)
    tol = sv.max(initial=0.0) * max(span.shape) * np.finfo(np.float64).eps
    basis = vt[sv > tol].T  # (d, r)
    return f1 @ basis, f2 @ basis


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two ``(n_i, d)`` feature sets.

    When ``n1 + n2 < d`` the sets are first projected with :func:`joint_span_projection` (same value, much faster);
    otherwise the full ``d x d`` statistics go to torch-fidelity's formula.
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if (
        f1.ndim == 2
        and f2.ndim == 2
        and f1.shape[1] == f2.shape[1]
        and f1.shape[0] + f2.shape[0] < f1.shape[1]
    ):
        f1, f2 = joint_span_projection(f1, f2)
        if f1.shape[1] == 0:  # identical single-point sets: nothing varies
            return 0.0
    return frechet_distance(fid_statistics(f1), fid_statistics(f2))


def fid_bootstrap_ci95(
    features1: np.ndarray,
    features2: np.ndarray,
    *,
    n_boot: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of FID, resampling the rows of both feature sets independently.

    Slow: every replicate recomputes two ``d x d`` covariances and an eigen-decomposition of a ``d x d`` product
    (on the order of a second per replicate at ``d = 2048`` on a CPU), so 1000 resamples take many minutes. Indices
    are drawn per replicate (set 1 then set 2) from ``numpy.random.default_rng(seed)``, so the interval is
    deterministic given the seed.

    Args:
        features1: ``(n1, d)`` features of the first set.
        features2: ``(n2, d)`` features of the second set.
        n_boot: Number of resamples (>= 1).
        seed: Seed of the resampling.

    Returns:
        ``(low, high)``.
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        i1 = rng.integers(0, f1.shape[0], size=f1.shape[0])
        i2 = rng.integers(0, f2.shape[0], size=f2.shape[0])
        reps[b] = fid_from_features(f1[i1], f2[i2])
    return percentile_interval(reps)
