"""Percentile bootstrap: determinism, known answer against a plain loop, pairing, scaling."""

from __future__ import annotations

import numpy as np
import pytest

import evaluation.bootstrap as bs
from evaluation.bootstrap import mean_ci95, means_with_ci95


def test_mean_ci_matches_an_explicit_resampling_loop() -> None:
    values = np.random.default_rng(0).normal(size=37)
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 37, size=(200, 37), dtype=np.int32)
    expected = np.percentile([values[row].mean() for row in idx], [2.5, 97.5])
    assert mean_ci95(values, n_boot=200, seed=5) == pytest.approx(
        tuple(expected), abs=1e-12
    )


def test_mean_ci_is_deterministic_given_the_seed_and_changes_with_it() -> None:
    values = np.random.default_rng(1).uniform(size=50)
    assert mean_ci95(values, seed=3) == mean_ci95(values, seed=3)
    assert mean_ci95(values, seed=3) != mean_ci95(values, seed=4)


def test_mean_ci_brackets_the_mean_and_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(2)
    small, large = rng.integers(0, 2, size=40), rng.integers(0, 2, size=4000)
    lo_s, hi_s = mean_ci95(small)
    lo_l, hi_l = mean_ci95(large)
    assert lo_s <= small.mean() <= hi_s and lo_l <= large.mean() <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 3


def test_constant_values_give_a_zero_width_interval() -> None:
    assert mean_ci95(np.ones(10)) == (1.0, 1.0)


def test_means_with_ci95_scales_and_pairs_columns() -> None:
    col = np.array([0, 1, 1, 0, 1, 1, 1, 0])
    metrics, ci = means_with_ci95(
        {"a": col, "b": col.copy()}, scale=100.0, n_boot=300, seed=0
    )
    assert metrics == {"a": 62.5, "b": 62.5}
    assert ci["a"] == ci["b"]  # same resamples for every column
    assert ci["a"] == pytest.approx(
        tuple(100 * x for x in mean_ci95(col, n_boot=300, seed=0))
    )


def test_zero_resamples_give_no_intervals() -> None:
    assert means_with_ci95({"a": np.ones(3)}, n_boot=0)[1] == {}


def test_blocked_index_draws_are_deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(3).normal(size=100)
    monkeypatch.setattr(bs, "MAX_BLOCK_ELEMENTS", 250)  # 2 replicates per block
    first = mean_ci95(values, n_boot=101, seed=9)
    assert first == mean_ci95(values, n_boot=101, seed=9)
    assert first[0] < values.mean() < first[1]


# ------------------------------------------------------------------------ the counts path (few distinct values)


def test_counts_path_draws_the_multinomial_of_the_kinds_from_the_seed() -> None:
    # 64 binary values: 2 kinds <= 64 / MULTINOMIAL_SHARE, so the replicates are multinomial kind counts from the seed
    values = np.array([1.0] * 40 + [0.0] * 24)
    reps = bs._mean_replicates(values[:, None], 500, seed=3)[:, 0]
    drawn = np.random.default_rng(3).multinomial(64, np.array([24, 40]) / 64, size=500)  # kinds sorted: 0.0, 1.0
    assert np.array_equal(reps, drawn @ np.array([0.0, 1.0]) / 64)
    assert mean_ci95(values, n_boot=500, seed=3) == bs.percentile_interval(reps)


def test_counts_path_has_the_distribution_of_index_resampling() -> None:
    # values 0, 0, 0.3, 1: every one of the 4**4 index resamples is equally likely; the exact distribution of their
    # mean against 200K multinomial draws (largest deviation of a probability ~4 standard errors at most)
    values = np.array([0.0, 0.0, 0.3, 1.0])
    grid = np.stack(np.meshgrid(*[np.arange(4)] * 4, indexing="ij"), axis=-1).reshape(-1, 4)
    exact_means, exact_counts = np.unique(np.round(values[grid].mean(axis=1), 9), return_counts=True)
    reps = bs.bootstrap_counts(np.array([2, 1, 1]), lambda c: c @ np.array([0.0, 0.3, 1.0]) / 4, n_boot=200_000,
                               seed=0)
    means, counts = np.unique(np.round(reps, 9), return_counts=True)
    assert np.array_equal(means, exact_means)
    assert np.abs(counts / 200_000 - exact_counts / 256).max() < 0.006
    assert reps.mean() == pytest.approx(values.mean(), abs=0.002)


def test_binary_interval_agrees_with_index_resampling_within_monte_carlo_error() -> None:
    values = (np.random.default_rng(4).uniform(size=20_000) < 0.6).astype(float)
    old = bs.percentile_interval(bs.bootstrap_statistic(values.size, lambda idx: values[idx].mean(axis=1), seed=0))
    new = mean_ci95(values, seed=0)
    assert new != old  # another stream of the same distribution
    assert new == pytest.approx(old, abs=0.001)  # 0.1 points; the interval is 1.4 points wide


def test_paired_columns_with_few_distinct_rows_stay_paired() -> None:
    a = np.tile([0.0, 1.0, 1.0, 0.0], 50)
    metrics, ci = means_with_ci95({"a": a, "not_a": 1.0 - a}, n_boot=300, seed=1)
    assert metrics == {"a": 0.5, "not_a": 0.5}
    assert ci["a"][0] == pytest.approx(1.0 - ci["not_a"][1], abs=1e-12)  # same resamples: mirrored intervals


def test_bootstrap_sums_equals_summing_the_gathered_resamples() -> None:
    stats = np.random.default_rng(5).integers(0, 9, size=(30, 3)).astype(float)

    def statistic(sums: np.ndarray) -> np.ndarray:
        return sums[:, 0] / (1.0 + sums[:, 1] + sums[:, 2])

    fast = bs.bootstrap_sums(stats, statistic, n_boot=200, seed=2)
    gathered = bs.bootstrap_statistic(30, lambda idx: statistic(stats[idx].sum(axis=1)), n_boot=200, seed=2)
    np.testing.assert_allclose(fast, gathered, rtol=1e-12)
