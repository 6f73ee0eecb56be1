"""File I/O shared by every stage: atomic writes and image loading with one-line errors.

Every result, checkpoint and table is written to a temporary name in the destination folder and renamed into place,
so an interrupted job never leaves a half-written file that Snakemake would take as done.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError


class DataError(RuntimeError):
    """A data file is missing, unreadable or malformed; the message names the file and the problem."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically (same input, same bytes)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Write one JSON object per line atomically."""
    write_text(path, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the file in the error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a malformed line is reported with its line number."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    rows = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: line {i} is not valid JSON ({e.msg})") from None
    return rows


def torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """``torch.save`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image as RGB; a missing, truncated or non-image file raises :class:`DataError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            im.load()  # the pixels are in memory now; closing the file leaves them usable
            return im if im.mode == "RGB" else im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot read image ({e.__class__.__name__}: {e})") from None


def array_to_image(array: np.ndarray) -> Image.Image:
    """Turn a grey ``(H, W)`` or colour ``(H, W, 3|4)`` uint8/float array into an RGB PIL image."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return Image.fromarray(a[..., :3], mode="RGB")


class _PlainUnpickler(pickle.Unpickler):
    """Loads only built-in containers and scalars: a refs file needs nothing else, and nothing else can run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_refs_pickle(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A REFER ``refs(<split_by>).p`` file (a pickled list of ref dicts, Python 2 or 3) without running any code.

    Raises:
        DataError: missing file, a pickle that needs any class (one that could run code), or not a list of dicts.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    refs: Any = None
    for encoding in ("utf-8", "latin1"):  # Python 2 pickles hold byte strings; latin1 decodes any byte
        try:
            refs = _PlainUnpickler(io.BytesIO(data), encoding=encoding).load()
            break
        except UnicodeDecodeError:
            continue
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
            raise DataError(f"{path}: cannot read refs pickle ({str(e).splitlines()[0]})") from None
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        raise DataError(f"{path}: expected a pickled list of ref dicts")
    return refs
