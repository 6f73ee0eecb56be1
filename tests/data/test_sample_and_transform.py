"""collate batches samples; image_transform resizes the shorter side then centre-crops."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from setok.data import collate, image_transform
from setok.data.sample import Sample


def _sample(i: int, size: int = 8) -> Sample:
    return Sample(id=f"s{i}", image=torch.full((3, size, size), i / 10), labels=["a"] * i, label=i - 1,
                  contrastive=bool(i % 2))


def test_collate_stacks_images_and_types_the_fields() -> None:
    batch = collate([_sample(1), _sample(2), _sample(3)])
    assert batch["image"].shape == (3, 3, 8, 8)
    assert torch.equal(batch["image"][1], torch.full((3, 8, 8), 0.2))
    assert batch["id"] == ["s1", "s2", "s3"]
    assert batch["labels"] == [["a"], ["a", "a"], ["a", "a", "a"]]
    assert batch["label"].dtype == torch.long and batch["label"].tolist() == [0, 1, 2]
    assert batch["contrastive"].dtype == torch.bool and batch["contrastive"].tolist() == [True, False, True]


def test_collate_rejects_empty_and_mixed_sizes() -> None:
    with pytest.raises(ValueError):
        collate([])
    with pytest.raises(ValueError, match="shapes"):
        collate([_sample(1, 8), _sample(2, 4)])


@pytest.mark.parametrize("wide", [True, False])
def test_transform_keeps_the_centre_of_the_longer_side(wide: bool) -> None:
    # 300 x 100 image: black outer thirds, white middle third. Shorter side 100 -> 50, so the crop is the middle.
    image = Image.new("RGB", (300, 100) if wide else (100, 300), "black")
    image.paste((255, 255, 255), (100, 0, 200, 100) if wide else (0, 100, 100, 200))
    out = image_transform(50)(image)
    assert out.shape == (3, 50, 50) and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float(out[:, 3:-3, 3:-3].min()) > 0.95  # interior is the white third
    assert float(out.mean()) > 0.9


def test_transform_is_deterministic_and_scales_to_unit_range() -> None:
    image = Image.new("RGB", (64, 48), (255, 0, 128))
    a, b = image_transform(24)(image), image_transform(24)(image)
    assert torch.equal(a, b)
    assert torch.allclose(a[:, 12, 12], torch.tensor([1.0, 0.0, 128 / 255]))


def test_transform_rejects_non_positive_size() -> None:
    with pytest.raises(ValueError):
        image_transform(0)


@pytest.mark.parametrize("shape", [(300, 100), (97, 131), (64, 64), (20, 33)])
def test_transform_matches_torchvision_resize_and_center_crop(shape: tuple[int, int]) -> None:
    import numpy as np
    from torchvision.transforms import v2

    pixels = np.random.default_rng(0).integers(0, 256, (shape[1], shape[0], 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    reference = v2.Compose([
        v2.Resize(48, interpolation=v2.InterpolationMode.BICUBIC, antialias=True), v2.CenterCrop(48),
        v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
    ])
    assert torch.equal(image_transform(48)(image), reference(image))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "CMYK"])
def test_any_mode_reads_and_transforms_as_its_rgb_conversion(mode: str, tmp_path) -> None:
    """load_image and the transform skip convert() for RGB images (a copy, ~5% of a data worker's time): the result
    must equal what converting first gives, for RGB and for every mode that still converts."""
    import numpy as np

    from setok.io import load_image

    pixels = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    original = Image.fromarray(pixels).convert(mode)
    path = tmp_path / ("image.jpg" if mode in ("RGB", "L", "CMYK") else "image.png")
    original.save(path)
    with Image.open(path) as im:
        expected = im.convert("RGB")
    loaded = load_image(path)
    path.unlink()  # the pixels were read: nothing refers to the file any more
    assert loaded.mode == "RGB" and np.array_equal(np.asarray(loaded), np.asarray(expected))
    transform = image_transform(24)
    assert torch.equal(transform(original), transform(original.convert("RGB")))
    assert torch.equal(transform(loaded), transform(expected))


def test_collate_stacks_into_shared_memory_inside_a_worker(monkeypatch) -> None:
    """In a DataLoader worker the batch is built in shared memory (no second copy to send it); same values."""
    import torch.utils.data as data

    samples = [_sample(i) for i in (1, 2, 3)]
    plain = collate(samples)
    assert not plain["image"].is_shared()
    monkeypatch.setattr(data, "get_worker_info", lambda: object())  # what a worker process sees
    in_worker = collate(samples)
    assert in_worker["image"].is_shared() and in_worker["image"].shape == (3, 3, 8, 8)
    assert torch.equal(in_worker["image"], torch.stack([s["image"] for s in samples]))
    assert torch.equal(in_worker["image"], plain["image"])
