"""Token-mask overlay (Figure 6): regions coloured per token, boundaries between tokens drawn black."""
import numpy as np

from evaluation.report.figures import overlay


def test_overlay_marks_token_boundaries_and_keeps_one_colour_per_token():
    image = np.full((8, 8, 3), 200, dtype=np.uint8)
    assignment = np.array([[0, 1], [0, 1]])  # left half token 0, right half token 1 (2x2 patches of 4x4 px)
    out = overlay(image, assignment, alpha=0.5)
    assert (out[:, 4] == 0).all()  # the first column of token 1 borders token 0
    assert (out[:, :4] == out[0, 0]).all()  # token 0's region is one colour
    assert (out[:, 5:] == out[0, 7]).all() and not (out[0, 0] == out[0, 7]).all()
    assert (overlay(image, np.zeros((2, 2), dtype=int)) != 0).all()  # one token: no boundary at all
