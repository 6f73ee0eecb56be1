"""Writers of image outputs: text-to-image (GenAI-Bench, MJHQ-30K, COCO-30K FID) and image editing (MagicBrush, EVR,
MA5K) folders, named as their scorers pair them.

* Text-to-image: one flat folder ``<id>.png`` (GenAI-Bench prompt ids ``00000``, MJHQ image ids; COCO FID takes any
  names). PNG is lossless, so the scorer sees exactly the generated pixels.
* Editing: the target folder's relative paths, extension included (``139/139-output1.png``), since the editing
  scorer pairs generated and target images by identical relative path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from evaluation.readers import preview
from evaluation.readers.editing import list_image_files
from evaluation.writers._common import PathLike, align, atomic_dir, check_names
from setok.io import DataError, array_to_image

LOSSY = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def _as_images(pairs: list[tuple[Any, Any]], where: str) -> list[tuple[Any, Image.Image]]:
    """PIL images (RGB) from PIL images or ``(H, W[, 3|4])`` arrays; anything else is an error naming the ids."""
    out, bad = [], []
    for i, img in pairs:
        if isinstance(img, Image.Image):
            out.append((i, img.convert("RGB")))
        elif isinstance(img, np.ndarray) and (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (3, 4))):
            out.append((i, array_to_image(img)))
        else:
            bad.append(i)
    if bad:
        raise DataError(f"{where}: not a PIL image or (H, W[, 3]) array for ids {preview(bad)}")
    return out


def _save(img: Image.Image, path: Path) -> None:
    """Save by extension: PNG losslessly; a JPEG/WebP target name at maximum quality (4:4:4 for JPEG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = LOSSY.get(path.suffix.lower())
    if fmt == "JPEG":
        img.save(path, format=fmt, quality=100, subsampling=0)
    elif fmt == "WEBP":
        img.save(path, format=fmt, lossless=True)
    else:
        img.save(path, format=path.suffix.lstrip(".").upper() or "PNG")


def write_generated_images(
    images: Mapping[str, Any], out: PathLike, *, ids: Iterable[str] | None = None, overwrite: bool = False
) -> Path:
    """Text-to-image outputs as a flat folder of ``<id>.png``.

    Args:
        images: ``id -> PIL image`` (or an ``(H, W[, 3])`` uint8 / [0, 1] float array).
        out: Output folder.
        ids: Ids every one of which needs an image (e.g. :func:`genai_bench_ids`, :func:`mjhq_ids`); ``None``
            accepts any ids (COCO-30K / plain FID folders, where names do not matter).
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        ``out``.

    Raises:
        DataError: Missing or unknown ids, ids unusable as flat file names, non-image values.
    """
    where = f"{out}"
    pairs = align(images, list(ids), where) if ids is not None else list(images.items())
    if not pairs:
        raise DataError(f"{where}: no images to write")
    names = [str(i) for i, _ in pairs]
    check_names(names, where)
    nested = [n for n in names if "/" in n]
    if nested:
        raise DataError(f"{where}: text-to-image ids must be flat file names, got {preview(nested)}")
    loaded = _as_images(pairs, where)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for i, img in loaded:
            _save(img, tmp / f"{i}.png")
    return Path(out)


def write_edited_images(
    images: Mapping[str, Any], targets: PathLike, out: PathLike, *, overwrite: bool = False
) -> Path:
    """Image-editing outputs under the target folder's relative paths (MagicBrush, EVR, MA5K scorers).

    Args:
        images: ``relative target path -> edited image``; the key may omit the extension
            (``"139/139-output1"`` for ``139/139-output1.png``).
        targets: The folder of target images the scorer reads as ``--annotations``.
        out: Output folder (``--predictions``).
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        ``out``. Each image is saved under its target's name and format: PNG losslessly; a ``.jpg`` target name
        gets JPEG quality 100 with 4:4:4 chroma (still lossy: prefer PNG targets).

    Raises:
        DataError: Targets without an edited image, images without a target, non-image values.
    """
    targets = Path(targets)
    rel = list(list_image_files(targets))
    rel_set = set(rel)
    stems = {str(PurePosixPath(r).with_suffix("")): r for r in rel}
    if len(stems) != len(rel):
        raise DataError(f"{targets}: two targets differ only in extension; key edited images by full path")
    keyed = {(k if k in rel_set or k not in stems else stems[k]): v for k, v in images.items()}
    if len(keyed) != len(images):
        raise DataError(f"{out} (targets {targets}): an image is given both with and without its extension")
    where = f"{out} (targets {targets})"
    loaded = _as_images(align(keyed, rel, where), where)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for r, img in loaded:
            _save(img, tmp / r)
    return Path(out)


def genai_bench_ids(annotations: PathLike) -> list[str]:
    """Prompt ids (``"00000"``, ...) of the official ``genai_image.json``, the names GenAI-Bench images need."""
    from evaluation.suite.genai_bench import read_prompts

    return list(read_prompts(Path(annotations)))


def mjhq_ids(meta: PathLike) -> list[str]:
    """Image ids of MJHQ-30K's ``meta_data.json`` (or its folder), the names MJHQ generated images need."""
    from evaluation.readers.generation import read_mjhq_meta

    return list(read_mjhq_meta(meta))
