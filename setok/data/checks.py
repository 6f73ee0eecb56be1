"""Check that a dataset or benchmark is in place in its official layout (and matches its SHA256SUMS).

``python -m setok.data.checks --config C --dataset NAME --out results/data/checked/NAME.json`` (``--benchmark NAME``
instead of ``--dataset`` for an evaluation benchmark) checks presence and layout cheaply, never
scanning millions of files: the configured folders and files exist, the named annotation files parse and have the
official top-level keys and record fields, and a sample of the structure is there (ImageNet: every class folder
``<wnid>/`` holds an image, the first and last are recorded; COCO / LLaVA / VQA: the first images the annotations
name exist under the image root; webdataset: ``*.tar`` shards, the first readable with an image and its caption).
It writes ``{"dataset", "kind", "checked": [paths], "checksums_verified": n}`` and, on a problem, exits 2 with one line
``error: dataset <name>: <path> missing (expected <what>); download <where from> and place it at <path>``; where each
dataset and benchmark comes from is the table in ``setok/data/layouts.yaml``.

Checksums: this project ships NO checksum lists, because no machine it runs on can download the official files to
compute them. A lab pins what it downloaded with ``--write-checksums``: the check hashes the dataset's named files
(annotation JSONs, CSVs, synset lists, refs pickles, template files; not image folders or tar shards) into a
``SHA256SUMS`` beside each file (``sha256sum`` format ``<hex>  <relative path>``, merged with the entries already
there). Every check verifies each ``SHA256SUMS`` found in a configured folder (the dataset's root) or beside a
configured file (its annotations), every file listed (streamed hashing, a progress bar for large files), and fails
naming the first mismatching file.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import re
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from setok.cli import run
from setok.config import ConfigError, load_config, to_dict
from setok.data.imagenet import IMAGE_EXTENSIONS, read_synsets
from setok.io import DataError, read_jsonl, read_refs_pickle, write_json, write_text

log = logging.getLogger("setok.data.checks")

LAYOUTS = "layouts.yaml"  # where each dataset / benchmark comes from (package data beside this module)
SUMS = "SHA256SUMS"
LARGE = 256 * 2**20  # files at least this big get a progress bar while hashed
CHUNK = 2**20
MAX_SAMPLES = 64  # at most this many sample images (LLaVA: one per image sub-folder)
IMAGE_SUFFIXES = (*IMAGE_EXTENSIONS, ".webp", ".bmp")
# benchmark options that name files (the scorers' --captions, --skills, ... flags)
PATH_OPTIONS = ("captions", "skills", "grader_file", "judge_prompt", "reference_images", "reference_cache")
_SUM_LINE = re.compile(r"\\?([0-9a-fA-F]{64}) [ *](.+)")


# ------------------------------------------------------------------------------------------ evaluation set


@dataclass
class CheckReport:
    """What a layout check looked at.

    Attributes:
        dataset: The dataset (or benchmark) name. kind: Its kind (``benchmark`` for benchmarks).
        checked: Paths found in place, in check order. checksums_verified: Files that matched a ``SHA256SUMS``.
        named: The named files (annotations, CSVs, ...) ``--write-checksums`` pins; not part of :meth:`record`.
    """

    dataset: str
    kind: str
    checked: list[str] = field(default_factory=list)
    checksums_verified: int = 0
    named: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The JSON record written by the CLI."""
        return {"dataset": self.dataset, "kind": self.kind, "checked": self.checked,
                "checksums_verified": self.checksums_verified}


@cache
def sources() -> dict[str, dict[str, str]]:
    """``layouts.yaml``: ``datasets`` / ``kinds`` / ``benchmarks`` -> name -> where the files come from."""
    text = resources.files(__package__).joinpath(LAYOUTS).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def source_of(section: str, name: str, kind: str | None = None) -> str:
    """Download instructions for ``name`` (falling back on its ``kind``, then on a generic hint)."""
    table = sources()
    found = table.get(section, {}).get(name) or (kind and table.get("kinds", {}).get(kind))
    return " ".join(str(found).split()) if found else "the official release"


