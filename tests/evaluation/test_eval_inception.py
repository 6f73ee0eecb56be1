"""Offline FID Inception: the converted torch-fidelity weights reproduce fid-helper's network, FID over folders.

Kept small (4 images of 299x299, so no resizing differs between pipelines) because Inception on CPU is slow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.features.inception import (
    convert_fid_helper_state_dict,
    ensure_inception_weights,
    load_fid_helper_network,
    torch_fidelity_template,
)
from setok.io import DataError


def test_torch_fidelity_with_converted_weights_matches_fid_helper_features(
    fidelity_features: np.ndarray, helper_features: np.ndarray
) -> None:
    got, want = (
        torch.from_numpy(fidelity_features).float(),
        torch.from_numpy(helper_features),
    )
    assert got.shape == (4, 2048)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert float(want.abs().max()) > 0.1  # features are not trivially zero


def test_conversion_is_cached_and_not_rewritten(inception_weights: Path) -> None:
    before = os.stat(inception_weights).st_mtime_ns
    assert ensure_inception_weights(inception_weights) == inception_weights
    assert os.stat(inception_weights).st_mtime_ns == before


def test_default_weights_path_follows_the_environment(inception_weights: Path) -> None:
    assert (
        ensure_inception_weights() == inception_weights
    )  # $SETOK_INCEPTION_WEIGHTS set by the fixture


def test_converted_classifier_is_nan_so_logits_cannot_pass_silently(
    inception_weights: Path,
) -> None:
    state = torch.load(inception_weights, weights_only=True)
    assert torch.isnan(state["fc.weight"]).all() and torch.isnan(state["fc.bias"]).all()
    assert torch.equal(state["Conv2d_1a_3x3.bn.weight"], torch.ones(32))


def test_conversion_rejects_networks_that_do_not_line_up() -> None:
    source = load_fid_helper_network().state_dict()
    template = torch_fidelity_template()
    template["Mixed_5b.branch1x1.conv.weight"] = torch.zeros(65, 192, 1, 1)
    with pytest.raises(
        DataError, match="does not match torch-fidelity Mixed_5b.branch1x1"
    ):
        convert_fid_helper_state_dict(source, template)


def test_clean_fid_with_fid_helper_weights_gives_the_same_features(
    image_dirs: tuple[Path, Path, np.ndarray], fidelity_features: np.ndarray
) -> None:
    """clean-fid's own folder pipeline and InceptionV3W wrapper, pointed at fid-helper's TorchScript network."""
    from cleanfid.fid import get_folder_features
    from cleanfid.inception_torchscript import InceptionV3W

    wrapper = InceptionV3W.__new__(InceptionV3W)
    torch.nn.Module.__init__(wrapper)
    wrapper.base = (
        load_fid_helper_network().net
    )  # clean-fid's file has the same layout minus the outer `net`
    wrapper.layers = wrapper.base.layers
    wrapper.resize_inside = False
    feats = get_folder_features(
        str(image_dirs[0]),
        wrapper,
        num_workers=0,
        batch_size=2,
        device=torch.device("cpu"),
        mode="clean",
        verbose=False,
    )
    np.testing.assert_allclose(feats, fidelity_features[:2], rtol=1e-5, atol=1e-5)


def test_fid_of_an_image_folder_against_saved_features_has_the_closed_form_value(
    image_dirs: tuple[Path, Path, np.ndarray],
    fidelity_features: np.ndarray,
    inception_weights: Path,
    tmp_path: Path,
) -> None:
    from evaluation.readers.fid import write_fid_npz
    from evaluation.registry import score

    # References: folder b's features saved as .npz (round-trips the writer, saves two Inception passes).
    write_fid_npz(
        tmp_path / "ref.npz", fidelity_features[2:], names=["img_2.png", "img_3.png"]
    )
    result = score("fid", image_dirs[0], tmp_path / "ref.npz", device="cpu")
    # Two images per set: sigma_i = v_i v_i^T with v_i = (x1 - x2) / sqrt(2), so FID has a closed form.
    f = fidelity_features.astype(np.float64)
    v1, v2 = (f[0] - f[1]) / np.sqrt(2), (f[2] - f[3]) / np.sqrt(2)
    dmu = f[:2].mean(0) - f[2:].mean(0)
    expected = dmu @ dmu + v1 @ v1 + v2 @ v2 - 2 * abs(v1 @ v2)
    assert result.metrics["fid"] == pytest.approx(expected, rel=1e-5)
    assert result.metrics["fid"] > 1.0 and result.n == 2 and result.ci95 == {}
    assert [r["file"] for r in result.rows] == ["img_0.png", "img_1.png"]
    assert result.rows[1]["feature_norm"] == pytest.approx(
        float(np.linalg.norm(fidelity_features[1])), rel=1e-6
    )


def test_an_unreadable_image_is_named(tmp_path: Path, inception_weights: Path) -> None:
    from evaluation.suite.fid import compute_fid

    (tmp_path / "a.png").write_bytes(b"not a png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    np.savez(tmp_path / "ref.npz", mu=np.zeros(2048), sigma=np.eye(2048))
    with pytest.raises(DataError, match=r"a\.png: cannot read image"):
        compute_fid(tmp_path, tmp_path / "ref.npz", device="cpu")
