"""How many tokens soft clustering makes, like for like with hard clustering (Table 5; paper-notes C6).

Run as a script (``python tests/modeling/test_soft_count.py``) it prints the soft / hard comparison recorded in
docs/paper-notes.md C6: token counts on synthetic segment images and on the bundled real photos, and how far the soft
tokens of one random-initialised Token Merger are from the hard ones.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from setok.modeling import clustering
from setok.modeling.clustering import cluster


def segment_features(
    k: int, *, h: int = 24, w: int = 24, d: int = 64, noise: float = 0.02, seed: int = 0
) -> torch.Tensor:
    """``(h, w, d)`` features of a synthetic image made of ``k`` Voronoi segments (random sites), each segment one
    random direction plus a little noise: the reviewer's "images with k segments"."""
    g = torch.Generator().manual_seed(seed)
    sites = torch.rand(k, 2, generator=g)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    labels = torch.cdist(torch.stack([yy, xx], -1).view(-1, 2), sites).argmin(-1)  # (h*w,)
    centres = torch.randn(k, d, generator=g)
    return (centres[labels] + noise * torch.randn(h * w, d, generator=g)).view(h, w, d)


def photo_features(images: torch.Tensor, grid: int = 16) -> torch.Tensor:
    """``(B, grid, grid, 6)`` patch features of RGB images ``(B, 3, S, S)`` in [0, 1]: each patch's mean CIELAB
    colour and its per-channel standard deviation (texture), scaled to about unit range."""
    from skimage import color

    b, _, s, _ = images.shape
    p = s // grid
    lab = color.rgb2lab(images.permute(0, 2, 3, 1).numpy())  # (B, S, S, 3)
    lab = lab.reshape(b, grid, p, grid, p, 3).transpose(0, 1, 3, 2, 4, 5).reshape(b, grid, grid, p * p, 3)
    mean = lab.mean(3) / np.array([100.0, 128.0, 128.0])
    std = lab.std(3) / 50.0
    return torch.tensor(np.concatenate([mean, std], -1), dtype=torch.float32)


SEGMENTS = (16, 40, 100)


@pytest.fixture(scope="module")
def segment_images() -> torch.Tensor:
    return torch.stack([segment_features(k) for k in SEGMENTS])  # (3, 24, 24, 64)


def test_soft_count_follows_the_number_of_segments(segment_images: torch.Tensor) -> None:
    """16 / 40 / 100 segments: the soft count rises with the content as the hard one does (100 hits max_tokens)."""
    hard = cluster(segment_images, mode="hard").num_tokens.tolist()
    soft = cluster(segment_images, mode="soft").num_tokens.tolist()
    assert hard == [16, 40, 64]  # pinned on the implementation before this change (5203180)
    assert soft == hard  # the default soft count reads the thresholded scope: the same seeds, the same count
    # The continuous-scope reading is pinned near 15 whatever the content at C = 1 (phi >= 2^-4, beta * s > 0).
    literal = cluster(segment_images, mode="soft", soft_count="soft_scope").num_tokens.tolist()
    assert literal == [15, 15, 15]
    # With a sharper kernel the continuous scope follows the content too.
    sharp = cluster(segment_images, mode="soft", soft_count="soft_scope", kernel_c=4.0).num_tokens.tolist()
    assert sharp == [16, 40, 64]


def test_soft_masks_stay_soft_with_the_hard_seeds(segment_images: torch.Tensor) -> None:
    hard = cluster(segment_images, mode="hard")
    soft = cluster(segment_images, mode="soft")
    assert torch.equal(soft.seeds, hard.seeds)
    n = segment_images.shape[1] * segment_images.shape[2]
    torch.testing.assert_close(soft.masks.sum(-1), torch.ones(3, n), atol=1e-5, rtol=0)
    assert ((soft.masks > 0.05) & (soft.masks < 0.95)).float().mean() > 0.05  # fractional, not one-hot
    assert (soft.masks[~soft.valid[:, None, :].expand_as(soft.masks)] == 0).all()  # padding columns are empty
    assert (soft.masks.sum(1)[soft.valid] > 0).all()  # every real token has mass


def test_hard_mode_ignores_soft_count(segment_images: torch.Tensor) -> None:
    a = cluster(segment_images, mode="hard", soft_count="hard_scope")
    b = cluster(segment_images, mode="hard", soft_count="soft_scope")
    assert torch.equal(a.masks, b.masks) and torch.equal(a.seeds, b.seeds)
    with pytest.raises(ValueError, match="soft_count"):
        cluster(segment_images, mode="soft", soft_count="soft")


