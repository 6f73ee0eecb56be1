"""Percentile-bootstrap 95% confidence intervals over samples.

Resampling indices for all replicates are drawn as one ``(n_boot, n)`` matrix from ``numpy.random.default_rng(seed)``,
so an interval is a deterministic function of ``(values, n_boot, seed)``. For very large ``n * n_boot`` the matrix is
drawn in consecutive row blocks from the same generator (block size depends only on ``n``), which bounds memory at
about :data:`MAX_BLOCK_ELEMENTS` indices and keeps the result deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

DEFAULT_RESAMPLES = 1000
MAX_BLOCK_ELEMENTS = 1 << 24  # 16M int32 indices (64 MiB) per block


def _index_blocks(
    n: int, n_boot: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield ``(rows, n)`` int index matrices whose stacked rows are the ``n_boot`` resamples."""
    rows = max(1, min(n_boot, MAX_BLOCK_ELEMENTS // max(n, 1)))
    for start in range(0, n_boot, rows):
        yield rng.integers(
            0,
            n,
            size=(min(rows, n_boot - start), n),
            dtype=np.int64 if n >= 2**31 else np.int32,
        )


def bootstrap_statistic(
    n: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    n_boot: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> np.ndarray:
    """Evaluate ``statistic`` on ``n_boot`` resamples of ``n`` sample indices.

    Args:
        n: Number of samples.
        statistic: Maps an ``(b, n)`` index matrix to ``b`` replicate values, shape ``(b, ...)`` (vectorised over
            replicates).
        n_boot: Number of resamples.
        seed: Seed of ``numpy.random.default_rng``.

    Returns:
        Replicate values stacked along the first axis, shape ``(n_boot, ...)``.
    """
    if n < 1 or n_boot < 1:
        raise ValueError(f"need n >= 1 and n_boot >= 1, got n={n}, n_boot={n_boot}")
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            np.asarray(statistic(idx), dtype=np.float64)
            for idx in _index_blocks(n, n_boot, rng)
        ]
    )


def percentile_interval(
    replicates: np.ndarray, level: float = 0.95
) -> tuple[float, float]:
    """The ``(low, high)`` percentile interval of bootstrap replicates (2.5th and 97.5th for ``level=0.95``)."""
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(
        np.asarray(replicates, dtype=np.float64), [tail, 100.0 - tail]
    )
    return float(lo), float(hi)


def mean_ci95(
    values: np.ndarray, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean of per-sample ``values``.

    Args:
        values: 1-D per-sample values (e.g. 0/1 correctness, or 0/100 for a percentage).
        n_boot: Number of resamples.
        seed: Seed; same inputs and seed give the same interval.

    Returns:
        ``(low, high)``.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {v.shape}")
    return percentile_interval(
        bootstrap_statistic(
            v.size, lambda idx: v[idx].mean(axis=1), n_boot=n_boot, seed=seed
        )
    )


def means_with_ci95(
    columns: Mapping[str, np.ndarray],
    *,
    scale: float = 1.0,
    n_boot: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Means of several per-sample columns and their intervals, all from the same resamples (paired).

    Args:
        columns: Metric name to 1-D per-sample values, all of the same length.
        scale: Multiplier applied to means and bounds (100 for percentages).
        n_boot: Number of resamples; 0 gives no intervals.
        seed: Seed shared by all columns.

    Returns:
        ``(metrics, ci95)``; ``ci95`` is empty when ``n_boot == 0``.
    """
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    lengths = {a.shape for a in arrays.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(
            f"columns must be 1-D and of equal length, got shapes {sorted(lengths)}"
        )
    metrics = {k: float(a.mean() * scale) for k, a in arrays.items()}
    if n_boot == 0:
        return metrics, {}
    matrix = np.stack(list(arrays.values()), axis=1)  # (n, k)
    reps = bootstrap_statistic(
        matrix.shape[0], lambda idx: matrix[idx].mean(axis=1), n_boot=n_boot, seed=seed
    ).reshape(n_boot, matrix.shape[1])
    ci = {
        k: tuple(x * scale for x in percentile_interval(reps[:, j]))
        for j, k in enumerate(arrays)
    }
    return metrics, ci  # type: ignore[return-value]
