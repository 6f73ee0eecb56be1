"""Readers for text-to-image FID benchmarks: folders of generated images and the MJHQ-30K release layout.

MJHQ-30K (``playgroundai/MJHQ-30K`` on the Hugging Face hub):

* ``meta_data.json``: ``{"<image_id>": {"category": "people", "prompt": "...", ...}, ...}`` (30,000 ids, 10 categories
  of 3,000: animals, art, fashion, food, indoor, landscape, logo, people, plants, vehicles);
* reference images (``mjhq30k_imgs.zip`` unpacked): ``<root>/<category>/<image_id>.jpg``;
* generated images (ours to produce): one flat folder, ``<image_id>.png`` or ``.jpg`` (any of
  :data:`evaluation.features.images.IMAGE_EXTENSIONS`), one per id of the metadata.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from evaluation.features.images import IMAGE_EXTENSIONS
from evaluation.readers import preview
from setok.io import DataError, read_json

MJHQ_CATEGORIES = ("animals", "art", "fashion", "food", "indoor", "landscape", "logo", "people", "plants", "vehicles")
MJHQ_META = "meta_data.json"
MJHQ_IMAGES_DIR = "mjhq30k_imgs"


@dataclass(frozen=True)
class MjhqSet:
    """Generated and reference images of MJHQ-30K, aligned by id (metadata order).

    Attributes:
        ids: Image ids.
        categories: Category of each id.
        generated: Generated image file of each id.
        references: Reference image file of each id.
    """

    ids: list[str]
    categories: list[str]
    generated: list[Path]
    references: list[Path]


def read_mjhq_meta(path: str | os.PathLike[str]) -> dict[str, str]:
    """``image_id -> category`` from ``meta_data.json`` (a folder holding it is accepted too), in file order.

    Raises:
        DataError: Missing file, not an object of objects, or an entry without a string ``category``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MJHQ_META
    meta = read_json(path)
    if not isinstance(meta, dict) or not meta:
        raise DataError(f"{path}: expected a non-empty object {{image_id: {{'category', 'prompt'}}}}")
    bad = [k for k, v in meta.items() if not (isinstance(v, dict) and isinstance(v.get("category"), str))]
    if bad:
        raise DataError(f"{path}: {len(bad)} entries lack a string 'category': {preview(bad)}")
    return {k: v["category"] for k, v in meta.items()}


def mjhq_reference_root(meta_path: str | os.PathLike[str], given: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``<category>/<image_id>.jpg``: ``given``, else beside the metadata (itself or
    ``mjhq30k_imgs/``), whichever holds category folders.

    Raises:
        DataError: None of the candidates is a folder with category subfolders.
    """
    if given is not None:
        root = Path(given)
        if not root.is_dir():
            raise DataError(f"{root}: MJHQ reference image folder not found")
        return root
    base = Path(meta_path) if Path(meta_path).is_dir() else Path(meta_path).parent
    for root in (base, base / MJHQ_IMAGES_DIR):
        if any((root / c).is_dir() for c in MJHQ_CATEGORIES):
            return root
    raise DataError(f"{base}: no MJHQ category folders (e.g. people/) here or in {MJHQ_IMAGES_DIR}/")


def images_by_stem(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """``stem -> file`` of the images directly in ``folder``.

    Raises:
        DataError: Not a folder, no images, or two images with the same stem (e.g. ``a.png`` and ``a.jpg``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_EXTENSIONS)})")
    dups = [s for s, c in Counter(p.stem for p in files).items() if c > 1]
    if dups:
        raise DataError(f"{folder}: {len(dups)} ids have more than one image file: {preview(dups)}")
    return {p.stem: p for p in files}


def read_mjhq(
    generated: str | os.PathLike[str],
    meta_path: str | os.PathLike[str],
    reference_root: str | os.PathLike[str] | None = None,
    *,
    need_references: bool = True,
) -> MjhqSet:
    """Align generated images with MJHQ-30K ids and their reference images.

    Args:
        generated: Flat folder of ``<image_id>.<ext>``.
        meta_path: ``meta_data.json`` (or its folder).
        reference_root: Folder of ``<category>/<image_id>.jpg`` (default: see :func:`mjhq_reference_root`).
        need_references: ``False`` when reference features come from elsewhere (``references`` is then empty).

    Returns:
        The aligned set, in metadata order.

    Raises:
        DataError: Generated images missing for some ids or present for unknown ids, reference images missing, or a
            category with fewer than 2 images (FID needs a covariance).
    """
    generated = Path(generated)
    meta = read_mjhq_meta(meta_path)
    files = images_by_stem(generated)
    missing = [i for i in meta if i not in files]
    if missing:
        raise DataError(
            f"{generated}: missing generated images for {len(missing)} of {len(meta)} ids: {preview(missing)}"
        )
    extra = [s for s in files if s not in meta]
    if extra:
        raise DataError(f"{generated}: {len(extra)} images are not MJHQ ids of {meta_path}: {preview(extra)}")
    small = [c for c, n in Counter(meta.values()).items() if n < 2]
    if small:
        raise DataError(f"{meta_path}: categories with fewer than 2 images (no FID possible): {preview(small)}")
    refs: list[Path] = []
    if need_references:
        root = mjhq_reference_root(meta_path, reference_root)
        refs = [root / c / f"{i}.jpg" for i, c in meta.items()]
        absent = [str(p.relative_to(root)) for p in refs if not p.is_file()]
        if absent:
            raise DataError(f"{root}: {len(absent)} reference images not found: {preview(absent)}")
    return MjhqSet(
        ids=list(meta), categories=list(meta.values()), generated=[files[i] for i in meta], references=refs
    )