class Layout:
    """Collects the paths a check looked at and words its one-line errors."""

    def __init__(self, section: str, name: str, kind: str) -> None:
        self.section, self.name, self.kind = section, name, kind
        self.what = "dataset" if section == "datasets" else "benchmark"
        self.source = source_of(section, name, kind)
        self.checked: list[str] = []
        self.named: list[str] = []
        self.configured: list[Path] = []

    def error(self, path: Path, problem: str, expected: str, place: Path | None = None) -> DataError:
        """``<what> <name>: <path> <problem> (expected ...); download ... and place it at ...``."""
        return DataError(f"{self.what} {self.name}: {path} {problem} (expected {expected}); download {self.source} "
                         f"and place it at {place or path}")

    def seen(self, path: Path, *, named: bool = False) -> Path:
        for store, keep in ((self.checked, True), (self.named, named)):
            if keep and str(path) not in store:
                store.append(str(path))
        return path

    def path(self, spec: Mapping[str, Any], key: str) -> Path:
        """The configured path ``spec[key]``, which a layout of this kind needs."""
        value = spec.get(key) if key not in PATH_OPTIONS else spec.get("options", {}).get(key)
        if not value:
            raise ConfigError(f"{self.section}.{self.name}.{key}: not set; checking a {self.kind} layout needs it")
        self.configured.append(Path(value))
        return Path(value)

    def optional(self, spec: Mapping[str, Any], key: str) -> Path | None:
        try:
            return self.path(spec, key)
        except ConfigError:
            return None

    def folder(self, path: Path, expected: str, place: Path | None = None) -> Path:
        if not path.is_dir():
            raise self.error(path, "missing" if not path.exists() else "is not a folder", expected, place)
        return self.seen(path)

    def file(self, path: Path, expected: str, *, named: bool = True, place: Path | None = None) -> Path:
        if not path.is_file():
            raise self.error(path, "missing" if not path.exists() else "is not a file", expected, place)
        return self.seen(path, named=named)

    @contextlib.contextmanager
    def reading(self, path: Path, expected: str) -> Iterator[None]:
        """Turn a reader's ``DataError`` about ``path`` into this layout's one-line error."""
        try:
            yield
        except DataError as e:
            text = str(e).removeprefix(f"{path}: ")
            raise self.error(path, f"malformed ({text})", expected) from None

    def json(self, path: Path, expected: str, top: type, *, named: bool = True) -> Any:
        """Load a JSON file whose top level is ``top`` (``dict`` or ``list``), non-empty."""
        self.file(path, expected, named=named)
        try:
            with path.open(encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            problem = f"malformed (not JSON: line {e.lineno} column {e.colno}: {e.msg})"
            raise self.error(path, problem, expected) from None
        except UnicodeDecodeError as e:
            raise self.error(path, f"malformed (not UTF-8 text at byte {e.start})", expected) from None
        if not isinstance(data, top):
            want = "an object" if top is dict else "an array"
            raise self.error(path, f"malformed (top level is not {want})", expected)
        if not data:
            raise self.error(path, "malformed (empty)", expected)
        return data

    def keys(self, path: Path, data: Mapping[str, Any], keys: Iterable[str], expected: str) -> None:
        missing = [k for k in keys if k not in data]
        if missing:
            raise self.error(path, f"malformed (no top-level key {missing[0]!r})", expected)

    def records(self, path: Path, records: Any, fields: Iterable[str], expected: str, label: str) -> list[Any]:
        """``records`` must be a non-empty list of objects, each with ``fields``; names the first that is not."""
        if not isinstance(records, list) or not records:
            raise self.error(path, f"malformed ({label} is not a non-empty list)", expected)
        fields = tuple(fields)
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise self.error(path, f"malformed ({label}[{i}] is not an object)", expected)
            if not all(k in rec for k in fields):
                missing = next(k for k in fields if k not in rec)
                raise self.error(path, f"malformed ({label}[{i}] lacks {missing!r})", expected)
        return records

    def sample(self, path: Path, expected: str, place: Path) -> Path:
        """A sample file of a folder's expected structure must exist."""
        if not path.is_file():
            raise self.error(path, "missing", expected, place)
        return self.seen(path)


# ---------------------------------------------------------------------------------------------- helpers


def first_entry(folder: Path, want: Callable[[os.DirEntry], bool]) -> Path | None:
    """The first entry of ``folder`` (directory order, no full listing) that ``want`` accepts."""
    with os.scandir(folder) as it:
        for entry in it:
            if not entry.name.startswith(".") and want(entry):
                return Path(entry.path)
    return None


def first_image(folder: Path) -> Path | None:
    return first_entry(folder, lambda e: e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file())


def first_image_below(folder: Path, depth: int = 2) -> Path | None:
    """An image in ``folder`` or, down to ``depth`` levels, in its first sub-folders (editing targets)."""
    found = first_image(folder)
    if found is None and depth > 0:
        sub = first_entry(folder, lambda e: e.is_dir())
        return None if sub is None else first_image_below(sub, depth - 1)
    return found


def first_line(lay: Layout, path: Path, expected: str) -> str:
    """The first non-empty line of a text file (``.zst`` decompressed on the fly)."""
    try:
        with path.open("rb") as raw:
            stream: Any = raw
            if path.suffix == ".zst":
                import zstandard

                stream = zstandard.ZstdDecompressor().stream_reader(raw)
            for line in io.TextIOWrapper(stream, encoding="utf-8-sig"):
                if line.strip():
                    return line.rstrip("\r\n")
    except (UnicodeDecodeError, OSError) as e:
        raise lay.error(path, f"malformed (unreadable: {e.__class__.__name__})", expected) from None
    raise lay.error(path, "malformed (empty)", expected)


def spread(rel_paths: Iterable[str], limit: int = MAX_SAMPLES) -> list[str]:
    """The first path of each distinct folder (at most ``limit``): one sample per image sub-set."""
    picked: dict[str, str] = {}
    for rel in rel_paths:
        picked.setdefault(os.path.dirname(rel), rel)
        if len(picked) >= limit:
            break
    return list(picked.values())


# ----------------------------------------------------------------------------------------- dataset kinds

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
    split = spec.get("split")
    if not split:
        raise ConfigError(f"datasets.{lay.name}.split: not set; checking a refcoco layout needs it")
    refer_release(lay, lay.path(spec, "annotations"), lay.path(spec, "root"), str(split))


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
}


