"""Helpers shared by the source readers."""
from __future__ import annotations

import os
from pathlib import Path

from setok.io import DataError


def check_images(paths: list[Path], where: str | Path) -> None:
    """One DataError naming the first missing image and how many are missing."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise DataError(f"{where}: {len(missing)} image(s) not found, first {missing[0]}")


def require(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: {what} not found")
    return path
