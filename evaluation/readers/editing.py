"""Readers for image-editing benchmarks (MagicBrush, EVR, MA5K): paired image folders and target captions.

Layout (DESIGN section 6): ``--annotations`` is a folder of target images, ``--predictions`` a folder of generated
images with the same relative paths (sub-folders allowed, e.g. MagicBrush's ``<session>/<session>-output1.png``).
Captions for CLIP-T are a JSON object, either flat ``{"<file name or relative path>": "caption"}`` or MagicBrush's
official ``global_descriptions.json``, ``{"<session>": {"<session>-output1.png": "caption", ...}}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from evaluation.readers import preview
from setok.io import DataError, load_image, read_json

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
RESIZE_FILTER = Image.Resampling.BICUBIC


@dataclass(frozen=True)
class EditPair:
    """One generated image and its target.

    Attributes:
        id: Relative path of both files inside their folders, with ``/`` separators (``"139/139-output1.png"``).
        generated: Path of the generated image.
        target: Path of the target (ground-truth) image.
    """

    id: str
    generated: Path
    target: Path


@dataclass(frozen=True)
class LoadedPair:
    """The images of one pair, as the MagicBrush script uses them.

    Attributes:
        generated: The generated image as read (RGB): CLIP-I, DINO and CLIP-T embed it at its own size.
        target: The target image (RGB).
        generated_resized: ``(H, W, 3)`` uint8 pixels of the generated image resized to the target's size (L1, L2,
            LPIPS).
        target_pixels: ``(H, W, 3)`` uint8 pixels of the target.
        resized: Whether the generated image had another size than the target.
    """

    generated: Image.Image
    target: Image.Image
    generated_resized: np.ndarray
    target_pixels: np.ndarray
    resized: bool


def list_image_files(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Image files under ``folder`` (recursive), keyed by relative posix path, sorted; hidden files and folders skipped.

    Raises:
        DataError: ``folder`` is not a directory or holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    files: dict[str, Path] = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
                path = Path(root) / name
                files[PurePosixPath(path.relative_to(folder)).as_posix()] = path
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    return dict(sorted(files.items()))


def read_edit_pairs(predictions: str | os.PathLike[str], references: str | os.PathLike[str]) -> list[EditPair]:
    """Pair every target image with the generated image of the same relative path.

    Args:
        predictions: Folder of generated images.
        references: Folder of target images.

    Returns:
        Pairs sorted by id.

    Raises:
        DataError: A folder is missing or empty, targets lack a generated image, or generated images have no target
            (both named, first few shown).
    """
    predictions, references = Path(predictions), Path(references)
    targets = list_image_files(references)
    generated = list_image_files(predictions)
    missing = [k for k in targets if k not in generated]
    if missing:
        raise DataError(
            f"{predictions}: missing generated images for {len(missing)} of {len(targets)} targets in {references}: "
            f"{preview(missing)}"
        )
    extra = [k for k in generated if k not in targets]
    if extra:
        raise DataError(
            f"{predictions}: {len(extra)} generated images have no target in {references}: {preview(extra)}"
        )
    return [EditPair(id=k, generated=generated[k], target=targets[k]) for k in targets]


def load_pair(pair: EditPair) -> LoadedPair:
    """Read a pair and resize the generated image to the target's size.

    MagicBrush's ``eval_distance`` calls ``gen_img.resize(gt_img.size)`` on the RGB image; Pillow's default filter
    for RGB images is bicubic (since Pillow 7), written here explicitly. Same-size images are left untouched.

    Raises:
        DataError: An image is missing or unreadable (names the file).
    """
    gen = load_image(pair.generated)
    tgt = load_image(pair.target)
    resized = gen.size != tgt.size
    gen_resized = gen.resize(tgt.size, RESIZE_FILTER) if resized else gen
    return LoadedPair(
        generated=gen,
        target=tgt,
        generated_resized=np.array(gen_resized, dtype=np.uint8),
        target_pixels=np.array(tgt, dtype=np.uint8),
        resized=resized,
    )


def _flatten_captions(path: Path, raw: object) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``(by key, by file name)``: nested groups become ``"<group>/<name>"`` keys; file names map to every key."""
    if not isinstance(raw, dict) or not raw:
        raise DataError(f"{path}: expected a non-empty JSON object of captions")
    by_key: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            by_key[key] = value
        elif isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            by_key.update({f"{key}/{name}": text for name, text in value.items()})
        else:
            raise DataError(f"{path}: caption for {key!r} is neither a string nor an object of strings")
    by_name: dict[str, list[str]] = {}
    for key in by_key:
        by_name.setdefault(PurePosixPath(key).name, []).append(key)
    return by_key, by_name


def read_captions(path: str | os.PathLike[str], ids: list[str]) -> dict[str, str]:
    """Target captions for CLIP-T, one per pair id.

    An id is looked up by its relative path (``"139/139-output1.png"``, which also matches the official nested
    ``global_descriptions.json`` as ``caption[<folder>][<file name>]`` like ``eval_clip_t`` does), then by its bare file
    name when that name occurs once in the file.

    Args:
        path: Captions JSON (flat or MagicBrush's nested ``global_descriptions.json``).
        ids: Pair ids (relative paths).

    Returns:
        Id to caption.

    Raises:
        DataError: Malformed file, or ids without a caption or with an ambiguous file name (named).
    """
    path = Path(path)
    by_key, by_name = _flatten_captions(path, read_json(path))
    out: dict[str, str] = {}
    missing, ambiguous = [], []
    for i in ids:
        if i in by_key:
            out[i] = by_key[i]
            continue
        keys = by_name.get(PurePosixPath(i).name, [])
        if len(keys) == 1:
            out[i] = by_key[keys[0]]
        elif keys:
            ambiguous.append(i)
        else:
            missing.append(i)
    if missing:
        raise DataError(f"{path}: no caption for {len(missing)} of {len(ids)} targets: {preview(missing)}")
    if ambiguous:
        raise DataError(f"{path}: file name matches several captions for {preview(ambiguous)}; key them by path")
    return out
