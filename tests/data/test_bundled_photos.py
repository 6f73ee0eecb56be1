"""BundledPhotos: real, labelled photographs shipped with installed packages."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from setok.data import BundledPhotos
from setok.data.bundled import read_bundled_labels
from setok.io import DataError

SIZE = 32


@pytest.fixture(scope="module")
def photos() -> BundledPhotos:
    return BundledPhotos(image_size=SIZE)


@pytest.fixture(scope="module")
def images(photos: BundledPhotos) -> torch.Tensor:
    return torch.stack([photos[i]["image"] for i in range(len(photos))])


def test_at_least_twelve_photos_each_with_labels(photos: BundledPhotos) -> None:
    assert len(photos) >= 12
    for i in range(len(photos)):
        labels = photos[i]["labels"]
        assert labels and all(isinstance(x, str) and x.strip() for x in labels), photos.ids[i]


def test_images_are_square_rgb_in_unit_range(images: torch.Tensor) -> None:
    assert images.shape[1:] == (3, SIZE, SIZE) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert float(images.std()) > 0.05  # real content, not blank


def test_images_differ_from_each_other(images: torch.Tensor) -> None:
    flat = images.flatten(1)
    distance = torch.cdist(flat, flat, p=1) / flat.shape[1]
    distance.fill_diagonal_(float("inf"))
    assert float(distance.min()) > 0.01  # even the motorcycle stereo pair differs


def test_label_is_the_index_of_the_yaml_class(photos: BundledPhotos) -> None:
    by_id = {photos.ids[i]: photos[i] for i in range(len(photos))}
    assert photos.classes[by_id["chelsea"]["label"]] == "cat"
    assert photos.classes[by_id["astronaut"]["label"]] == "person"
    assert by_id["chelsea"]["labels"] == ["cat"]
    assert by_id["coffee"]["labels"][:3] == ["coffee cup", "saucer", "spoon"]


def test_order_and_ids_follow_the_yaml(photos: BundledPhotos) -> None:
    _, entries = read_bundled_labels()
    assert photos.ids == [e.id for e in entries]
    assert len(set(photos.ids)) == len(photos.ids)


def test_files_come_from_three_installed_packages(photos: BundledPhotos) -> None:
    roots = {p: Path(importlib.util.find_spec(p).submodule_search_locations[0]) for p in
             ("skimage", "sklearn", "matplotlib")}
    used = {e.package for e in photos.photos}
    assert used == set(roots)
    for entry, path in zip(photos.photos, photos.paths, strict=True):
        assert path == roots[entry.package] / entry.path


def test_grey_photo_becomes_three_equal_channels(photos: BundledPhotos) -> None:
    image = photos[photos.ids.index("camera")]["image"]
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])


def test_limit_keeps_the_first_photos() -> None:
    assert BundledPhotos(image_size=SIZE, limit=3).ids == BundledPhotos(image_size=SIZE).ids[:3]


def test_entry_with_unknown_class_is_an_error() -> None:
    text = "classes: [cat]\nimages:\n  - {id: a, package: skimage, path: data/chelsea.png, labels: [cat], class: dog}\n"
    with pytest.raises(DataError, match="class 'dog'"):
        read_bundled_labels(text)


def test_entry_with_empty_labels_is_an_error() -> None:
    text = "classes: [cat]\nimages:\n  - {id: a, package: skimage, path: data/chelsea.png, labels: [], class: cat}\n"
    with pytest.raises(DataError, match="labels"):
        read_bundled_labels(text)


def test_a_photo_is_decoded_once_and_callers_get_their_own_copy(monkeypatch):
    import setok.data.bundled as bundled

    calls = []
    real = bundled.load_tensor
    monkeypatch.setattr(bundled, "load_tensor", lambda *a: calls.append(a[0]) or real(*a))
    ds = bundled.BundledPhotos(image_size=16, limit=2)
    first = ds[0]["image"]
    first.zero_()  # a caller writing into its sample must not change what the next caller reads
    again = ds[0]["image"]
    assert len(calls) == 1 and again.abs().sum() > 0
    torch.testing.assert_close(again, real(ds.paths[0], ds._transform))
