"""img2dataset shards -> COCO captions: every pair once, bytes unchanged, and Stage I reads the result as captioning
and text-to-image samples; a caption-less image or a broken shard is named."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from setok.data.shards_to_coco import convert, main
from setok.data.sources.coco import read_coco_captions
from setok.io import DataError


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def shard(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def shards(tmp_path: Path) -> Path:
    root = tmp_path / "shards"
    shard(root / "00000.tar", {"000000000.jpg": jpeg(0), "000000000.txt": b"a red bus ", "000000000.json": b"{}",
                               "000000001.png": jpeg(1), "000000001.txt": "caf\u00e9 at night".encode()})
    shard(root / "00001.tar", {"000010000.jpg": jpeg(2), "000010000.txt": b"two dogs"})
    return root


def test_pairs_in_shard_order_with_the_stored_bytes(shards: Path, tmp_path: Path) -> None:
    out, images = tmp_path / "captions.json", tmp_path / "images"
    assert convert(shards, images, out) == 3
    coco = json.loads(out.read_text())
    assert [im["file_name"] for im in coco["images"]] == ["00000/000000000.jpg", "00000/000000001.png",
                                                          "00001/000010000.jpg"]
    assert [a["caption"] for a in coco["annotations"]] == ["a red bus", "caf\u00e9 at night", "two dogs"]
    assert [(a["id"], a["image_id"]) for a in coco["annotations"]] == [(0, 0), (1, 1), (2, 2)]
    assert (images / "00001/000010000.jpg").read_bytes() == jpeg(2)
    # Stage I reads it as COCO captions: one captioning and one text-to-image sample per pair
    samples = read_coco_captions(out, images)
    assert sorted(s.task for s in samples) == ["caption"] * 3 + ["generation"] * 3
    assert convert(shards, images, tmp_path / "two.json", limit=2) == 2  # rerun over existing images, limited


def test_caption_less_image_and_broken_shard_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = shard(tmp_path / "s" / "00000.tar", {"k1.jpg": jpeg(0)})
    with pytest.raises(DataError, match=r"00000.tar: k1.jpg has no caption"):
        convert(bad.parent, tmp_path / "i", tmp_path / "c.json")
    (tmp_path / "t" / "00000.tar").parent.mkdir()
    (tmp_path / "t" / "00000.tar").write_bytes(b"not a tar")
    argv = ["--shards", str(tmp_path / "t"), "--images", str(tmp_path / "i"), "--out", str(tmp_path / "c.json")]
    assert main(argv) == 2
    assert "00000.tar: not a readable tar shard" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()
