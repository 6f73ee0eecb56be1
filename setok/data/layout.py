"""The layout-check framework: a :class:`Layout` collects what a check looked at and words its one-line errors.

A check of one dataset kind (:mod:`setok.data.dataset_checks`) or one benchmark (its class in the evaluation suite)
takes a :class:`Layout` and the config entry, and reads the official files cheaply, never scanning millions of files:
the configured folders and files exist, the named annotation files parse and have the official top-level keys and
record fields, and a sample of the structure is there. Where each dataset and benchmark comes from is the table in
``setok/data/layouts.yaml``, which every error names.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from setok.config import ConfigError
from setok.data.imagenet import IMAGE_EXTENSIONS
from setok.io import DataError

LAYOUTS = "layouts.yaml"  # where each dataset / benchmark comes from (package data beside this module)
MAX_SAMPLES = 64  # at most this many sample images (LLaVA: one per image sub-folder)
IMAGE_SUFFIXES = (*IMAGE_EXTENSIONS, ".webp", ".bmp")
# benchmark options that name files (the scorers' --captions, --skills, ... flags)
PATH_OPTIONS = ("captions", "skills", "grader_file", "judge_prompt", "reference_images", "reference_cache")


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



def check_configured_paths(lay: Layout, spec: Mapping[str, Any]) -> None:
    """An entry without a layout check of its own: every configured path exists."""
    for key in ("annotations", "questions", "images", "inputs", *PATH_OPTIONS):
        path = lay.optional(spec, key)
        if path is not None and not path.exists():
            raise lay.error(path, "missing", f"{lay.section}.{lay.name}.{key}")
        if path is not None:
            lay.seen(path, named=path.is_file())
