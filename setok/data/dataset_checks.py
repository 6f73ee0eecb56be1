"""Layout checks of the training and evaluation datasets, one per ``datasets.<name>.kind``.

ImageNet: every class folder ``<wnid>/`` holds an image, the first and last are recorded; COCO / LLaVA: the first
images the annotations name exist under the image root; webdataset: ``*.tar`` shards, the first readable with an
image and its caption; Open Images, InstructPix2Pix, MagicBrush, RefCOCO, Visual Genome, text corpora, Alpaca and
OpenOrca: their official files and a sample of their images. The REFER release and MagicBrush session checks are
shared with the benchmarks that read the same files.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from setok.config import ConfigError
from setok.data.checksums import finish
from setok.data.imagenet import read_synsets
from setok.data.layout import IMAGE_SUFFIXES, CheckReport, Layout, first_entry, first_image, first_line, spread
from setok.io import read_refs_pickle

log = logging.getLogger("setok.data.checks")

IMAGENET = "class folders <wnid>/*.JPEG under root (e.g. n01440764/n01440764_10026.JPEG)"
SYNSETS = "LOC_synset_mapping.txt, lines 'n01440764 tench, Tinca tinca'"
COCO_CAPTIONS = "COCO captions JSON {'images': [{'id', 'file_name'}], 'annotations': [{'image_id', 'caption'}]}"
COCO_INSTANCES = ("COCO instances JSON {'images': [{'id', 'file_name', 'height', 'width'}], 'annotations': "
                  "[{'image_id', 'category_id', 'segmentation'}], 'categories'}")
LLAVA = "LLaVA JSON list [{'id', 'image', 'conversations': [{'from', 'value'}]}]"
SHARDS = "img2dataset webdataset shards 00000.tar, 00001.tar, ... holding <key>.jpg + <key>.txt"
REFER = "REFER release folder with refs(<split_by>).p and instances.json"


def check_imagenet(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Every class folder holds an image (stops at the first per folder); class folders are in the synsets file."""
    root = lay.folder(lay.path(spec, "root"), IMAGENET)
    wnids = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not wnids:
        raise lay.error(root, "has no class folders", IMAGENET + "; the official val images come flat: sort them "
                        "into <wnid>/ folders")
    for i, wnid in enumerate(wnids):
        image = first_image(root / wnid)
        if image is None:
            raise lay.error(root / wnid, "has no images", IMAGENET, place=root)
        if i in (0, len(wnids) - 1):
            lay.seen(image)
    synsets = lay.optional(spec, "synsets")
    if synsets is not None:
        lay.file(synsets, SYNSETS)
        with lay.reading(synsets, SYNSETS):
            names = read_synsets(synsets)
        missing = [w for w in wnids if w not in names]
        if missing:
            raise lay.error(synsets, f"has no entry for class folder {missing[0]} of {root} ({len(missing)} "
                            "missing)", SYNSETS)
    log.info("%s: %d class folders", root, len(wnids))


def first_jpg(lay: Layout, folder: Path, expected: str) -> Path:
    """The first ``.jpg`` in ``folder`` (recorded as checked); a folder without one is an error."""
    image = first_entry(folder, lambda e: e.name.lower().endswith(".jpg"))
    if image is None:
        raise lay.error(folder, "has no .jpg images", expected)
    lay.seen(image)
    return image


