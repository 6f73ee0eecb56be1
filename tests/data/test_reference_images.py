"""write_reference_images writes <id>.png at the requested size, refusing unsafe or duplicate ids."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from setok.data import BundledPhotos, write_reference_images
from setok.data.sample import Sample
from setok.io import DataError


class _Fixed(Dataset[Sample]):
    def __init__(self, ids: list[str], size: int = 8) -> None:
        self.ids, self.classes, self.size = ids, [], size

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> Sample:
        return Sample(id=self.ids[i], image=torch.full((3, self.size, self.size), 0.5), labels=[], label=-1,
                      contrastive=False)


def test_writes_one_png_per_sample_at_the_requested_size(tmp_path: Path) -> None:
    ds = BundledPhotos(image_size=48, limit=3)
    paths = write_reference_images(ds, tmp_path / "ref", size=32, batch_size=2)
    assert [p.name for p in paths] == [f"{i}.png" for i in ds.ids]
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == sorted(f"{i}.png" for i in ds.ids)
    with Image.open(paths[0]) as im:
        assert im.size == (32, 32) and im.mode == "RGB"


def test_image_at_the_target_size_is_written_unchanged(tmp_path: Path) -> None:
    ds = BundledPhotos(image_size=24, limit=1)
    (path,) = write_reference_images(ds, tmp_path, size=24)
    expected = (ds[0]["image"] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(path)), expected)


@pytest.mark.parametrize("bad", ["a/b", "../x", "", ".hidden", "sp ace"])
def test_unsafe_id_is_an_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(DataError, match="safe file name"):
        write_reference_images(_Fixed(["ok", bad]), tmp_path / "out", size=8)
    assert not list((tmp_path / "out").glob("*.png"))  # checked before writing anything


def test_duplicate_id_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="'x'"):
        write_reference_images(_Fixed(["x", "y", "x"]), tmp_path, size=8)


def test_folder_with_pngs_of_other_images_is_an_error(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "stale.png")
    with pytest.raises(DataError, match="stale.png"):
        write_reference_images(_Fixed(["a"]), tmp_path, size=8)
