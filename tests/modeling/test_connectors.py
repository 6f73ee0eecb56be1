"""Known answers for the Table 13 connector baselines (MLP, Q-Former, Perceiver Resampler)."""
import pytest
import torch

from setok.modeling.connectors import (
    MLPConnector,
    PerceiverResampler,
    QFormerConnector,
    build_connector,
)

IN_DIM, HIDDEN, DIM, HEADS, LAYERS = 12, 10, 16, 4, 2


def _make(kind: str, num_tokens: int = 4) -> torch.nn.Module:
    torch.manual_seed(0)
    dim = None if kind == "mlp" else DIM
    return build_connector(
        kind=kind, in_dim=IN_DIM, hidden=HIDDEN, num_tokens=num_tokens, layers=LAYERS, heads=HEADS, dim=dim
    ).eval()


def _features(n: int = 2, h: int = 5, w: int = 6) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(n, h, w, IN_DIM)


@pytest.mark.parametrize(
    ("kind", "cls", "num_tokens"),
    [("mlp", MLPConnector, 9), ("qformer", QFormerConnector, 3), ("resampler", PerceiverResampler, 5)],
)
def test_each_kind_maps_patch_grid_to_num_tokens_llm_embeddings(kind, cls, num_tokens):
    conn = _make(kind, num_tokens)
    assert isinstance(conn, cls)
    assert conn.num_tokens == num_tokens
    assert conn(_features(n=3, h=7, w=5)).shape == (3, num_tokens, HIDDEN)


def test_mlp_pools_4x4_grid_to_2x2_block_means_in_row_major_order():
    conn = MLPConnector(in_dim=1, hidden=3, num_tokens=4)
    grid = torch.arange(16.0).view(1, 4, 4, 1)  # value = 4 * row + col
    pooled = conn.pool(grid)
    assert pooled.shape == (1, 4, 1)
    assert pooled.flatten().tolist() == [2.5, 4.5, 10.5, 12.5]
    # forward = Linear-GELU-Linear of exactly those pooled patches
    lin1, act, lin2 = conn.proj
    expected = lin2(act(lin1(torch.tensor([[2.5], [4.5], [10.5], [12.5]]))))
    torch.testing.assert_close(conn(grid)[0], expected)


def test_mlp_pools_siglip_27x27_grid_to_16x16_with_adaptive_windows():
    conn = MLPConnector(in_dim=2, hidden=4, num_tokens=256)
    torch.manual_seed(0)
    feats = torch.randn(1, 27, 27, 2)
    pooled = conn.pool(feats)  # (1, 256, 2)
    assert pooled.shape == (1, 256, 2)
    # adaptive window i spans [floor(27 i / 16), ceil(27 (i + 1) / 16)): token 0 -> rows/cols 0-1, token 255 -> 25-26
    torch.testing.assert_close(pooled[0, 0], feats[0, 0:2, 0:2].mean(dim=(0, 1)))
    torch.testing.assert_close(pooled[0, 255], feats[0, 25:27, 25:27].mean(dim=(0, 1)))
    # token (row 1, col 2): rows [1, 4), cols [3, 6)
    torch.testing.assert_close(pooled[0, 16 + 2], feats[0, 1:4, 3:6].mean(dim=(0, 1)))


@pytest.mark.parametrize("num_tokens", [8, 0, -4])
def test_mlp_rejects_non_square_num_tokens(num_tokens):
    with pytest.raises(ValueError, match="square"):
        MLPConnector(in_dim=4, hidden=4, num_tokens=num_tokens)


def _shuffle_patches(feats: torch.Tensor) -> torch.Tensor:
    n, h, w, d = feats.shape
    perm = torch.randperm(h * w, generator=torch.Generator().manual_seed(3))
    return feats.reshape(n, h * w, d)[:, perm].reshape(n, h, w, d)


@pytest.mark.parametrize("kind", ["qformer", "resampler"])
def test_attention_connectors_see_patches_as_a_set(kind):
    conn = _make(kind)
    feats = _features()
    shuffled = _shuffle_patches(feats)
    assert not torch.equal(feats, shuffled)
    with torch.no_grad():
        torch.testing.assert_close(conn(shuffled), conn(feats), rtol=1e-5, atol=1e-5)


def test_mlp_depends_on_patch_order():
    conn = _make("mlp")
    feats = _features()
    with torch.no_grad():
        diff = (conn(_shuffle_patches(feats)) - conn(feats)).abs().max()
    assert diff > 1e-3


@pytest.mark.parametrize(("kind", "param"), [("qformer", "queries"), ("resampler", "latents")])
def test_learned_queries_and_latents_receive_gradients(kind, param):
    conn = _make(kind).train()
    conn(_features()).pow(2).sum().backward()
    grad = getattr(conn, param).grad
    assert grad is not None and grad.shape == (4, DIM)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["mlp", "qformer", "resampler"])
def test_each_image_output_depends_only_on_its_own_features(kind):
    conn = _make(kind)
    feats = _features(n=2)
    other = feats.clone()
    other[1] = other[1] * 3.0 + 1.0
    with torch.no_grad():
        out, out_other = conn(feats), conn(other)
    torch.testing.assert_close(out_other[0], out[0], rtol=0, atol=1e-6)
    assert (out_other[1] - out[1]).abs().max() > 1e-3


def test_resampler_latents_attend_to_patches_and_themselves():
    conn = _make("resampler")
    feats = _features(n=2, h=3, w=4)
    seen = {}

    def grab(module, args, output):
        seen["query"], seen["context"] = args

    block = conn.blocks[0]
    block.attn.register_forward_hook(grab)
    with torch.no_grad():
        conn(feats)
        media = block.norm_media(conn.feature_proj(feats.flatten(1, 2)))  # (2, 12, DIM)
        latents = block.norm_latents(conn.latents).expand(2, -1, -1)  # (2, 4, DIM)
    assert seen["context"].shape == (2, 12 + 4, DIM)
    torch.testing.assert_close(seen["context"][:, :12], media)
    torch.testing.assert_close(seen["context"][:, 12:], latents)
    torch.testing.assert_close(seen["query"], latents)


def test_qformer_cross_attends_to_patches_in_every_layer():
    conn = _make("qformer")
    assert len(conn.transformer.blocks) == LAYERS
    assert all(blk.cross for blk in conn.transformer.blocks)


def test_resampler_keeps_vision_width_by_default():
    conn = PerceiverResampler(in_dim=8, hidden=6, num_tokens=2, layers=1, heads=2)
    assert conn.latents.shape == (2, 8)


@pytest.mark.parametrize("kind", ["setok", "linear"])
def test_build_connector_rejects_kinds_that_are_not_patch_connectors(kind):
    with pytest.raises(ValueError, match="unknown connector kind"):
        build_connector(kind=kind, in_dim=4, hidden=4, num_tokens=4, layers=1, heads=1)


@pytest.mark.parametrize("kind", ["mlp", "qformer", "resampler"])
def test_connectors_reject_features_of_the_wrong_width(kind):
    with pytest.raises(ValueError, match=r"\(N, h, w, 12\)"):
        _make(kind)(torch.randn(1, 3, 3, IN_DIM + 1))