# -------------------------------------------------------------------------------------------- benchmarks

VQA_QUESTIONS = "VQA questions JSON {'questions': [{'question_id', 'image_id', 'question'}]}"
VQA_ANNOTATIONS = "VQA annotations JSON {'annotations': [{'question_id', 'answers', 'answer_type'}]}"


def check_caption_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    """COCO captions or a Karpathy split file; the first image of the scored split exists."""
    expected = "a Karpathy split file {'images': [{'filename', 'split', 'sentences'}]} or COCO captions JSON"
    path = lay.path(spec, "annotations")
    data = lay.json(path, expected, dict)
    lay.keys(path, data, ("images",), expected)
    if "annotations" in data:
        lay.records(path, data["images"], ("id", "file_name"), expected, "images")
        lay.records(path, data["annotations"], ("image_id", "caption"), expected, "annotations")
        files = [str(data["images"][0]["file_name"])]
    else:
        images = lay.records(path, data["images"], ("filename", "split", "sentences"), expected, "images")
        split = spec.get("options", {}).get("split", "test")
        files = [str(im["filename"]) for im in images if im["split"] == split][:1]
        if not files:
            raise lay.error(path, f"malformed (no image in split {split!r})", expected)
    folder = lay.folder(lay.path(spec, "images"), f"the images of {path.name}")
    lay.sample(folder / files[0], f"the images of {path.name}", folder)


def check_vqa_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Questions (+ annotations) in the VQA layout; the first question's ``COCO_<subtype>_<id>.jpg`` exists."""
    qpath = lay.path(spec, "questions")
    questions = lay.json(qpath, VQA_QUESTIONS, dict)
    lay.keys(qpath, questions, ("questions",), VQA_QUESTIONS)
    records = lay.records(qpath, questions["questions"], ("question_id", "image_id", "question"), VQA_QUESTIONS,
                          "questions")
    apath = lay.optional(spec, "annotations")
    if apath is not None:
        ann = lay.json(apath, VQA_ANNOTATIONS, dict)
        lay.keys(apath, ann, ("annotations",), VQA_ANNOTATIONS)
        lay.records(apath, ann["annotations"], ("question_id", "answers", "answer_type"), VQA_ANNOTATIONS,
                    "annotations")
    images = lay.folder(lay.path(spec, "images"), "COCO val2014 images")
    subtype = questions.get("data_subtype", "val2014")
    lay.sample(images / f"COCO_{subtype}_{int(records[0]['image_id']):012d}.jpg", "COCO val2014 images", images)


