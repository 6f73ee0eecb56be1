"""ImageNetFolder reads the official class-folder layout in torchvision ImageFolder order."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.datasets import ImageFolder

from setok.data import ImageNetFolder
from setok.io import DataError


def test_classes_are_sorted_wnid_folders_named_by_first_synset_name(imagenet_root: Path) -> None:
    ds = ImageNetFolder(imagenet_root, image_size=16, synsets=imagenet_root.parents[3] / "LOC_synset_mapping.txt")
    assert ds.wnids == ["n01440764", "n01443537"]
    assert ds.classes == ["tench", "goldfish"]


def test_sample_order_and_targets_match_torchvision_image_folder(imagenet_root: Path) -> None:
    ds = ImageNetFolder(imagenet_root, image_size=16)
    reference = ImageFolder(str(imagenet_root))
    assert ds.paths == [p for p, _ in reference.samples]
    assert ds.targets == [t for _, t in reference.samples]
    assert ds.classes == reference.classes  # without synsets the folder name is the class name


def test_extensions_are_case_insensitive_and_other_files_ignored(imagenet_root: Path) -> None:
    ds = ImageNetFolder(imagenet_root, image_size=16)
    assert ds.ids == ["n01440764_10", "n01440764_3", "n01440764_9", "n01443537_1", "n01443537_2"]


def test_sample_has_class_name_label_index_and_image(imagenet_root: Path) -> None:
    ds = ImageNetFolder(imagenet_root, image_size=16, synsets=imagenet_root.parents[3] / "LOC_synset_mapping.txt")
    s = ds[3]
    assert s["id"] == "n01443537_1"
    assert s["labels"] == ["goldfish"]
    assert s["label"] == 1
    assert s["contrastive"] is False
    assert s["image"].shape == (3, 16, 16) and s["image"].dtype == torch.float32
    assert 0.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0


def test_limit_keeps_the_first_images_after_sorting(imagenet_root: Path) -> None:
    ds = ImageNetFolder(imagenet_root, image_size=16, limit=4)
    assert ds.ids == ["n01440764_10", "n01440764_3", "n01440764_9", "n01443537_1"]
    assert ds.classes == ["n01440764", "n01443537"]  # classes do not shrink with the limit


def test_missing_root_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        ImageNetFolder(tmp_path / "nowhere", image_size=16)


def test_root_without_class_folders_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "flat.JPEG").write_bytes(b"")
    with pytest.raises(DataError, match="no class folders"):
        ImageNetFolder(tmp_path, image_size=16)


def test_synset_file_missing_a_wnid_is_an_error_naming_wnid_and_file(imagenet_root: Path, tmp_path: Path) -> None:
    synsets = tmp_path / "partial_synsets.txt"
    synsets.write_text("n01440764 tench, Tinca tinca\n")
    with pytest.raises(DataError, match=r"partial_synsets\.txt.*n01443537"):
        ImageNetFolder(imagenet_root, image_size=16, synsets=synsets)


def test_empty_class_folder_is_an_error(imagenet_root: Path) -> None:
    (imagenet_root / "n09999999").mkdir()
    with pytest.raises(DataError, match="n09999999"):
        ImageNetFolder(imagenet_root, image_size=16)


def test_truncated_jpeg_raises_data_error_naming_the_file(imagenet_root: Path) -> None:
    path = imagenet_root / "n01440764" / "n01440764_9.JPEG"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ds = ImageNetFolder(imagenet_root, image_size=16)
    with pytest.raises(DataError) as err:
        ds[ds.ids.index("n01440764_9")]
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_truncated_jpeg_fails_even_after_a_library_made_pil_pad_truncated_images(imagenet_root: Path) -> None:
    """lmms-eval sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` on import; the readers still refuse the file, and
    the caller's setting is left as it was."""
    from PIL import ImageFile

    path = imagenet_root / "n01440764" / "n01440764_9.JPEG"
    path.write_bytes(path.read_bytes()[:-200])
    ds = ImageNetFolder(imagenet_root, image_size=16)
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(DataError, match="cannot read image"):
            ds[ds.ids.index("n01440764_9")]
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
