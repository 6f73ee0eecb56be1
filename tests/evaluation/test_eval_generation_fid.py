"""The coco_fid and mjhq_fid benchmarks: MJHQ-30K layout, per-category FID, COCO-30K center-crop protocol, errors.

Most tests swap the Inception for a tiny deterministic feature map (Inception on a CPU is slow); one test runs the real
network on the 4 shared fixture images and checks the per-category values against the fixture's features.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.metrics.fid import fid_from_features
from evaluation.readers.fid import write_fid_npz
from evaluation.registry import score
from evaluation.suite.coco_fid import center_crop_resize
from setok.io import DataError


class _ColourStats(torch.nn.Module):
    """Stand-in extractor: per-channel mean and the four quadrant means of channel 0 (7 features)."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # image_features reads the device from a parameter

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        x = x.double()
        h, w = x.shape[2] // 2, x.shape[3] // 2
        quads = [x[:, 0, :h, :w], x[:, 0, :h, w:], x[:, 0, h:, :w], x[:, 0, h:, w:]]
        return (torch.cat([x.mean((2, 3)), torch.stack([q.mean((1, 2)) for q in quads], 1)], 1),)


def _stats(image: np.ndarray) -> np.ndarray:
    """What :class:`_ColourStats` returns for one ``(H, W, 3)`` image."""
    return _ColourStats()(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None])[0][0].numpy()


