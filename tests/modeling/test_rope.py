"""Known answers for the 2D RoPE position embedding PE(X) of the Token Merger."""
import math

import torch

from setok.modeling.rope import RoPE2D, apply_rope, grid_positions, rope_angles


def test_grid_positions_are_row_major():
    assert grid_positions(2, 3).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]


def test_rope_angles_by_hand():
    # D = 8: two frequencies 100^0 = 1 and 100^(-1/2) = 0.1; pairs 0-1 follow the row, 2-3 the column.
    ang = rope_angles(torch.tensor([[2.0, 3.0]]), 8, theta=100.0)
    torch.testing.assert_close(ang, torch.tensor([[2.0, 0.2, 3.0, 0.3]]))


def test_rope_rotates_each_channel_pair():
    x = torch.tensor([[[1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0]]])  # (1, 1, 8)
    out = apply_rope(x, torch.tensor([[math.pi / 2, 0.0, math.pi, math.pi / 2]]))
    # (1,0) by 90 deg -> (0,1); (0,1) by 0 -> (0,1); (1,0) by 180 -> (-1,0); (0,1) by 90 -> (-1,0).
    torch.testing.assert_close(out, torch.tensor([[[0.0, 1.0, 0.0, 1.0, -1.0, 0.0, -1.0, 0.0]]]), atol=1e-6, rtol=0)


def test_rope_is_identity_at_origin_and_preserves_norm():
    pe = RoPE2D(dim=16)
    x = torch.randn(2, 12, 16)
    y = pe(x, (3, 4))
    torch.testing.assert_close(y[:, 0], x[:, 0])
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))


def test_rope_dot_product_depends_only_on_relative_position():
    q, k = torch.randn(16), torch.randn(16)

    def dot(p: tuple[float, float], r: tuple[float, float]) -> float:
        a = apply_rope(q[None], rope_angles(torch.tensor([p]), 16))[0]
        b = apply_rope(k[None], rope_angles(torch.tensor([r]), 16))[0]
        return float(a @ b)

    assert math.isclose(dot((1, 2), (3, 5)), dot((4, 0), (6, 3)), rel_tol=1e-5)
    assert not math.isclose(dot((1, 2), (3, 5)), dot((1, 2), (5, 3)), rel_tol=1e-3)
