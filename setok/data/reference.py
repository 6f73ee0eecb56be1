"""Write a dataset's images as PNG files, e.g. the reference folder of rFID."""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from setok.data.sample import Sample, check_unique_ids, collate
from setok.io import DataError, atomic_path

_SAFE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")


def check_file_id(sample_id: str) -> str:
    """Return ``sample_id`` if it can be used as a file name as it is.

    Args:
        sample_id: A sample id.

    Returns:
        ``sample_id`` unchanged.

    Raises:
        DataError: The id is empty, too long, or has characters other than letters, digits, ``.``, ``_``, ``-``
            (or starts with ``.`` / ``-``).
    """
    if not isinstance(sample_id, str) or not _SAFE_ID.fullmatch(sample_id):
        raise DataError(f"sample id {sample_id!r} is not a safe file name (letters, digits, '.', '_', '-'; "
                        "not starting with '.' or '-'; at most 200 characters)")
    return sample_id


def _check_stale(out_dir: Path, ids: Iterable[str]) -> None:
    stale = sorted({p.stem for p in out_dir.glob("*.png")} - set(ids))
    if stale:
        raise DataError(f"{out_dir}: holds {len(stale)} PNG file(s) of images not in the dataset "
                        f"(first: {stale[0]}.png); use an empty folder")


def write_reference_images(
    dataset: Dataset[Sample],
    out_dir: str | Path,
    *,
    size: int,
    batch_size: int = 32,
    num_workers: int = 0,
) -> list[Path]:
    """Write every sample's image, resized to ``size x size``, as ``out_dir/<id>.png``.

    Files are written atomically one by one, so an interrupted run leaves only complete PNGs. Images already at
    ``size`` are written as they are; others are resized with antialiased bicubic interpolation.

    Args:
        dataset: Any dataset of this package (or a :class:`~setok.data.concat.LabelledConcat`).
        out_dir: Destination folder (created if needed). PNGs of other ids in it are an error.
        size: Side of the written images.
        batch_size: Images decoded per batch.
        num_workers: DataLoader worker processes decoding images.

    Returns:
        The written paths, in dataset order.

    Raises:
        DataError: An id is not a safe file name or occurs twice, ``out_dir`` holds PNGs of other images, or an
            image cannot be read.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    known_ids = getattr(dataset, "ids", None)
    if known_ids is not None:
        for i in known_ids:
            check_file_id(i)
        check_unique_ids(known_ids, str(out_dir))
        _check_stale(out_dir, known_ids)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate)
    written: list[Path] = []
    seen: set[str] = set()
    for batch in loader:
        images = batch["image"]
        if tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
        pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        for sample_id, array in zip(batch["id"], pixels, strict=True):
            check_file_id(sample_id)
            if sample_id in seen:
                raise DataError(f"{out_dir}: two samples share the id {sample_id!r}")
            seen.add(sample_id)
            path = out_dir / f"{sample_id}.png"
            with atomic_path(path) as tmp:
                Image.fromarray(array).save(tmp, format="PNG")
            written.append(path)
    _check_stale(out_dir, seen)
    return written