@pytest.mark.parametrize("soft_count", ["hard_scope", "soft_scope"])
def test_soft_clustering_is_batched(segment_images: torch.Tensor, soft_count: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No per-image loop: a batch costs as many kernel evaluations (Algorithm 1 iterations) as its longest image,
    not the sum over images, and gives each image's own result."""
    calls: list[int] = []
    real_kernel = clustering.kernel

    def counting_kernel(d2: torch.Tensor, c: float | torch.Tensor) -> torch.Tensor:
        calls.append(d2.shape[0])
        return real_kernel(d2, c)

    monkeypatch.setattr(clustering, "kernel", counting_kernel)
    batched = cluster(segment_images, mode="soft", soft_count=soft_count)
    iterations = len(calls)
    assert iterations <= int(batched.num_tokens.max())
    assert all(rows == 3 for rows in calls)  # every call handles the whole batch
    for i in range(3):
        one = cluster(segment_images[i : i + 1], mode="soft", soft_count=soft_count)
        n = int(one.num_tokens[0])
        assert int(batched.num_tokens[i]) == n
        torch.testing.assert_close(batched.masks[i, :, :n], one.masks[0, :, :n], atol=1e-6, rtol=0)


def test_soft_count_tracks_hard_count_on_the_bundled_photos() -> None:
    from setok.data import BundledPhotos

    photos = BundledPhotos(image_size=128, contrastive=False)
    feats = photo_features(torch.stack([photos[i]["image"] for i in range(len(photos))]))
    kw = dict(normalize=False, kernel_c=20.0)  # the settings test_clustering's real-photo test uses
    hard = cluster(feats, mode="hard", **kw).num_tokens
    soft = cluster(feats, mode="soft", **kw).num_tokens
    assert torch.equal(soft, hard)
    assert len(set(hard.tolist())) >= 4  # the photos differ in content, and so do their counts


def report() -> None:
    """Print the numbers recorded in docs/paper-notes.md C6."""
    from setok.data import BundledPhotos
    from setok.modeling.token_merger import TokenMerger

    segs = torch.stack([segment_features(k) for k in SEGMENTS])
    photos = BundledPhotos(image_size=128, contrastive=False)
    real = photo_features(torch.stack([photos[i]["image"] for i in range(len(photos))]))
    runs = (
        ("segments 16/40/100", segs, {"C=1 (paper.yaml)": {}, "C=4": {"kernel_c": 4.0}}),
        (f"{len(photos)} bundled photos, Lab features", real,
         {"normalize=False C=20 (test_clustering)": {"normalize": False, "kernel_c": 20.0},
          "C=1 (paper.yaml)": {}, "C=4": {"kernel_c": 4.0}}),
    )
    for name, feats, settings in runs:
        print(f"== {name}")
        for label, kw in settings.items():
            print(f"  -- {label}")
            hard = cluster(feats, mode="hard", **kw)
            soft = cluster(feats, mode="soft", **kw)
            literal = cluster(feats, mode="soft", soft_count="soft_scope", **kw)
            own = (soft.masks * hard.masks).sum(1)[hard.valid] / soft.masks.sum(1)[hard.valid]
            for what, out in (("hard", hard), ("soft", soft), ("soft_scope", literal)):
                print(f"     {what:10s} {out.num_tokens.tolist()} mean {out.num_tokens.float().mean():.1f}")
            print(f"     share of a soft mask's mass on its hard cluster: mean {own.mean():.2f}")
            d = feats.shape[-1]
            for use in ("attention_bias", "input_scale"):
                torch.manual_seed(0)
                m = TokenMerger(in_dim=d, dim=32, inner_layers=1, inter_layers=0, heads=2, mlp_ratio=2.0,
                                soft_mask=use).eval()
                flat = feats.flatten(1, 2)
                with torch.no_grad():
                    vh, valid = m(flat, feats.shape[1:3], hard.masks, hard.num_tokens)
                    vs, _ = m(flat, feats.shape[1:3], soft.masks, soft.num_tokens)
                cos = torch.nn.functional.cosine_similarity(vh, vs, dim=-1)[valid]
                print(f"     merger {use}: cos(soft token, hard token) mean {cos.mean():.3f} min {cos.min():.3f}")


if __name__ == "__main__":
    report()
