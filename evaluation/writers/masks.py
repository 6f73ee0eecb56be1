"""Writer of referring-segmentation predictions: binary masks as COCO RLE (RefCOCO/+/g, ReasonSeg).

Encoding is pycocotools' ``mask.encode`` (via :func:`evaluation.readers.segmentation.encode`), the format LISA-style
evaluations and the ``refcoco`` scorer read: ``{"size": [h, w], "counts": "<compressed RLE>"}`` with ``counts`` as
``str`` (pycocotools returns ``bytes``, which JSON cannot hold).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.readers import preview
from evaluation.readers.segmentation import encode, read_mask_list
from evaluation.writers._common import PathLike, align
from setok.io import DataError, write_json


def reference_sizes(
    annotations: PathLike, *, benchmark: str = "refcoco", split: str | None = None, split_by: str | None = None
) -> dict[Any, tuple[int, int]]:
    """``sample id -> (h, w)`` of the reference masks, read as the named scorer reads them.

    Args:
        annotations: A reference mask list, a RefCOCO release folder or a ReasonSeg split folder.
        benchmark: ``refcoco``, ``refcoco+``, ``refcocog`` or ``reasonseg`` (decides how a folder is read and its
            default ``split`` / ``split_by``).
        split: Split of a release folder (default: the benchmark's).
        split_by: ``refs(<split_by>).p`` of a release folder (default: the benchmark's).
    """
    from evaluation.registry import get

    annotations = Path(annotations)
    if annotations.is_dir():
        bench = get(benchmark)
        if not hasattr(bench, "reference_rows"):
            raise DataError(f"{annotations}: {benchmark} is not a segmentation benchmark")
        rows = bench.reference_rows(annotations, split or bench.default_split, split_by or bench.default_split_by)
        return {r["id"]: tuple(r["segmentation"]["size"]) for r in rows}
    return {i: tuple(r["segmentation"]["size"]) for i, r in read_mask_list(annotations, allow_ignore=True).items()}


def _binary(mask: Any) -> np.ndarray | None:
    """The mask as a 2-D bool array, or ``None`` if it is not 2-D with values in {0, 1} (or bool)."""
    a = np.asarray(mask)
    if a.ndim != 2 or a.dtype == object:
        return None
    if a.dtype != bool and not np.isin(a, (0, 1)).all():
        return None
    return a.astype(bool)


def write_masks(
    masks: Mapping[Any, Any],
    annotations: PathLike,
    out: PathLike,
    *,
    benchmark: str = "refcoco",
    split: str | None = None,
    split_by: str | None = None,
) -> Path:
    """``[{"id", "segmentation": COCO RLE}]``, one binary mask per reference sample, at the reference's size.

    Args:
        masks: ``sample id -> (h, w)`` binary mask (bool, or 0/1 integers or floats; probabilities are rejected:
            threshold them first). RefCOCO ids are sentence ids (``sent_id``), ReasonSeg ids image stems.
        annotations: The references the scorer will read (mask list, RefCOCO release folder, ReasonSeg folder).
        out: Output JSON path.
        benchmark: Scorer name, see :func:`reference_sizes`.
        split: Split of a release folder.
        split_by: ``refs(<split_by>).p`` of a release folder.

    Returns:
        ``out``.

    Raises:
        DataError: Missing or unknown ids, masks that are not 2-D binary, or masks of another size than their
            reference (named).
    """
    sizes = reference_sizes(annotations, benchmark=benchmark, split=split, split_by=split_by)
    where = f"{out} (references {annotations})"
    pairs = align(masks, list(sizes), where)
    binary = [(i, _binary(m)) for i, m in pairs]
    bad = [i for i, b in binary if b is None]
    if bad:
        raise DataError(f"{where}: masks are not 2-D binary (bool or 0/1) arrays for ids {preview(bad)}")
    wrong = [f"{i!r} {b.shape[0]}x{b.shape[1]} vs {sizes[i][0]}x{sizes[i][1]}"
             for i, b in binary if b.shape != sizes[i]]
    if wrong:
        raise DataError(f"{where}: {len(wrong)} masks differ in size from their reference: {preview(wrong)}")
    write_json(out, [{"id": i, "segmentation": encode(b)} for i, b in binary])
    return Path(out)