def check_vizwiz_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    expected = "VizWiz val.json [{'image', 'question', 'answers', 'answer_type'}]"
    path = lay.path(spec, "annotations")
    records = lay.records(path, lay.json(path, expected, list), ("image", "question", "answers", "answer_type"),
                          expected, "records")
    images = lay.folder(lay.path(spec, "images"), "the VizWiz val images")
    lay.sample(images / str(records[0]["image"]), "the VizWiz val images", images)


def check_gqa_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    expected = "GQA questions {'<question id>': {'imageId', 'question', 'answer', 'isBalanced', 'types'}}"
    path = lay.path(spec, "questions")
    questions = lay.json(path, expected, dict)
    lay.records(path, list(questions.values()), ("imageId", "isBalanced"), expected, "questions")
    images = lay.folder(lay.path(spec, "images"), "the GQA images <imageId>.jpg")
    lay.sample(images / f"{next(iter(questions.values()))['imageId']}.jpg", "the GQA images", images)


def check_pope_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Each ``*_pope_<split>.json`` has question rows; each split's first image exists."""
    expected = "a folder of coco_pope_<split>.json JSON lines {'question_id', 'image', 'text', 'label'}"
    given = lay.path(spec, "annotations")
    if given.is_dir():
        files = sorted(p for p in lay.folder(given, expected).iterdir() if "_pope_" in p.name
                       and p.suffix in (".json", ".jsonl"))
        if not files:
            raise lay.error(given, "has no *_pope_<split>.json files", expected)
    else:
        files = [lay.file(given, expected)]
    images = lay.folder(lay.path(spec, "images"), "COCO val2014 images")
    for path in files:
        lay.file(path, expected)
        with lay.reading(path, expected):
            rows = read_jsonl(path)
        lay.records(path, rows, ("question_id", "image", "text", "label"), expected, "rows")
        lay.sample(images / str(rows[0]["image"]), "COCO val2014 images", images)


def check_mme_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    """Every subtask template ``<subtask>.txt`` of ``Your_Results`` is there; its first image is in the release."""
    from evaluation.metrics.mme import SUBTASKS

    expected = "eval_tool/Your_Results with <subtask>.txt lines 'image<TAB>question<TAB>gt'"
    folder = lay.folder(lay.path(spec, "annotations"), expected)
    images = lay.folder(lay.path(spec, "images"), "MME_Benchmark_release_version/<subtask>/")
    chosen = spec.get("options", {}).get("subtasks") or SUBTASKS
    for subtask in chosen.split(",") if isinstance(chosen, str) else chosen:
        path = lay.file(folder / f"{subtask}.txt", expected, place=folder)
        fields = first_line(lay, path, expected).split("\t")
        if len(fields) not in (3, 4):
            raise lay.error(path, f"malformed (line 1 has {len(fields)} tab-separated fields, not 3)", expected)
        found = [p for p in (images / subtask / "images" / fields[0], images / subtask / fields[0],
                             images / fields[0]) if p.is_file()]
        lay.sample(found[0] if found else images / subtask / fields[0], "MME release images", images)


def check_mmvet_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    expected = "mm-vet.json {'v1_0': {'imagename', 'question', 'answer', 'capability'}}"
    path = lay.path(spec, "annotations")
    data = lay.json(path, expected, dict)
    lay.records(path, list(data.values()), ("imagename", "question", "answer"), expected, "entries")
    images = lay.folder(lay.path(spec, "images"), "the MM-Vet images")
    lay.sample(images / str(next(iter(data.values()))["imagename"]), "the MM-Vet images", images)


def check_coco_fid_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    """A folder of reference images (or a features .npz) and the COCO captions that prompt the generator."""
    expected = "the 30K COCO val2014 reference images (or their .npz features)"
    refs = lay.path(spec, "annotations")
    if refs.suffix == ".npz":
        lay.file(refs, expected)
    else:
        image = first_image(lay.folder(refs, expected))
        if image is None:
            raise lay.error(refs, "has no images", expected)
        lay.seen(image)
    path = lay.path(spec, "inputs")
    data = lay.json(path, COCO_CAPTIONS, dict)
    lay.keys(path, data, ("images", "annotations"), COCO_CAPTIONS)
    lay.records(path, data["annotations"], ("image_id", "caption"), COCO_CAPTIONS, "annotations")