def check_openimages(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Images ``<ImageID>.jpg`` under root; the labels CSV header names ImageID and LabelName; classes are pairs."""
    expected = "Open Images train images <ImageID>.jpg"
    first_jpg(lay, lay.folder(lay.path(spec, "root"), expected), expected)
    labels_expected = "labels CSV with header ImageID,Source,LabelName,Confidence,..."
    labels = lay.file(lay.path(spec, "labels"), labels_expected)
    header = next(csv.reader([first_line(lay, labels, labels_expected)]))
    missing = [c for c in ("ImageID", "LabelName") if c not in header]
    if missing:
        raise lay.error(labels, f"malformed (header lacks {missing[0]!r})", labels_expected)
    classes_expected = "class descriptions CSV rows 'LabelName,DisplayName' (e.g. /m/011k07,Tortoise)"
    classes = lay.file(lay.path(spec, "classes"), classes_expected)
    if len(next(csv.reader([first_line(lay, classes, classes_expected)]))) != 2:
        raise lay.error(classes, "malformed (first row is not 'LabelName,DisplayName')", classes_expected)


def check_webdataset(lay: Layout, spec: Mapping[str, Any]) -> None:
    """``*.tar`` shards exist; the first one's first members hold an image and its caption."""
    root = lay.folder(lay.path(spec, "root"), SHARDS)
    shards = sorted(e.name for e in os.scandir(root) if e.name.endswith(".tar") and e.is_file())
    if not shards:
        raise lay.error(root, "has no .tar shards", SHARDS)
    first = lay.seen(root / shards[0])
    try:
        with tarfile.open(first, mode="r:") as tar:
            names = [m.name for _, m in zip(range(16), tar) if m.isfile()]
    except (tarfile.TarError, EOFError, OSError) as e:
        raise lay.error(first, f"malformed (not a readable tar: {e})", SHARDS) from None
    images = [os.path.splitext(n)[0] for n in names if n.lower().endswith(IMAGE_SUFFIXES)]
    if not images:
        raise lay.error(first, "malformed (no image among its first members)", SHARDS)
    if f"{images[0]}.txt" not in names:
        raise lay.error(first, f"malformed (image {images[0]} has no {images[0]}.txt caption)", SHARDS)
    log.info("%s: %d shards", root, len(shards))


def parquet_schema(lay: Layout, path: Path, columns: tuple[str, ...], expected: str) -> list[Path]:
    """A parquet file or folder (every ``*.parquet`` below it): each file's schema holds ``columns`` (footers only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        if not files:
            raise lay.error(path, "holds no .parquet files", expected)
        lay.seen(path)
    else:
        files = [lay.file(path, expected)]
    for f in files:
        try:
            names = pq.read_schema(f).names
        except (pa.ArrowInvalid, OSError) as e:
            raise lay.error(f, f"malformed (not parquet: {e.__class__.__name__})", expected) from None
        missing = [c for c in columns if c not in names]
        if missing:
            raise lay.error(f, f"malformed (no column {missing[0]!r})", expected)
    return files


def check_llava(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Every record has ``conversations``; the first image of each image sub-folder exists under root. Parquet
    (a file or folder) is checked by its schema."""
    path = lay.path(spec, "annotations")
    if path.is_dir() or path.suffix == ".parquet":
        parquet_schema(lay, path, ("conversations",), LLAVA + " (or parquet with a 'conversations' column)")
        return
    if path.suffix == ".jsonl":
        line = first_line(lay, lay.file(path, LLAVA), LLAVA)
        try:
            data = [json.loads(line)]
        except json.JSONDecodeError as e:
            raise lay.error(path, f"malformed (line 1 is not JSON: {e.msg})", LLAVA) from None
    else:
        data = lay.json(path, LLAVA, list)
    data = lay.records(path, data, ("conversations",), LLAVA, "records")
    named = list(spread(str(r["image"]) for r in data if isinstance(r.get("image"), str) and r["image"]))
    if not named:
        return  # a text-only table (Magpie, Evol-Instruct): no image root
    root = lay.folder(lay.path(spec, "root"), f"the images {path.name} names, relative to root")
    for rel in named:
        lay.sample(root / rel, f"the images {path.name} names, relative to root", root)


def coco_images(lay: Layout, path: Path, data: Mapping[str, Any], root: Path) -> None:
    """The first and last images a COCO JSON lists exist under ``root``."""
    root = lay.folder(root, f"the images of {path.name} ({{file_name}} under root)")
    for im in (data["images"][0], data["images"][-1]):
        lay.sample(root / str(im["file_name"]), f"the images of {path.name} under root", root)


def check_coco_captions(lay: Layout, spec: Mapping[str, Any]) -> None:
    path = lay.path(spec, "annotations")
    data = lay.json(path, COCO_CAPTIONS, dict)
    lay.keys(path, data, ("images", "annotations"), COCO_CAPTIONS)
    lay.records(path, data["images"], ("id", "file_name"), COCO_CAPTIONS, "images")
    lay.records(path, data["annotations"], ("image_id", "caption"), COCO_CAPTIONS, "annotations")
    coco_images(lay, path, data, lay.path(spec, "root"))


def check_coco_instances(lay: Layout, spec: Mapping[str, Any]) -> None:
    path = lay.path(spec, "annotations")
    data = lay.json(path, COCO_INSTANCES, dict)
    lay.keys(path, data, ("images", "annotations", "categories"), COCO_INSTANCES)
    lay.records(path, data["images"], ("id", "file_name", "height", "width"), COCO_INSTANCES, "images")
    lay.records(path, data["annotations"], ("image_id", "category_id", "segmentation"), COCO_INSTANCES, "annotations")
    coco_images(lay, path, data, lay.path(spec, "root"))


def check_instructpix2pix(lay: Layout, spec: Mapping[str, Any]) -> None:
    """One sample folder (the first found) has ``prompt.json`` with ``edit`` and a ``<seed>_0.jpg``/``_1.jpg`` pair."""
    expected = "sample folders <id>/ with prompt.json ({'edit'}) and <seed>_0.jpg + <seed>_1.jpg"
    root = lay.folder(lay.path(spec, "root"), expected)
    sample = first_entry(root, lambda e: e.is_dir())
    if sample is None:
        raise lay.error(root, "has no sample folders", expected)
    prompt = lay.json(sample / "prompt.json", expected, dict, named=False)
    lay.keys(sample / "prompt.json", prompt, ("edit",), expected)
    before = first_entry(sample, lambda e: e.name.endswith("_0.jpg"))
    if before is None:
        raise lay.error(sample, "has no <seed>_0.jpg", expected, place=root)
    lay.seen(before)
    lay.sample(before.with_name(before.name.removesuffix("_0.jpg") + "_1.jpg"), expected, root)


MAGICBRUSH = "edit_sessions.json {'<session>': [{'input', 'output', 'instruction'}, ...]} and images/<session>/"


def magicbrush_sessions(lay: Layout, path: Path, images: Path) -> None:
    """Every turn of ``edit_sessions.json`` has input/output/instruction; the first turn's images exist."""
    sessions = lay.json(path, MAGICBRUSH, dict)
    for sid, turns in sessions.items():
        lay.records(path, turns, ("input", "output", "instruction"), MAGICBRUSH, f"session {sid}")
    images = lay.folder(images, MAGICBRUSH)
    sid, turns = next(iter(sessions.items()))
    for key in ("input", "output"):
        lay.sample(images / sid / str(turns[0][key]), MAGICBRUSH, images)


def check_magicbrush(lay: Layout, spec: Mapping[str, Any]) -> None:
    root = lay.folder(lay.path(spec, "root"), "a MagicBrush split folder: " + MAGICBRUSH)
    magicbrush_sessions(lay, root / "edit_sessions.json", root / "images")


def refer_release(lay: Layout, folder: Path, images: Path, split: str, split_by: str | None = None) -> None:
    """``refs(<split_by>).p`` has refs of ``split``; ``instances.json`` is COCO; the first ref's image exists."""
    folder = lay.folder(folder, REFER)
    refs_files = [folder / f"refs({split_by}).p"] if split_by else sorted(folder.glob("refs(*).p"))
    if not refs_files or not refs_files[0].is_file():
        raise lay.error(folder / f"refs({split_by or '<split_by>'}).p", "missing", REFER, place=folder)
    refs_path = lay.file(refs_files[0], REFER)
    with lay.reading(refs_path, REFER):
        refs = read_refs_pickle(refs_path)
    lay.records(refs_path, refs, ("split", "image_id", "ann_id", "sentences"), REFER, "refs")
    chosen = [r for r in refs if r["split"] == split]
    if not chosen:
        present = ", ".join(sorted({str(r["split"]) for r in refs}))
        raise lay.error(refs_path, f"malformed (no ref in split {split!r}; splits present: {present})", REFER)
    inst_path = folder / "instances.json"
    inst = lay.json(inst_path, REFER, dict)
    lay.keys(inst_path, inst, ("images", "annotations"), REFER)
    by_id = {im.get("id"): im for im in lay.records(inst_path, inst["images"], ("id", "file_name"), REFER, "images")}
    image = by_id.get(chosen[0]["image_id"])
    if image is None:
        raise lay.error(inst_path, f"malformed (no image {chosen[0]['image_id']!r} of a {split} ref)", REFER)
    images = lay.folder(images, "COCO train2014 images")
    lay.sample(images / str(image["file_name"]), "COCO train2014 images", images)


def check_refcoco(lay: Layout, spec: Mapping[str, Any]) -> None:
    """The REFER release of ``split_by`` (unset: the folder's only refs file) and the split's first image."""
    split, split_by = spec.get("split"), spec.get("split_by")
    if not split:
        raise ConfigError(f"datasets.{lay.name}.split: not set; checking a refcoco layout needs it")
    folder = lay.path(spec, "annotations")
    if not split_by and folder.is_dir():
        found = sorted(folder.glob("refs(*).p"))
        if len(found) > 1:
            raise ConfigError(f"datasets.{lay.name}.split_by: not set and {folder} holds "
                              f"{', '.join(f.name for f in found)}; name the one to read (RefCOCO: unc, RefCOCOg: umd)")
    refer_release(lay, folder, lay.path(spec, "root"), str(split), str(split_by) if split_by else None)


VISUAL_GENOME = ("Visual Genome region_descriptions.json [{'id', 'regions': [{'phrase', 'x', 'y', 'width', "
                 "'height'}]}] with image_data.json [{'image_id', 'url', 'width', 'height'}] beside it")
VG_IMAGES = "VG_100K/ (images.zip) and VG_100K_2/ (images2.zip) under root"


def check_visual_genome(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Both JSONs parse with the official fields (first records); the first image of each folder image_data.json
    names exists under root."""
    path = lay.path(spec, "annotations")
    regions = lay.json(path, VISUAL_GENOME, list)
    lay.records(path, regions[:1], ("id", "regions"), VISUAL_GENOME, "records")
    first = next((r["regions"] for r in regions[:16] if isinstance(r, dict) and r.get("regions")), None)
    lay.records(path, first, ("phrase", "x", "y", "width", "height"), VISUAL_GENOME, "the first non-empty regions")
    data_path = path.parent / "image_data.json"
    images = lay.json(data_path, VISUAL_GENOME, list)
    if isinstance(images[0], dict) and "image_id" not in images[0] and "id" in images[0]:
        images = [{**images[0], "image_id": images[0]["id"]}]  # v1.0 names the key id
    lay.records(data_path, images[:1], ("image_id", "url", "width", "height"), VISUAL_GENOME, "images")
    root = lay.folder(lay.path(spec, "root"), VG_IMAGES)
    firsts: dict[str, str] = {}
    for im in images:
        url = str(im.get("url", "")) if isinstance(im, dict) else ""
        folder, _, name = url.rstrip("/").rpartition("/")
        folder = folder.rpartition("/")[2]
        if folder not in ("VG_100K", "VG_100K_2"):
            raise lay.error(data_path, f"malformed (url {url!r} is not under VG_100K/ or VG_100K_2/)", VISUAL_GENOME)
        firsts.setdefault(folder, name)
        if len(firsts) == 2:
            break
    for folder, name in firsts.items():
        lay.sample(root / folder / name, VG_IMAGES, root)


def check_text(lay: Layout, spec: Mapping[str, Any]) -> None:
    """The first line of the corpus is a JSON object with ``text``."""
    expected = "JSON lines {'text': ...} (.jsonl or .jsonl.zst, SlimPajama's layout)"
    path = lay.file(lay.path(spec, "annotations"), expected)
    line = first_line(lay, path, expected)
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise lay.error(path, f"malformed (line 1 is not JSON: {e.msg})", expected) from None
    if not isinstance(row, dict) or "text" not in row:
        raise lay.error(path, "malformed (line 1 lacks 'text')", expected)


ALPACA = "Alpaca JSON list [{'instruction', 'input', 'output'}]"


def check_alpaca(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Every record has ``instruction`` and ``output``."""
    path = lay.path(spec, "annotations")
    lay.records(path, lay.json(path, ALPACA, list), ("instruction", "output"), ALPACA, "records")


OPENORCA = "OpenOrca parquet (1M-GPT4-Augmented.parquet) with columns id, system_prompt, question, response"


def check_openorca(lay: Layout, spec: Mapping[str, Any]) -> None:
    parquet_schema(lay, lay.path(spec, "annotations"), ("question", "response"), OPENORCA)


def check_bundled(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Nothing to download: the photos come with the installed Python packages."""


DATASET_CHECKS: dict[str, Callable[[Layout, Mapping[str, Any]], None]] = {
    "imagenet": check_imagenet, "openimages": check_openimages, "webdataset": check_webdataset,
    "llava": check_llava, "coco_captions": check_coco_captions, "coco_instances": check_coco_instances,
    "instructpix2pix": check_instructpix2pix, "magicbrush": check_magicbrush, "refcoco": check_refcoco,
    "text": check_text, "alpaca": check_alpaca, "openorca": check_openorca, "bundled": check_bundled,
    "visual_genome": check_visual_genome,
}


def check_dataset(name: str, spec: Mapping[str, Any], *, write: bool = False) -> CheckReport:
    """Check one ``datasets.<name>`` entry's files against its kind's official layout.

    Args:
        name: The dataset name (for messages and the record).
        spec: The entry: ``kind`` and its paths (``root``, ``annotations``, ``synsets``, ``labels``, ``classes``, ...).
        write: Write ``SHA256SUMS`` for the named files first (``--write-checksums``).

    Raises:
        ConfigError: Unknown kind, or a path the kind needs is not set.
        DataError: ``dataset <name>: <path> missing (expected ...); download ... and place it at ...``, a malformed
            file, or a file that fails its ``SHA256SUMS``.
    """
    kind = spec.get("kind")
    if kind not in DATASET_CHECKS:
        raise ConfigError(f"datasets.{name}.kind: no layout check for {kind!r} ({', '.join(DATASET_CHECKS)})")
    lay = Layout("datasets", name, str(kind))
    DATASET_CHECKS[kind](lay, spec)
    return finish(lay, write=write)
