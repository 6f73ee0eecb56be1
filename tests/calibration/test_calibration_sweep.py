"""The calibration sweep (setok.calibration.sweep): known answers on features whose right token count is known."""
import pytest
import torch

from setok.calibration.content import complexity, content_relation, ranks, spearman
from setok.calibration.sweep import CountSummary, choose, grid_settings, summarize, token_counts

CLUSTERING = {"mode": "hard", "knn": 5, "kernel_scale": "constant", "density_measure": "distance",
              "alpha_form": "logit", "max_tokens": 32, "num_clusters": None, "normalize": True,
              "kernel_c": 99.0, "min_seed_score": 0.99, "beta": 99.0}  # the swept three are replaced


def separated(ks: list[int], *, h: int = 8, w: int = 8, d: int = 16, noise: float = 0.01) -> torch.Tensor:
    """``(B, h, w, d)`` features: image b is ``ks[b]`` horizontal bands, each band one orthogonal direction + noise."""
    g = torch.Generator().manual_seed(0)
    out = torch.empty(len(ks), h, w, d)
    for b, k in enumerate(ks):
        band = (torch.arange(h) * k) // h  # (h,) which cluster each row belongs to
        out[b] = torch.eye(d)[band][:, None, :].expand(h, w, d)
    return out + noise * torch.randn(out.shape, generator=g)


def test_sweep_picks_the_setting_that_gives_k_tokens_per_image():
    ks = [2, 3, 4, 5, 2, 3, 4, 5]
    features = separated(ks)
    # C = 0.01: phi ~ 1 between clusters, one token; C = 1000: phi ~ 0 inside a cluster too, many tokens.
    settings = grid_settings([0.01, 1.0, 1000.0], [0.1], [0.0, 1.0])
    counts = token_counts(features, settings, clustering=CLUSTERING, batch_size=3)  # chunks of 3, 3, 2 images
    assert counts.shape == (6, 8)
    assert counts[0].tolist() == [1] * 8 and bool((counts[4] > torch.tensor(ks)).all())
    summaries = [summarize(c, max_tokens=32) for c in counts]
    best = choose(summaries, target=sum(ks) / len(ks), tolerance=0.5)
    assert settings[best].kernel_c == 1.0
    assert counts[best].tolist() == ks
    # the chosen counts follow the number of objects exactly
    relation = content_relation(counts[best], objects=torch.tensor(ks), edge_density=torch.rand(8))
    assert relation["objects"]["spearman"] == pytest.approx(1.0)


def test_summary_of_known_counts():
    s = summarize(torch.tensor([1, 3, 3, 4, 8]), max_tokens=8)
    assert s.histogram == [1, 0, 2, 1, 0, 0, 0, 1] and (s.min, s.max) == (1, 8)
    assert s.mean == pytest.approx(3.8) and s.std == pytest.approx(((2.8**2 + 0.8**2 * 2 + 0.2**2 + 4.2**2) / 5) ** 0.5)
    assert s.degenerate == pytest.approx(2 / 5)  # one image at 1 token, one at the cap


def _s(mean: float, std: float = 1.0, degenerate: float = 0.0) -> CountSummary:
    return CountSummary(mean=mean, std=std, min=1, max=9, histogram=[], degenerate=degenerate)


def test_choice_closest_mean_then_fewest_degenerate_then_spread_then_grid_order():
    assert choose([_s(20.0), _s(24.0), _s(27.0)], target=25.0, tolerance=0.0) == 1
    # within the tolerance: fewer images at 1 token or the cap wins over a closer mean
    assert choose([_s(25.0, degenerate=0.3), _s(25.4, degenerate=0.0)], target=25.0, tolerance=0.5) == 1
    # then the larger spread, then the first in grid order
    assert choose([_s(25.0, std=1.0), _s(25.2, std=3.0)], target=25.0, tolerance=0.5) == 1
    assert choose([_s(25.2, std=2.0), _s(24.8, std=2.0)], target=25.0, tolerance=0.5) == 0
    # outside the tolerance the closer mean wins whatever its spread
    assert choose([_s(25.0, std=0.0, degenerate=0.9), _s(27.0, std=9.0)], target=25.0, tolerance=0.5) == 0


def test_grid_order_is_kernel_c_then_min_seed_score_then_beta():
    settings = grid_settings([1.0, 2.0], [0.1], [0.0, 1.0])
    assert [(s.kernel_c, s.beta) for s in settings] == [(1.0, 0.0), (1.0, 1.0), (2.0, 0.0), (2.0, 1.0)]


def test_spearman_with_ties_and_undefined_cases():
    assert ranks(torch.tensor([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]
    # scipy.stats.spearmanr([1, 2, 2, 3, 5, 5, 5, 1], [3, 1, 4, 1, 5, 9, 2, 6]) = 0.0932126630...
    x, y = torch.tensor([1, 2, 2, 3, 5, 5, 5, 1.0]), torch.tensor([3, 1, 4, 1, 5, 9, 2, 6.0])
    assert spearman(x, y) == pytest.approx(0.09321266306715217)
    assert spearman(torch.ones(4), torch.arange(4.0)) is None  # ImageNet: one object per image
    r = content_relation(torch.tensor([3, 4]), objects=torch.tensor([1, 1]), edge_density=torch.tensor([0.1, 0.2]))
    assert r["objects"]["spearman"] is None and r["objects"]["why"]
    assert r["complexity"]["spearman"] == pytest.approx(1.0)


def test_complexity_of_flat_and_striped_images():
    flat = torch.full((1, 3, 4, 4), 0.5)
    stripes = torch.zeros(1, 3, 4, 4)
    stripes[..., 1::2] = 1.0  # columns alternate 0 / 1: |dI/dx| = 1, |dI/dy| = 0
    assert complexity(torch.cat([flat, stripes])).tolist() == [0.0, 0.5]
