"""img2dataset tar shards (SemHiTok's COYO / MidJourney-style data): index, pixels, captions, cache, bad shards."""
import io
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from setok.config import DataSource
from setok.data import build_dataset, collate
from setok.data import image_shards as shards_module
from setok.data.bundled import BundledPhotos
from setok.data.image_shards import ImageShards
from setok.data.transforms import image_transform
from setok.io import DataError


def jpeg(i: int) -> bytes:
    """A real photo (bundled with scikit-image & co.) as JPEG bytes."""
    img = BundledPhotos(image_size=48)[i]["image"]
    arr = (img.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, bytes]]:
    monkeypatch.setenv("SETOK_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "coyo"
    root.mkdir()
    images = {}
    with tarfile.open(root / "00000.tar", "w") as tar:
        for i, key in enumerate(["000000000", "000000001"]):
            images[f"00000/{key}"] = jpeg(i)
            add(tar, f"{key}.jpg", images[f"00000/{key}"])
            add(tar, f"{key}.txt", f"caption {i}".encode())
            add(tar, f"{key}.json", b"{}")
        add(tar, "000000002.json", b"{}")  # a failed download: metadata only
    with tarfile.open(root / "00001.tar", "w") as tar:
        images["00001/000010000"] = jpeg(2)
        add(tar, "000010000.jpg", images["00001/000010000"])  # no caption
    with tarfile.open(root / "00002.tar", "w") as tar:
        add(tar, "000020000.json", b"{}")  # a shard with no image at all
    return root, images


def test_index_ids_pixels_and_captions(shards):
    root, images = shards
    ds = ImageShards(root, image_size=32)
    assert len(ds) == 3 and ds.ids == ["00000/000000000", "00000/000000001", "00001/000010000"]
    t = image_transform(32)
    for i, sid in enumerate(ds.ids):
        sample = ds[i]
        assert sample["id"] == sid and sample["label"] == -1 and sample["labels"] == []
        torch.testing.assert_close(sample["image"], t(Image.open(io.BytesIO(images[sid]))), rtol=0, atol=0)
    assert [ds.caption(i) for i in range(3)] == ["caption 0", "caption 1", ""]
    assert len(ImageShards(root, image_size=32, limit=2)) == 2


def test_index_is_cached_and_reused(shards, monkeypatch):
    root, _ = shards
    ImageShards(root, image_size=16)

    def no_scan(path):
        raise AssertionError("re-scanned a shard although its index is cached")

    monkeypatch.setattr(shards_module, "scan_shard", no_scan)
    assert len(ImageShards(root, image_size=16)) == 3
    (root / "00001.tar").touch()  # a changed shard invalidates the cache
    with pytest.raises(AssertionError, match="re-scanned"):
        ImageShards(root, image_size=16)


def test_config_builds_it_and_a_dataloader_with_workers_reads_it(shards):
    root, _ = shards
    ds = build_dataset(DataSource(kind="webdataset", root=str(root), contrastive=False), image_size=16)
    batches = list(DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate))
    assert [i for b in batches for i in b["id"]] == ds.ids and batches[0]["image"].shape == (2, 3, 16, 16)


def test_bad_shards_and_images_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SETOK_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="no .tar shards"):
        ImageShards(tmp_path, image_size=16)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "00000.tar").write_bytes(b"this is not a tar archive" * 40)
    with pytest.raises(DataError, match=r"00000.tar: not a readable tar shard"):
        ImageShards(bad, image_size=16)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    with tarfile.open(corrupt / "00000.tar", "w") as tar:
        add(tar, "000000007.jpg", b"\xff\xd8 not really a jpeg")
    ds = ImageShards(corrupt, image_size=16)
    with pytest.raises(DataError, match=r"00000.tar: image 000000007 cannot be decoded"):
        ds[0]