def editing_targets(lay: Layout, spec: Mapping[str, Any]) -> None:
    expected = "a folder of target images (<session>/<file> or flat)"
    folder = lay.folder(lay.path(spec, "annotations"), expected)
    image = first_image_below(folder)
    if image is None:
        raise lay.error(folder, "has no images", expected)
    lay.seen(image)


def check_magicbrush_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    editing_targets(lay, spec)
    magicbrush_sessions(lay, lay.path(spec, "inputs"), lay.path(spec, "images"))
    captions = lay.optional(spec, "captions")
    if captions is not None:
        lay.json(captions, "global_descriptions.json {'<session>': {'<file>': 'caption'}}", dict)


def pair_list_bench(lay: Layout, spec: Mapping[str, Any], keys: tuple[str, str, str], what: str) -> None:
    """EVR / MA5K: a JSON list of (input, output, instruction) records; the first input image exists."""
    expected = f"{what} [{{{', '.join(repr(k) for k in keys)}}}]"
    editing_targets(lay, spec)
    path = lay.path(spec, "inputs")
    records = lay.records(path, lay.json(path, expected, list), keys, expected, "records")
    images = lay.folder(lay.path(spec, "images"), f"the {what} images")
    lay.sample(images / str(records[0][keys[0]]), f"the {what} images", images)


def check_evr_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    pair_list_bench(lay, spec, ("img0", "img1", "sents"), "EVR test.json")


def check_ma5k_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    pair_list_bench(lay, spec, ("input", "output", "request"), "MA5K test_sess_1.json")


def check_refer_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    options = spec.get("options", {})
    default_by = "umd" if lay.name == "refcocog" else "unc"
    refer_release(lay, lay.path(spec, "annotations"), lay.path(spec, "images"), str(options.get("split", "val")),
                  str(options.get("split_by", default_by)))


def check_reasonseg_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    expected = "a ReasonSeg split folder of <name>.jpg + <name>.json (labelme shapes)"
    image = first_jpg(lay, lay.folder(lay.path(spec, "annotations"), expected), expected)
    lay.json(image.with_suffix(".json"), expected, dict, named=False)


def check_seed_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    expected = ("SEED-Bench.json {'questions': [{'question_id', 'answer', 'question_type_id', 'data_id', "
                "'data_type'}]}")
    path = lay.path(spec, "annotations")
    data = lay.json(path, expected, dict)
    lay.keys(path, data, ("questions",), expected)
    fields = ("question_id", "answer", "question_type_id", "data_id", "data_type")
    questions = lay.records(path, data["questions"], fields, expected, "questions")
    images = lay.folder(lay.path(spec, "images"), "SEED-Bench-image/<data_id>")
    first = next((q for q in questions if q["data_type"] == "image"), None)
    if first is None:
        raise lay.error(path, "malformed (no question of data_type 'image')", expected)
    lay.sample(images / str(first["data_id"]), "SEED-Bench-image/<data_id>", images)


def check_mmbench_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    expected = "MMBench TSV with columns index, question, A, B, ..., answer, image (base64)"
    path = lay.file(lay.path(spec, "annotations"), expected)
    header = [c if len(c) == 1 and c.isupper() else c.lower() for c in first_line(lay, path, expected).split("\t")]
    missing = [c for c in ("index", "question", "A", "B", "answer", "image") if c not in header]
    if missing:
        raise lay.error(path, f"malformed (no column {missing[0]!r})", expected)


def check_mmmu_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    """The JSON list export; the first question's ``<Subject>/<split>-*.parquet`` is in the snapshot folder."""
    expected = "a JSON list of MMMU questions [{'id': '<split>_<Subject>_<n>', 'question_type', 'answer'}]"
    path = lay.path(spec, "annotations")
    if path.suffix == ".jsonl":
        lay.file(path, expected)
        with lay.reading(path, expected):
            data = read_jsonl(path)
    else:
        data = lay.json(path, expected, list)
    records = lay.records(path, data, ("id", "question_type", "answer"), expected, "records")
    qid = str(records[0]["id"])
    if qid.count("_") < 2:
        raise lay.error(path, f"malformed (id {qid!r} is not <split>_<Subject>_<n>)", expected)
    split, subject = qid.split("_", 1)[0], qid.split("_", 1)[1].rsplit("_", 1)[0]
    snapshot = lay.folder(lay.path(spec, "images"), "the MMMU/MMMU snapshot: <Subject>/<split>-*.parquet")
    parquet = sorted((snapshot / subject).glob(f"{split}-*.parquet"))
    if not parquet:
        raise lay.error(snapshot / subject / f"{split}-*.parquet", "missing", "the MMMU/MMMU snapshot", snapshot)
    lay.seen(parquet[0])


