"""An ImageNet-like training set made from the bundled real photographs, written twice: as ImageNet class folders
(``root/<wnid>/<wnid>_<n>.JPEG``) and as img2dataset webdataset shards (``NNNNN.tar`` holding ``<key>.jpg``,
``<key>.txt``, ``<key>.json``), the same JPEG bytes in both, so the readers decode exactly the same files.

The pixel sizes follow ImageNet-1K's training set (most images 500 px on the long side, 500 x 375 the commonest,
a few percent much larger), JPEG quality 90, and sensor-like noise so that the files weigh about what ImageNet's do
(ImageNet: ~110 KB on average, 1.28 M images in ~140 GB; this set: ~100 KB). A few are greyscale JPEGs, as in
ImageNet.
"""
from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from setok.data.bundled import BundledPhotos
from setok.io import load_image, write_json

# (width, height) and weight: ImageNet-1K training images, roughly (most are 500 px on the longer side).
SIZES: tuple[tuple[tuple[int, int], float], ...] = (
    ((500, 375), 0.40), ((500, 333), 0.18), ((375, 500), 0.12), ((500, 400), 0.06), ((500, 500), 0.05),
    ((333, 500), 0.05), ((400, 300), 0.04), ((800, 600), 0.05), ((1024, 768), 0.03), ((1600, 1200), 0.02),
)
GREY_SHARE = 0.02
QUALITY = 90
NOISE = 12.0  # standard deviation of the added noise, in 8-bit levels (brings the mean file to ~100 KB)


@dataclass(frozen=True)
class Item:
    """One generated image: its class folder, its ImageNet-style file stem and its JPEG bytes."""

    wnid: str
    stem: str
    jpeg: bytes


def make_items(n: int, *, classes: int, seed: int = 0) -> list[Item]:
    """``n`` JPEGs over ``classes`` class folders (round robin), each a random crop of a bundled photo.

    Each is cropped at the aspect of a size drawn from :data:`SIZES`, resized to that size (bicubic), randomly
    flipped, given Gaussian noise of :data:`NOISE` levels and encoded at quality :data:`QUALITY` (greyscale with
    probability :data:`GREY_SHARE`). Deterministic in ``seed``.
    """
    rng = np.random.default_rng(seed)
    photos = [np.asarray(load_image(p)) for p in BundledPhotos(image_size=8).paths]  # (H, W, 3) uint8 each
    sizes, weights = zip(*SIZES)
    p = np.asarray(weights) / sum(weights)
    side = max(max(wh) for wh, _ in SIZES)
    noise = np.clip(rng.normal(0.0, NOISE, (2 * side, 2 * side, 3)), -127, 127).astype(np.int16)  # windows of it
    items = []
    for i in range(n):
        photo = photos[rng.integers(len(photos))]
        w, h = sizes[rng.choice(len(sizes), p=p)]
        ph, pw = photo.shape[:2]
        scale = min(pw / w, ph / h) * rng.uniform(0.6, 1.0)
        cw, ch = max(1, int(w * scale)), max(1, int(h * scale))
        x, y = rng.integers(0, pw - cw + 1), rng.integers(0, ph - ch + 1)
        crop = Image.fromarray(photo[y:y + ch, x:x + cw]).resize((w, h), Image.Resampling.BICUBIC)
        pixels = np.asarray(crop, dtype=np.int16)
        if rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        ny, nx = rng.integers(0, side, 2)
        pixels = np.clip(pixels + noise[ny:ny + h, nx:nx + w], 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        if rng.random() < GREY_SHARE:
            image = image.convert("L")
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=QUALITY)
        wnid = f"n{1440764 + i % classes:08d}"
        items.append(Item(wnid=wnid, stem=f"{wnid}_{i}", jpeg=buf.getvalue()))
    return items


def write_folders(items: list[Item], root: Path) -> Path:
    """Write ``root/<wnid>/<stem>.JPEG`` for every item; returns ``root``."""
    for item in items:
        (root / item.wnid).mkdir(parents=True, exist_ok=True)
        (root / item.wnid / f"{item.stem}.JPEG").write_bytes(item.jpeg)
    return root


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write_shards(items: list[Item], root: Path, *, per_shard: int) -> Path:
    """Write img2dataset shards: ``root/NNNNN.tar`` with ``per_shard`` samples each, keys ``SSSSSIIII`` (shard
    number, then the index in the shard, 9 digits as img2dataset writes them), a ``.txt`` caption and a ``.json``
    of metadata beside each ``.jpg``; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for shard, start in enumerate(range(0, len(items), per_shard)):
        with tarfile.open(root / f"{shard:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for k, item in enumerate(items[start:start + per_shard]):
                key = f"{shard:05d}{k:04d}"
                width, height = Image.open(io.BytesIO(item.jpeg)).size
                meta = {"url": f"https://example.invalid/{item.stem}.jpg", "key": key, "status": "success",
                        "caption": f"a photo of {item.wnid}", "width": width, "height": height,
                        "original_width": width, "original_height": height, "exif": "{}", "sha256": None}
                _add(tar, f"{key}.jpg", item.jpeg)
                _add(tar, f"{key}.txt", meta["caption"].encode())
                _add(tar, f"{key}.json", json.dumps(meta).encode())
    return root


def prepare(root: Path, *, images: int, classes: int, per_shard: int, seed: int = 0) -> dict[str, float]:
    """Write the set under ``root`` (``imagenet/`` and ``shards/``) unless a previous call with the same arguments
    did; returns its statistics (``images``, ``mean_kb``, ``mean_megapixels``), also kept in ``root/set.json``."""
    spec = {"images": images, "classes": classes, "per_shard": per_shard, "seed": seed, "quality": QUALITY,
            "noise": NOISE}
    marker = root / "set.json"
    if marker.is_file():
        kept = json.loads(marker.read_text())
        if kept.get("spec") == spec:
            return kept["stats"]
        raise FileExistsError(f"{root}: holds a set made with other arguments ({kept.get('spec')}); use another "
                              "folder")
    items = make_items(images, classes=classes, seed=seed)
    write_folders(items, root / "imagenet")
    write_shards(items, root / "shards", per_shard=per_shard)
    pixels = [np.prod(Image.open(io.BytesIO(i.jpeg)).size) for i in items]
    stats = {"images": images, "mean_kb": sum(len(i.jpeg) for i in items) / images / 1000,
             "mean_megapixels": float(np.mean(pixels)) / 1e6}
    write_json(marker, {"spec": spec, "stats": stats})
    return stats
