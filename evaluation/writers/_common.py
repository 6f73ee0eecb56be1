"""Shared checks of the prediction writers: id alignment against the references and atomic folder output.

Every writer validates the WHOLE model output before it writes anything, so a missing, unknown or malformed answer
raises one :class:`setok.io.DataError` line and never leaves a partial prediction file that a scorer could read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from evaluation.readers import preview
from setok.io import DataError

PathLike = str | os.PathLike[str]
V = TypeVar("V")


def id_key(value: Any) -> Any:
    """Matching key of an id: ``str`` of it (tuples element-wise), so ``262148000`` and ``"262148000"`` meet.

    Reference ids keep their own type in the written file; only the model's keys are matched loosely, because a model
    that kept ids from a ``datasets`` column often holds them as strings while the official files use integers.
    """
    if isinstance(value, tuple):
        return tuple(str(v) for v in value)
    return str(value)


def align(
    answers: Mapping[Any, V],
    expected: Sequence[Any],
    where: str,
    *,
    optional: Sequence[Any] = (),
) -> list[tuple[Any, V]]:
    """Pair every reference id with the model's answer for it.

    Args:
        answers: Model output keyed by id (matched through :func:`id_key`).
        expected: Reference ids that must all be answered, in reference order.
        where: ``"<output> (references <file>)"`` for the error messages.
        optional: Reference ids that may be answered (written when they are) but need not be.

    Returns:
        ``(reference id, answer)`` for the expected ids in order, then for the answered optional ids.

    Raises:
        DataError: Duplicate reference ids, two model keys for one id (``1`` and ``"1"``), missing answers, or
            answers for ids the references do not hold (all named, first few shown).
    """
    dup_refs = [k for k, c in Counter(id_key(i) for i in expected).items() if c > 1]
    if dup_refs:
        raise DataError(f"{where}: the references hold {len(dup_refs)} duplicate ids: {preview(dup_refs)}")
    by_key: dict[Any, V] = {}
    clashes = []
    for k, v in answers.items():
        key = id_key(k)
        if key in by_key:
            clashes.append(k)
        by_key[key] = v
    if clashes:
        raise DataError(f"{where}: the model output keys {len(clashes)} ids twice (string and integer): "
                        f"{preview(clashes)}")
    missing = [i for i in expected if id_key(i) not in by_key]
    if missing:
        raise DataError(f"{where}: missing answers for {len(missing)} of {len(expected)} ids: {preview(missing)}")
    known = {id_key(i) for i in expected} | {id_key(i) for i in optional}
    extra = [k for k in answers if id_key(k) not in known]
    if extra:
        raise DataError(f"{where}: {len(extra)} answers are for ids not in the references: {preview(extra)}")
    pairs = [(i, by_key[id_key(i)]) for i in expected]
    return pairs + [(i, by_key[id_key(i)]) for i in optional if id_key(i) in by_key]


def check_strings(pairs: Sequence[tuple[Any, Any]], where: str) -> None:
    """Every answer must be a ``str`` (a ``None`` from a failed generation must not become ``"None"``).

    Raises:
        DataError: Naming the ids whose answers are not strings.
    """
    bad = [i for i, v in pairs if not isinstance(v, str)]
    if bad:
        raise DataError(f"{where}: answers are not strings for {len(bad)} ids: {preview(bad)}")


def align_answers(
    answers: Mapping[Any, Any], expected: Sequence[Any], where: str, *, optional: Sequence[Any] = ()
) -> list[tuple[Any, str]]:
    """:func:`align` for text answers, then :func:`check_strings`: what every answer writer needs."""
    pairs = align(answers, expected, where, optional=optional)
    check_strings(pairs, where)
    return pairs


def one_line(text: str) -> str:
    """``text`` with tabs and line breaks (``\\r``, ``\\n``) replaced by spaces, for one-line TSV fields."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\t", " ")


@contextlib.contextmanager
def atomic_dir(path: PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; it becomes ``path`` only if the block succeeds.

    Args:
        path: Destination folder.
        overwrite: Replace an existing non-empty ``path`` (its old contents are deleted). Without it a non-empty
            destination is an error, so stale files of an earlier run (an extra split, an old image) never mix with
            the new ones.

    Raises:
        DataError: ``path`` is a file, or a non-empty folder without ``overwrite`` (checked before the block runs).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise DataError(f"{path}: folder exists and is not empty (remove it, or pass overwrite=True)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_names(ids: Collection[str], where: str) -> None:
    """Ids used as file names must be non-empty relative paths without ``..`` or hidden parts.

    Raises:
        DataError: Naming the unusable ids.
    """
    bad = [
        i for i in ids
        if not isinstance(i, str) or not i or "\\" in i or i.startswith("/")
        or any(part in ("", ".", "..") or part.startswith(".") for part in i.split("/"))
    ]
    if bad:
        raise DataError(f"{where}: ids unusable as file names: {preview(bad)}")
