"""Known answers for the Fréchet distance (torch-fidelity's implementation behind evaluation.metrics.fid)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.metrics.fid import (
    fid_bootstrap_ci95,
    fid_from_features,
    fid_statistics,
    frechet_distance,
    joint_span_projection,
)


def _spd(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T + d * np.eye(d)


def test_fid_of_a_feature_set_with_itself_is_zero() -> None:
    feats = np.random.default_rng(0).normal(size=(200, 16))
    assert fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_a_rank_deficient_set_with_itself_is_zero() -> None:
    feats = (
        np.random.default_rng(0).normal(size=(4, 64)) * 3
    )  # N < D, as with tiny image folders
    assert fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-9)
    # The full 64x64 route agrees up to the noise of its rank-deficient eigenproblem.
    full = frechet_distance(fid_statistics(feats), fid_statistics(feats))
    assert abs(full) < 1e-6 * np.trace(fid_statistics(feats)["sigma"])


def test_projection_onto_the_joint_span_keeps_the_value() -> None:
    rng = np.random.default_rng(8)
    f1, f2 = rng.normal(size=(7, 40)), rng.normal(size=(9, 40)) * 2 + 0.5
    p1, p2 = joint_span_projection(f1, f2)
    assert p1.shape == (7, 15) and p2.shape == (9, 15)  # (7-1) + (9-1) + 1 directions
    full = frechet_distance(fid_statistics(f1), fid_statistics(f2))
    assert fid_from_features(f1, f2) == pytest.approx(full, rel=1e-7)


def test_two_point_sets_give_the_closed_form_value() -> None:
    # With N = 2, sigma = v v^T for v = (x1 - x2) / sqrt(2), so FID = |dmu|^2 + |v1|^2 + |v2|^2 - 2 |v1 . v2|.
    rng = np.random.default_rng(9)
    f1, f2 = rng.normal(size=(2, 2048)), rng.normal(size=(2, 2048)) + 0.1
    v1, v2 = (f1[0] - f1[1]) / np.sqrt(2), (f2[0] - f2[1]) / np.sqrt(2)
    dmu = f1.mean(0) - f2.mean(0)
    expected = dmu @ dmu + v1 @ v1 + v2 @ v2 - 2 * abs(v1 @ v2)
    # sqrt of the rounding-level zero eigenvalues limits agreement to ~sqrt(eps) relative.
    assert fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-7)


def test_equal_covariances_and_shifted_means_give_the_squared_shift() -> None:
    sigma = _spd(12, 1)
    mu = np.random.default_rng(2).normal(size=12)
    shift = np.random.default_rng(3).normal(size=12)
    got = frechet_distance(
        {"mu": mu, "sigma": sigma}, {"mu": mu + shift, "sigma": sigma}
    )
    assert got == pytest.approx(float(shift @ shift), rel=1e-9, abs=1e-9)


def test_diagonal_covariances_give_the_analytic_value() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.1, 5, size=10), rng.uniform(0.1, 5, size=10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2) + np.sum((mu1 - mu2) ** 2)
    got = frechet_distance(
        {"mu": mu1, "sigma": np.diag(a)}, {"mu": mu2, "sigma": np.diag(b)}
    )
    assert got == pytest.approx(expected, rel=1e-10)


def test_distance_agrees_with_clean_fid_formula() -> None:
    from cleanfid.fid import frechet_distance as clean_frechet

    s1 = {"mu": np.arange(8.0), "sigma": _spd(8, 5)}
    s2 = {"mu": np.ones(8), "sigma": _spd(8, 6)}
    expected = clean_frechet(s1["mu"], s1["sigma"], s2["mu"], s2["sigma"])
    assert frechet_distance(s1, s2) == pytest.approx(expected, rel=1e-9)


def test_statistics_use_the_unbiased_covariance() -> None:
    feats = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    stats = fid_statistics(feats)
    np.testing.assert_allclose(stats["mu"], [2.0, 4.0])
    np.testing.assert_allclose(stats["sigma"], np.cov(feats.T, ddof=1))


def test_mismatched_dimensions_are_rejected() -> None:
    with pytest.raises(ValueError, match="do not match"):
        frechet_distance(
            {"mu": np.zeros(3), "sigma": np.eye(3)},
            {"mu": np.zeros(4), "sigma": np.eye(4)},
        )


def test_fid_bootstrap_interval_is_deterministic_and_brackets_a_shift() -> None:
    rng = np.random.default_rng(7)
    f1 = rng.normal(size=(60, 3))
    f2 = rng.normal(size=(60, 3)) + np.array([2.0, 0.0, 0.0])
    lo, hi = fid_bootstrap_ci95(f1, f2, n_boot=100, seed=1)
    assert (lo, hi) == fid_bootstrap_ci95(f1, f2, n_boot=100, seed=1)
    assert lo < fid_from_features(f1, f2) < hi
    assert lo > 1.0  # the ~4.0 shift term dominates
