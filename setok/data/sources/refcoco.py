"""RefCOCO / RefCOCO+ / RefCOCOg release folder (``refs(<split_by>).p`` + ``instances.json``): one segmentation
sample per sentence of every ref of the split, the target being the ref's object mask (as LISA reads it).

The REFER release ships refcoco/ with ``refs(google).p`` and ``refs(unc).p``, refcoco+/ with ``refs(unc).p``,
refcocog/ with ``refs(google).p`` and ``refs(umd).p``; ``split_by`` picks one (LISA: unc, unc, umd). Without it the
folder must hold exactly one, so a folder with two never silently gives the alphabetically first."""
from __future__ import annotations

from pathlib import Path

from setok.data.multimodal import MultimodalSample, RegionMask
from setok.data.sources._common import check_images, require
from setok.data.sources.coco import segment_sample
from setok.io import DataError, read_json, read_refs_pickle


def refs_file(folder: Path, split_by: str | None) -> Path:
    """``refs(<split_by>).p`` of ``folder``; with no ``split_by``, its only refs file."""
    if split_by is not None:
        return require(folder / f"refs({split_by}).p", f"refs({split_by}).p of the REFER release")
    found = sorted(folder.glob("refs(*).p"))
    if not found:
        raise DataError(f"{folder}: no refs(<split_by>).p file")
    if len(found) > 1:
        raise DataError(f"{folder}: holds {', '.join(f.name for f in found)}; set the source's split_by to pick one")
    return found[0]


def read_refcoco(folder: str | Path, root: str | Path, *, split: str,
                 split_by: str | None = None) -> list[MultimodalSample]:
    folder = require(folder, "RefCOCO release folder")
    refs_files = [refs_file(folder, split_by)]
    refs = read_refs_pickle(refs_files[0])  # a downloaded pickle: built-in types only, nothing that runs code
    inst = read_json(require(folder / "instances.json", "instances.json"))
    images = {im["id"]: im for im in inst["images"]}
    anns = {a["id"]: a for a in inst["annotations"]}
    out = []
    for ref in refs:
        if ref["split"] != split:
            continue
        a, im = anns[ref["ann_id"]], images[ref["image_id"]]
        region = RegionMask(a["segmentation"], int(im["height"]), int(im["width"]))
        for sent in ref["sentences"]:
            out.append(segment_sample(str(sent["sent_id"]), Path(root) / im["file_name"], sent["sent"], region))
    if not out:
        raise DataError(f"{refs_files[0]}: no ref in split {split!r}")
    check_images(sorted({s.images[0].path for s in out}), refs_files[0])
    return out
