"""Known-answer tests for Eq. (1), Eq. (2) and Algorithm 1 (setok.modeling.clustering)."""
import math

import numpy as np
import pytest
import torch

from setok.modeling.clustering import (
    ClusterOutput,
    cluster,
    cluster_agreement,
    density_rank,
    kernel,
    local_density,
    pairwise_sq_distances,
    peak_distance,
    seed_scores,
)


def well_separated_groups(b: int, k: int, *, h: int = 12, w: int = 12, d: int = 32, noise: float = 0.02,
                          seed: int = 0) -> torch.Tensor:
    """``(b, h, w, d)`` features drawn around ``k`` orthonormal centres, every group non-empty."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.linalg.qr(torch.randn(d, d, generator=g))[0][:k]
    maps = []
    for _ in range(b):
        labels = torch.randint(0, k, (h * w,), generator=g)
        labels[torch.randperm(h * w, generator=g)[:k]] = torch.arange(k)
        maps.append((centres[labels] + noise * torch.randn(h * w, d, generator=g)).view(h, w, d))
    return torch.stack(maps)


def test_pairwise_sq_distances_match_cdist():
    x = torch.randn(2, 7, 5)
    ref = torch.cdist(x, x) ** 2
    torch.testing.assert_close(pairwise_sq_distances(x), ref, atol=1e-5, rtol=1e-5)
    xn = torch.nn.functional.normalize(x, dim=-1)
    torch.testing.assert_close(pairwise_sq_distances(xn, unit_norm=True), torch.cdist(xn, xn) ** 2, atol=1e-5,
                               rtol=1e-5)


def test_kernel_is_one_half_at_squared_distance_one_over_c():
    d2 = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(kernel(d2, 2.0), torch.tensor([1.0, 0.5, 0.25]))


def test_density_eq1_on_points_on_a_line():
    # Points 0, 1, 3 on a line; K = 1: nearest squared distances 1, 1, 4 -> rho = exp(-1), exp(-1), exp(-4).
    x = torch.tensor([[[0.0], [1.0], [3.0]]])
    rho = local_density(pairwise_sq_distances(x), knn=1)
    torch.testing.assert_close(rho, torch.exp(-torch.tensor([[1.0, 1.0, 4.0]])))
    # K = 2 averages both neighbours: (1 + 9) / 2, (1 + 4) / 2, (9 + 4) / 2.
    rho2 = local_density(pairwise_sq_distances(x), knn=2)
    torch.testing.assert_close(rho2, torch.exp(-torch.tensor([[5.0, 2.5, 6.5]])))


def test_density_eq1_kernel_reading_uses_phi():
    x = torch.tensor([[[0.0], [1.0], [3.0]]])
    rho = local_density(pairwise_sq_distances(x), knn=1, measure="kernel", kernel_c=1.0)
    phi = torch.tensor([[0.5, 0.5, 2.0**-4]])
    torch.testing.assert_close(rho, torch.exp(-phi))


def test_delta_eq2_is_distance_to_nearest_denser_and_farthest_for_peak():
    # Points 0, 1, 3 with K = 2: rho order 1 (densest) > 0 > 3.
    x = torch.tensor([[[0.0], [1.0], [3.0]]])
    d2 = pairwise_sq_distances(x)
    rho = local_density(d2, knn=2)
    assert density_rank(rho).tolist() == [[1, 0, 2]]
    delta = peak_distance(d2, rho)
    # 0 -> nearest denser is 1 (distance 1); 1 is the peak -> farthest (2); 3 -> nearest denser is 1 (distance 2).
    torch.testing.assert_close(delta, torch.tensor([[1.0, 2.0, 2.0]]))


def test_delta_eq2_literal_kernel_reading():
    x = torch.tensor([[[0.0], [1.0], [3.0]]])
    d2 = pairwise_sq_distances(x)
    rho = local_density(d2, knn=2)
    delta = peak_distance(d2, rho, measure="kernel", kernel_c=1.0)
    # min phi over denser: 0 -> {1}: 2^-1; 3 -> {1, 0}: min(2^-4, 2^-9) = 2^-9; peak: max phi incl. itself = 1.
    torch.testing.assert_close(delta, torch.tensor([[0.5, 1.0, 2.0**-9]]))


def test_density_ties_are_broken_by_lower_index():
    rho = torch.tensor([[0.5, 0.7, 0.7, 0.1]])
    assert density_rank(rho).tolist() == [[2, 0, 1, 3]]


def test_seed_scores_are_rho_times_delta_normalised():
    x = torch.tensor([[[0.0], [1.0], [3.0]]])
    s, _ = seed_scores(x, knn=2)
    rho = torch.exp(-torch.tensor([5.0, 2.5, 6.5]))
    raw = rho * torch.tensor([1.0, 2.0, 2.0])
    torch.testing.assert_close(s[0], raw / raw.max())


@pytest.mark.parametrize("k", range(1, 11))
@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_k_well_separated_groups_give_exactly_k_tokens(k, mode):
    feats = well_separated_groups(3, k, seed=k)
    out = cluster(feats, mode=mode)
    assert out.num_tokens.tolist() == [k, k, k]
    torch.testing.assert_close(out.masks.sum(-1), torch.ones(3, feats.shape[1] * feats.shape[2]))


@pytest.mark.parametrize("k", [2, 5, 9])
def test_hard_clustering_recovers_the_groups(k):
    g = torch.Generator().manual_seed(3)
    d = 32
    centres = torch.linalg.qr(torch.randn(d, d, generator=g))[0][:k]
    labels = torch.arange(144) % k
    feats = (centres[labels] + 0.02 * torch.randn(144, d, generator=g)).view(1, 12, 12, d)
    assign = cluster(feats, mode="hard").assignment()[0]
    # Same group <=> same token: the partition equals the ground truth up to renaming.
    same_pred = assign[:, None] == assign[None, :]
    same_true = labels[:, None] == labels[None, :]
    assert torch.equal(same_pred, same_true)


def test_hard_clustering_assigns_each_patch_once():
    feats = torch.randn(4, 9, 9, 16)
    out = cluster(feats, mode="hard", max_tokens=20)
    m = out.masks
    assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(m.sum(-1), torch.ones(4, 81))
    # Padding columns are empty and every real token owns at least one location.
    for b in range(4):
        n = int(out.num_tokens[b])
        assert (m[b, :, :n].sum(0) > 0).all()
        assert (m[b, :, n:] == 0).all()


def test_soft_masks_sum_to_one_and_are_fractional():
    feats = torch.randn(2, 8, 8, 16)
    out = cluster(feats, mode="soft", max_tokens=12)
    torch.testing.assert_close(out.masks.sum(-1), torch.ones(2, 64), atol=1e-5, rtol=0)
    assert ((out.masks > 0.01) & (out.masks < 0.99)).any()


def test_algorithm1_first_iteration_by_hand():
    # Two locations far apart, one close pair: the seed (highest score) and line 4-6 computed by hand.
    x = torch.tensor([[[[1.0, 0.0], [0.99, 0.141]], [[0.0, 1.0], [-0.141, 0.99]]]])  # (1, 2, 2, 2)
    out = cluster(x, mode="soft", knn=1, beta=0.0, kernel_c=1.0, min_seed_score=0.0, max_tokens=2)
    flat = torch.nn.functional.normalize(x.view(4, 2), dim=-1)
    s, _ = seed_scores(flat[None], knn=1)
    seed = int(s[0].argmax())
    phi = kernel(((flat - flat[seed]) ** 2).sum(-1), 1.0)
    alpha = phi.clone()  # beta = 0: sigmoid(logit(phi)) = phi
    alpha[seed] = 1.0
    torch.testing.assert_close(out.masks[0, :, 0], alpha, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.masks[0, :, 1], 1 - alpha, atol=1e-5, rtol=0)  # line 8: final scope
    assert out.seeds[0].tolist() == [seed, -1]


def test_max_tokens_caps_the_count_and_final_scope_takes_the_rest():
    feats = torch.randn(2, 10, 10, 64)  # random features: every location is its own cluster
    out = cluster(feats, mode="hard", max_tokens=5, min_seed_score=0.0)
    assert out.num_tokens.tolist() == [5, 5]
    assert (out.masks[:, :, 4].sum(1) > 50).all()  # the final scope explains everything left


def test_fixed_mode_gives_exactly_k_tokens_and_nearest_centre_assignment():
    feats = torch.randn(3, 8, 8, 16)
    out = cluster(feats, mode="fixed", num_clusters=7)
    assert out.num_tokens.tolist() == [7, 7, 7]
    assert (out.masks.sum(1) >= 1).all()  # no empty token: every centre keeps itself
    with pytest.raises(ValueError, match="only 64 locations"):
        cluster(feats, mode="fixed", num_clusters=65)


def test_batched_equals_one_image_at_a_time():
    feats = torch.randn(4, 8, 8, 16)
    batched = cluster(feats, mode="hard", max_tokens=16)
    for b in range(4):
        single = cluster(feats[b : b + 1], mode="hard", max_tokens=16)
        n = int(single.num_tokens[0])
        assert int(batched.num_tokens[b]) == n
        torch.testing.assert_close(batched.masks[b, :, :n], single.masks[0, :, :n])


def test_iteration_kernel_scale_sharpens_later_masks():
    feats = torch.randn(1, 8, 8, 8)
    const = cluster(feats, mode="hard", kernel_c=0.5, min_seed_score=0.0, max_tokens=64)
    grow = cluster(feats, mode="hard", kernel_c=0.5, kernel_scale="iteration", min_seed_score=0.0, max_tokens=64)
    assert int(grow.num_tokens[0]) > int(const.num_tokens[0])


def test_token_count_varies_with_real_image_content():
    """Lab colour + texture patch features of real photos: a flat image is one token, a two-tone image two, photos
    of different content get different counts."""
    from skimage import color, data, transform

    def patch_features(img: np.ndarray, grid: int = 16) -> torch.Tensor:
        img = transform.resize(img, (grid * 8, grid * 8), anti_aliasing=True)
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        lab = color.rgb2lab(img[..., :3]).reshape(grid, 8, grid, 8, 3).transpose(0, 2, 1, 3, 4)
        mean = lab.mean((2, 3)) / np.array([100.0, 128.0, 128.0])
        std = lab.std((2, 3)) / 50.0
        return torch.tensor(np.concatenate([mean, std], -1), dtype=torch.float32)

    flat = np.full((128, 128, 3), 0.4)
    two = np.zeros((128, 128, 3))
    two[:, :64] = [0.9, 0.1, 0.1]
    two[:, 64:] = [0.1, 0.2, 0.9]
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.camera()]
    feats = torch.stack([patch_features(flat), patch_features(two)] + [patch_features(p) for p in photos])
    counts = cluster(feats, mode="hard", normalize=False, kernel_c=20.0).num_tokens.tolist()
    assert counts[0] == 1 and counts[1] == 2
    assert len(set(counts[2:])) >= 3, counts
    assert all(c > 2 for c in counts[2:]), counts


def test_cluster_rejects_wrong_shapes_and_modes():
    with pytest.raises(ValueError, match=r"\(B, H, W, D\)"):
        cluster(torch.randn(2, 16, 8))
    with pytest.raises(ValueError, match="unknown clustering mode"):
        cluster(torch.randn(1, 4, 4, 8), mode="medium")  # type: ignore[arg-type]
    assert math.isclose(float(cluster(torch.randn(1, 4, 4, 8)).masks.sum()), 16.0, rel_tol=1e-5)


def test_cluster_agreement_by_hand() -> None:
    def hard(assign: list[list[int]], seeds: list[list[int]]) -> ClusterOutput:
        a = torch.tensor(assign)
        c = int(a.max()) + 1
        return ClusterOutput(masks=torch.nn.functional.one_hot(a, c).float(), num_tokens=(a.amax(1) + 1),
                             seeds=torch.tensor(seeds), scores=torch.zeros(a.shape))

    # image 0: same 2 tokens, the last patch moves to the other token; image 1: 2 tokens against 3.
    a = hard([[0, 0, 1, 1], [0, 1, 1, 1]], [[0, 2, -1], [1, 3, -1]])
    b = hard([[0, 0, 1, 0], [0, 1, 2, 2]], [[0, 2, -1], [1, 3, 2]])
    got = cluster_agreement(a, b)
    assert got["count"] == 0.5
    # patch seeds: a = [0,0,2,2 | 1,3,3,3], b = [0,0,2,0 | 1,3,2,2] -> 5 of 8 agree
    assert got["patch"] == 5 / 8