def check_mjhq_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    """``meta_data.json``; the first id's reference ``<category>/<id>.jpg`` beside it (or in ``mjhq30k_imgs/``)."""
    expected = "MJHQ-30K meta_data.json {'<image id>': {'category', 'prompt'}}"
    path = lay.path(spec, "annotations")
    meta = lay.json(path, expected, dict)
    lay.records(path, list(meta.values()), ("category", "prompt"), expected, "entries")
    inputs = lay.optional(spec, "inputs")
    if inputs is not None and inputs != path:
        lay.records(inputs, list(lay.json(inputs, expected, dict).values()), ("prompt",), expected, "entries")
    image_id, entry = next(iter(meta.items()))
    given = lay.optional(spec, "reference_images")
    roots = [given] if given is not None else [path.parent, path.parent / "mjhq30k_imgs"]
    found = [r / entry["category"] / f"{image_id}.jpg" for r in roots if (r / entry["category"]).is_dir()]
    lay.sample(found[0] if found else roots[-1] / entry["category"] / f"{image_id}.jpg",
               "the reference images <category>/<image id>.jpg (mjhq30k_imgs.zip)", roots[-1])


def check_genai_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    expected = "genai_image.json {'00000': {'prompt', ...}} with genai_skills.json beside it"
    path = lay.path(spec, "annotations")
    lay.records(path, list(lay.json(path, expected, dict).values()), ("prompt",), expected, "entries")
    skills = lay.optional(spec, "skills") or path.parent / "genai_skills.json"
    lay.json(skills, expected, dict)


def check_generic_bench(lay: Layout, spec: Mapping[str, Any]) -> None:
    """A benchmark without a layout check of its own: every configured path exists."""
    for key in ("annotations", "questions", "images", "inputs", *PATH_OPTIONS):
        path = lay.optional(spec, key)
        if path is not None and not path.exists():
            raise lay.error(path, "missing", f"benchmarks.{lay.name}.{key}")
        if path is not None:
            lay.seen(path, named=path.is_file())


BENCHMARK_CHECKS: dict[str, Callable[[Layout, Mapping[str, Any]], None]] = {
    "flickr30k": check_caption_bench, "vqav2": check_vqa_bench, "okvqa": check_vqa_bench,
    "vizwiz": check_vizwiz_bench, "gqa": check_gqa_bench, "pope": check_pope_bench, "mme": check_mme_bench,
    "mmvet": check_mmvet_bench, "coco_fid": check_coco_fid_bench, "magicbrush": check_magicbrush_bench,
    "evr": check_evr_bench, "ma5k": check_ma5k_bench, "refcoco+": check_refer_bench, "refcocog": check_refer_bench,
    "reasonseg": check_reasonseg_bench, "seed": check_seed_bench, "mmbench": check_mmbench_bench,
    "mmmu": check_mmmu_bench, "mjhq_fid": check_mjhq_bench, "genai_bench": check_genai_bench,
}


# --------------------------------------------------------------------------------------------- checksums


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (a progress bar on stderr for large files)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as f, tqdm(total=size, unit="B", unit_scale=True, desc=path.name, leave=False,
                                    disable=size < LARGE) as bar:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def read_sums(path: Path) -> list[tuple[int, str, str]]:
    """``(line number, hex digest, relative path)`` per entry of a ``sha256sum`` output file."""
    entries = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = _SUM_LINE.fullmatch(line)
        if match is None:
            raise DataError(f"{path}: line {lineno} is not '<sha256 hex>  <relative path>' (sha256sum output)")
        rel = match.group(2)
        if line.startswith("\\"):  # sha256sum escapes names holding a newline or backslash
            rel = rel.replace("\\n", "\n").replace("\\\\", "\\")
        entries.append((lineno, match.group(1).lower(), rel))
    return entries


def sums_files(paths: Iterable[Path]) -> list[Path]:
    """The ``SHA256SUMS`` files in the configured folders and beside the configured files."""
    found: list[Path] = []
    for p in paths:
        candidate = p / SUMS if p.is_dir() else p.parent / SUMS
        if candidate.is_file() and candidate not in found:
            found.append(candidate)
    return found


