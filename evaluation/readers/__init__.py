"""Readers: load and validate benchmark input files, raising one-line :class:`setok.io.DataError` naming the file."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SHOWN_IDS = 5


def preview(ids: Iterable[Any], limit: int = SHOWN_IDS) -> str:
    """``"a, b, c (+4 more)"``: the first ``limit`` ids, for error messages that must stay on one line."""
    ids = list(ids)
    head = ", ".join(repr(i) if not isinstance(i, str) else i for i in ids[:limit])
    return head + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")
