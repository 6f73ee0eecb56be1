"""File I/O shared by every stage: atomic writes, JSON and image loading with one-line errors.

Every result, checkpoint and table is written to a temporary name in the destination folder and renamed into place,
so an interrupted job never leaves a half-written file that Snakemake would take as done.

JSON is parsed with msgspec (C, several times faster than the standard library on the 80 MB benchmark reference
files) and falls back to :mod:`json` for anything msgspec refuses, so what is accepted, what it decodes to and the
error message of a bad file are the standard library's (msgspec rejects a subset of what ``json`` accepts: NaN and
Infinity literals, lone surrogate escapes). PIL is imported only by the image helpers: the text scorers that import
this module start without it.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import mmap
import os
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

if TYPE_CHECKING:
    from PIL import Image

_DECODE = msgspec.json.Decoder()
_ENCODE_SORTED = msgspec.json.Encoder(order="sorted")


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


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON atomically (same input, same bytes)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]], *, compact: bool = False) -> None:
    """Write one JSON object per line (keys sorted) atomically.

    Args:
        path: Output file.
        rows: One JSON object per line.
        compact: No spaces after ``,`` and ``:`` (``{"a":1,"b":2}``), encoded by msgspec at C speed (the per-sample
            scores of a 200K-question benchmark in tens of milliseconds); otherwise the standard library's spacing
            (``{"a": 1, "b": 2}``). Either way standard JSON meaning the same values, same rows same bytes.
    """
    if compact:
        write_bytes(path, jsonl_bytes(rows))
        return
    write_text(path, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows))


def _non_finite(value: Any) -> bool:
    """Whether ``value`` holds a NaN or infinite float anywhere (msgspec would write it as ``null``)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(map(_non_finite, value.values()))
    if isinstance(value, (list, tuple)):
        return any(map(_non_finite, value))
    return False


def jsonl_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    """``rows`` as compact, key-sorted JSON lines (UTF-8, not ASCII-escaped).

    msgspec encodes them; the standard library (same separators) takes over for what msgspec refuses (numpy
    scalars, non-string keys) and for non-finite floats, which msgspec would turn into ``null`` while ``json`` keeps
    them as ``NaN`` / ``Infinity`` as every other writer here does.
    """
    try:
        out = _ENCODE_SORTED.encode_lines(rows)
        if b"null" not in out or not _non_finite(list(rows)):
            return out
    except (TypeError, msgspec.EncodeError):
        pass
    return "".join(
        json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows
    ).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON as :func:`json.loads` does (same values, same errors), through msgspec when it accepts the text.

    Raises:
        json.JSONDecodeError: Malformed JSON (the standard library's message and position).
        UnicodeDecodeError: ``data`` is bytes that are not UTF-8.
    """
    try:
        return _DECODE.decode(data)
    except msgspec.DecodeError:  # the standard library decides, on the text as read_text would give it
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)


def read_json_typed(path: str | os.PathLike[str], kind: Any) -> Any:
    """``path`` decoded by msgspec straight into ``kind`` (structs of the fields a reader uses; the other fields are
    skipped, never built), or ``None`` when the file is missing, empty, or not JSON of that shape.

    The fast first pass of a reader: on ``None`` it reads the file again generically (:func:`read_json`) to word the
    error or to handle what the typed pass does not. The file is memory-mapped rather than copied into a buffer
    (80 MB of VQAv2 annotations: a third fewer page faults).
    """
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            return msgspec.json.decode(mapped, type=kind)
    except (OSError, ValueError, msgspec.DecodeError):  # ValueError: an empty file cannot be mapped
        return None


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, naming the file in the error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return loads(path.read_bytes())
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
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
                rows.append(loads(line))
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
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    from PIL import ImageFile

    # A truncated file must fail here even when another library switched PIL to padding truncated images with grey
    # (lmms-eval's task module sets ImageFile.LOAD_TRUNCATED_IMAGES = True when imported).
    lenient, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(path) as im:
            im.load()  # the pixels are in memory now; closing the file leaves them usable
            return im if im.mode == "RGB" else im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot read image ({e.__class__.__name__}: {e})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = lenient


def array_to_image(array: np.ndarray) -> Image.Image:
    """Turn a grey ``(H, W)`` or colour ``(H, W, 3|4)`` uint8/float array into an RGB PIL image."""
    from PIL import Image

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