def verify_checksums(lay: Layout, sums: Path) -> int:
    """Hash every file ``sums`` lists; the first mismatch (or missing file) is a one-line error naming it."""
    n = 0
    for lineno, digest, rel in read_sums(sums):
        target = sums.parent / rel
        if not target.is_file():
            raise lay.error(target, "missing", f"a file {sums} lists on line {lineno}")
        got = sha256_file(target)
        if got != digest:
            raise DataError(f"{lay.what} {lay.name}: {target} fails its checksum ({sums} line {lineno}: expected "
                            f"sha256 {digest[:16]}..., got {got[:16]}...); download {lay.source} again and place it "
                            f"at {target}")
        n += 1
    return n


def write_checksums(files: Iterable[str | Path]) -> list[Path]:
    """Write (or update) a ``SHA256SUMS`` beside each file; entries for other files already listed are kept.

    Returns:
        The ``SHA256SUMS`` files written.
    """
    by_folder: dict[Path, list[Path]] = {}
    for f in map(Path, files):
        by_folder.setdefault(f.parent, []).append(f)
    written = []
    for folder, members in by_folder.items():
        sums = folder / SUMS
        entries = {rel: digest for _, digest, rel in read_sums(sums)} if sums.is_file() else {}
        entries.update({f.name: sha256_file(f) for f in members})
        write_text(sums, "".join(f"{entries[rel]}  {rel}\n" for rel in sorted(entries)))
        written.append(sums)
    return written


# ---------------------------------------------------------------------------------------------- checking


def _finish(lay: Layout, *, write: bool) -> CheckReport:
    """Pin the named files (``write``), verify every ``SHA256SUMS`` found, and report."""
    if write:
        if not lay.named:
            log.warning("%s %s: no named files to pin (image folders and shards are not hashed)", lay.what, lay.name)
        for sums in write_checksums(lay.named):
            log.info("wrote %s", sums)
    verified = sum(verify_checksums(lay, sums) for sums in sums_files([*lay.configured, *map(Path, lay.named)]))
    return CheckReport(lay.name, lay.kind, list(lay.checked), verified, list(lay.named))


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
    return _finish(lay, write=write)


def check_benchmark(name: str, spec: Mapping[str, Any], *, write: bool = False) -> CheckReport:
    """Check one ``benchmarks.<name>`` entry's official files (its ``annotations``, ``questions``, ``images``,
    ``inputs`` and path ``options``); a benchmark without a check of its own only needs its paths to exist.

    Raises:
        ConfigError: A path the benchmark needs is not set.
        DataError: As :func:`check_dataset`, worded ``benchmark <name>: ...``.
    """
    lay = Layout("benchmarks", name, "benchmark")
    BENCHMARK_CHECKS.get(name, check_generic_bench)(lay, spec)
    return _finish(lay, write=write)


def check(config: Path, out: Path, *, dataset: str | None = None, benchmark: str | None = None,
          write: bool = False) -> CheckReport:
    """Check the dataset (or benchmark) ``config`` names and write its record to ``out``."""
    cfg = load_config(config)
    section, name = ("benchmarks", benchmark) if benchmark else ("datasets", dataset or "")
    entries = cfg.benchmarks if benchmark else cfg.datasets
    if name not in entries:
        raise ConfigError(f"{section}.{name}: not in {config}")
    spec = to_dict(entries[name])
    report = check_benchmark(name, spec, write=write) if benchmark else check_dataset(name, spec, write=write)
    write_json(out, report.record())
    log.info("%s: %d paths in place, %d checksums verified -> %s", name, len(report.checked),
             report.checksums_verified, out)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m setok.data.checks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, type=Path)
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", help="a key of the config's datasets")
    which.add_argument("--benchmark", help="a key of the config's benchmarks")
    ap.add_argument("--out", required=True, type=Path, help="the check's JSON record")
    ap.add_argument("--write-checksums", action="store_true",
                    help="write SHA256SUMS for the named files, then verify them")
    args = ap.parse_args(argv)
    return run(lambda: check(args.config, args.out, dataset=args.dataset, benchmark=args.benchmark,
                             write=args.write_checksums))


if __name__ == "__main__":
    raise SystemExit(main())
