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