@pytest.fixture
def fake_inception(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Replace the Inception with :class:`_ColourStats`; yields a list counting the builds."""
    import evaluation.features.inception as inception

    builds: list[int] = []

    def build(weights_path: object = None, device: str | None = None) -> torch.nn.Module:
        builds.append(1)
        return _ColourStats()

    monkeypatch.setattr(inception, "build_inception_extractor", build)
    yield builds


def _image(seed: int, h: int = 8, w: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


CATS = {"a1": "animals", "a2": "animals", "a3": "animals", "p1": "people", "p2": "people"}


def _mjhq(root: Path, gen_seed: int = 100) -> tuple[Path, Path, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """MJHQ layout under ``root``: meta_data.json, mjhq30k_imgs/<category>/<id>.jpg (real JPEGs, so their pixels are
    read back from disk for the expected features) and generated/<id>.png. Returns (generated dir, meta, pixels)."""
    meta = {i: {"category": c, "prompt": f"a picture of {i}"} for i, c in CATS.items()}
    (root / "meta_data.json").write_text(json.dumps(meta))
    gen_dir = root / "generated"
    gen_dir.mkdir()
    gen, ref = {}, {}
    for k, (i, c) in enumerate(CATS.items()):
        (root / "mjhq30k_imgs" / c).mkdir(parents=True, exist_ok=True)
        Image.fromarray(_image(k)).save(root / "mjhq30k_imgs" / c / f"{i}.jpg")
        ref[i] = np.asarray(Image.open(root / "mjhq30k_imgs" / c / f"{i}.jpg").convert("RGB"))
        gen[i] = _image(gen_seed + k)
        Image.fromarray(gen[i]).save(gen_dir / f"{i}.png")
    return gen_dir, root / "meta_data.json", gen, ref


def test_mjhq_reports_overall_and_per_category_fid_of_the_features(tmp_path: Path, fake_inception: list[int]) -> None:
    gen_dir, meta, gen, ref = _mjhq(tmp_path)
    result = score("mjhq_fid", gen_dir, meta)
    g = {i: _stats(a) for i, a in gen.items()}
    r = {i: _stats(a) for i, a in ref.items()}

    def fid(ids: list[str]) -> float:
        return fid_from_features(np.stack([g[i] for i in ids]), np.stack([r[i] for i in ids]))

    assert set(result.metrics) == {"fid", "fid_animals", "fid_people"}
    assert result.metrics["fid"] == pytest.approx(fid(list(CATS)), rel=1e-9)
    assert result.metrics["fid_animals"] == pytest.approx(fid(["a1", "a2", "a3"]), rel=1e-9)
    assert result.metrics["fid_people"] == pytest.approx(fid(["p1", "p2"]), rel=1e-9)
    assert result.metrics["fid_people"] != pytest.approx(result.metrics["fid"], rel=1e-3)
    assert [(row["id"], row["category"], row["file"]) for row in result.rows][:2] == [
        ("a1", "animals", "a1.png"),
        ("a2", "animals", "a2.png"),
    ]
    assert result.n == 5 and result.ci95 == {} and fake_inception == [1]


def test_generated_images_equal_to_references_give_zero_fid(tmp_path: Path, fake_inception: list[int]) -> None:
    gen_dir, meta, _, _ = _mjhq(tmp_path)
    for c_dir in (tmp_path / "mjhq30k_imgs").iterdir():
        for f in c_dir.iterdir():
            shutil.copy(f, gen_dir / f.name)
            (gen_dir / f.with_suffix(".png").name).unlink()
    result = score("mjhq_fid", gen_dir, meta)
    # 5 vs 5 points in 7-d goes through the full 7x7 formula: rank-deficient covariances leave ~1e-6 of rounding
    # (the same features give about 1e3 against other images).
    assert all(v == pytest.approx(0.0, abs=1e-4) for v in result.metrics.values())


def test_reference_cache_is_written_then_reused_without_the_images(tmp_path: Path, fake_inception: list[int]) -> None:
    gen_dir, meta, _, _ = _mjhq(tmp_path)
    cache = tmp_path / "mjhq_ref.npz"
    first = score("mjhq_fid", gen_dir, meta, reference_cache=cache)
    shutil.rmtree(tmp_path / "mjhq30k_imgs")
    again = score("mjhq_fid", gen_dir, meta, reference_cache=cache)
    assert again.metrics == first.metrics
    with pytest.raises(DataError, match=r"no MJHQ category folders"):
        score("mjhq_fid", gen_dir, meta)


def test_bootstrap_gives_an_interval_per_metric(tmp_path: Path, fake_inception: list[int]) -> None:
    gen_dir, meta, _, _ = _mjhq(tmp_path)
    result = score("mjhq_fid", gen_dir, meta, n_bootstrap=20, seed=3)
    assert set(result.ci95) == set(result.metrics)
    assert all(lo <= hi for lo, hi in result.ci95.values())


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda g: (g / "p2.png").unlink(), r"generated: missing generated images for 1 of 5 ids: p2"),
        (lambda g: shutil.copy(g / "p2.png", g / "zz.png"), r"generated: 1 images are not MJHQ ids of .*: zz"),
        (lambda g: shutil.copy(g / "p2.png", g / "p2.jpg"), r"generated: 1 ids have more than one image file: p2"),
        (lambda g: (g.parent / "mjhq30k_imgs" / "animals" / "a3.jpg").unlink(), r"1 reference images not found"),
    ],
)
def test_mjhq_layout_errors_are_one_line_and_come_before_any_inception(
    tmp_path: Path, fake_inception: list[int], change: object, match: str
) -> None:
    gen_dir, meta, _, _ = _mjhq(tmp_path)
    change(gen_dir)  # type: ignore[operator]
    with pytest.raises(DataError, match=match) as e:
        score("mjhq_fid", gen_dir, meta)
    assert "\n" not in str(e.value) and fake_inception == []


def test_center_crop_resize_keeps_the_central_square() -> None:
    img = np.zeros((4, 6, 3), dtype=np.uint8)
    img[:, 1:5] = 200  # columns 1-4 = the central 4x4 square of a 6-wide, 4-high image: offset (6 - 4) // 2 = 1
    out = center_crop_resize(4)(Image.fromarray(img))
    assert out.size == (4, 4) and (np.asarray(out) == 200).all()
    assert center_crop_resize(2)(Image.fromarray(img)).size == (2, 2)


def test_coco_fid_resizes_both_folders_with_the_protocol(tmp_path: Path, fake_inception: list[int]) -> None:
    gen_dir, ref_dir = tmp_path / "gen", tmp_path / "coco"
    gen_dir.mkdir(), ref_dir.mkdir()
    gens = [_image(k, 8, 8) for k in range(3)]
    refs = [_image(10 + k, 6, 10) for k in range(3)]  # non-square, like COCO photos
    for k in range(3):
        Image.fromarray(gens[k]).save(gen_dir / f"{k}.png")
        Image.fromarray(refs[k]).save(ref_dir / f"COCO_val2014_{k:012d}.png")
    result = score("coco_fid", gen_dir, ref_dir, resize=4)
    prep = center_crop_resize(4)
    expected = fid_from_features(
        np.stack([_stats(np.asarray(prep(Image.fromarray(a)))) for a in gens]),
        np.stack([_stats(np.asarray(prep(Image.fromarray(a)))) for a in refs]),
    )
    assert result.metrics["fid"] == pytest.approx(expected, rel=1e-9)
    plain = score("coco_fid", gen_dir, ref_dir)
    assert plain.metrics["fid"] != pytest.approx(expected, rel=1e-6)  # without --resize the 6x10 refs enter as they are
    with pytest.raises(DataError, match=r"gen: 3 generated samples, --expect-n requires 30000"):
        score("coco_fid", gen_dir, ref_dir, expect_n=30000)


def test_real_inception_category_fid_matches_the_fixture_features(
    tmp_path: Path, image_dirs: tuple[Path, Path, np.ndarray], fidelity_features: np.ndarray
) -> None:
    # One category, generated = fixture images 0 and 1 (through the real Inception here), references = fixture
    # images 2 and 3 given as a reference cache holding the shared fixture's features (checked against fid-helper
    # elsewhere), so only two images pass through the network: FID of features [0, 1] against [2, 3].
    files = sorted(image_dirs[0].iterdir())
    (tmp_path / "meta_data.json").write_text(json.dumps({i: {"category": "art", "prompt": ""} for i in ("x0", "x1")}))
    (tmp_path / "gen").mkdir()
    for k, i in enumerate(("x0", "x1")):
        shutil.copy(files[k], tmp_path / "gen" / f"{i}.png")
    write_fid_npz(tmp_path / "ref.npz", fidelity_features[[2, 3]], names=["x0", "x1"])
    result = score(
        "mjhq_fid", tmp_path / "gen", tmp_path / "meta_data.json", reference_cache=tmp_path / "ref.npz", device="cpu"
    )
    expected = fid_from_features(fidelity_features[[0, 1]], fidelity_features[[2, 3]])
    assert result.metrics == pytest.approx({"fid": expected, "fid_art": expected}, rel=1e-4)
    assert expected > 1.0
