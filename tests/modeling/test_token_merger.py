"""Token Merger and Detokenizer: shapes, padding, the packing of hard clusters, and the Table 6 switches."""
import pytest
import torch

from setok.modeling.clustering import cluster
from setok.modeling.detokenizer import Detokenizer
from setok.modeling.token_merger import TokenMerger, pack_hard_clusters


def merger(**kw) -> TokenMerger:
    args = dict(in_dim=16, dim=8, inner_layers=1, inter_layers=1, heads=2, mlp_ratio=2.0)
    args.update(kw)
    return TokenMerger(**args)


def test_pack_hard_clusters_groups_members():
    x = torch.arange(6, dtype=torch.float32).view(1, 6, 1)
    masks = torch.nn.functional.one_hot(torch.tensor([[1, 0, 1, 1, 0, 2]]), 3).float()
    seq, weight, rows = pack_hard_clusters(x, masks, torch.ones(1, 3, dtype=torch.bool))
    assert rows.tolist() == [0, 1, 2]
    assert weight.sum(1).tolist() == [2, 3, 1]
    assert seq[0, :2, 0].tolist() == [1, 4] and seq[1, :3, 0].tolist() == [0, 2, 3] and seq[2, 0, 0] == 5


def test_average_merger_is_the_mask_weighted_mean():
    m = merger(kind="average")
    x = torch.randn(2, 16, 16)
    out = cluster(x.view(2, 4, 4, 16), mode="fixed", num_clusters=3)
    v, valid = m(x, (4, 4), out.masks, out.num_tokens)
    proj = m.proj(x)
    expected = (out.masks.transpose(1, 2) @ proj) / out.masks.sum(1)[..., None]
    torch.testing.assert_close(v, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_merger_output_is_zero_at_padding_and_independent_of_batch_mates(mode):
    torch.manual_seed(0)
    m = merger().eval()
    x = torch.randn(3, 5, 5, 16)
    out = cluster(x, mode=mode, max_tokens=10)
    v, valid = m(x.view(3, 25, 16), (5, 5), out.masks, out.num_tokens)
    assert v.shape == (3, int(out.num_tokens.max()), 8)
    assert (v[~valid] == 0).all()
    one = cluster(x[1:2], mode=mode, max_tokens=10)
    v1, _ = m(x[1:2].view(1, 25, 16), (5, 5), one.masks, one.num_tokens)
    n = int(one.num_tokens[0])
    torch.testing.assert_close(v[1, :n], v1[0, :n], atol=1e-5, rtol=1e-4)


def test_position_embedding_changes_tokens_and_no_pe_does_not_depend_on_layout():
    torch.manual_seed(0)
    x = torch.randn(1, 16, 16)
    masks = torch.nn.functional.one_hot(torch.tensor([[0] * 8 + [1] * 8]), 2).float()
    perm = torch.tensor(list(range(7, -1, -1)) + list(range(8, 16)))  # shuffle inside cluster 0
    for pe, changes in ((True, True), (False, False)):
        torch.manual_seed(1)
        m = merger(position_embedding=pe, inter_layers=0).eval()
        a, _ = m(x, (4, 4), masks, torch.tensor([2]))
        b, _ = m(x[:, perm], (4, 4), masks, torch.tensor([2]))
        assert (not torch.allclose(a, b, atol=1e-5)) == changes


def test_detokenizer_shapes_and_padding_tokens_do_not_matter():
    torch.manual_seed(0)
    det = Detokenizer(token_dim=8, dim=16, layers=1, heads=2, mlp_ratio=2.0, grid=4, image_size=16,
                      decoder_channels=[16, 8, 8]).eval()
    tokens = torch.randn(2, 5, 8)
    valid = torch.tensor([[True] * 5, [True, True, False, False, False]])
    img = det(tokens, valid)
    assert img.shape == (2, 3, 16, 16)
    tokens2 = tokens.clone()
    tokens2[1, 2:] = 100.0  # garbage in padding slots
    torch.testing.assert_close(det(tokens2, valid), img)
    with pytest.raises(ValueError, match="image_size"):
        Detokenizer(token_dim=8, dim=16, layers=1, heads=2, mlp_ratio=2.0, grid=4, image_size=32,
                    decoder_channels=[16, 8, 8])
