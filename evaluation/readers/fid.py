"""FID inputs stored as ``.npz``: either raw features or precomputed Gaussian statistics.

* ``features``: ``(N, D)`` float array (``N >= 2``; D = 2048 for Inception pool3); optional ``names`` (N strings).
* ``mu`` ``(D,)`` + ``sigma`` ``(D, D)``: statistics only (no bootstrap possible); optional scalar ``n``.

When a file has both, ``features`` wins (statistics are recomputed from them).
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evaluation.metrics.fid import FidStats, fid_statistics
from setok.io import DataError, atomic_path


@dataclass(frozen=True)
class FidInput:
    """One side of an FID comparison.

    Attributes:
        source: The folder or ``.npz`` it came from.
        stats: Mean and covariance.
        features: ``(N, D)`` features when known (needed for bootstrap and per-sample rows).
        names: Per-row names (image file names) when known.
        n: Number of samples when known.
    """

    source: Path
    stats: FidStats
    features: np.ndarray | None = None
    names: list[str] | None = None
    n: int | None = None


def from_features(
    source: Path, features: np.ndarray, names: list[str] | None = None
) -> FidInput:
    """Validate ``(N, D)`` features and wrap them with their statistics.

    Raises:
        DataError: Not 2-D, fewer than 2 rows, or non-finite values (names ``source``).
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2 or f.shape[1] < 1:
        raise DataError(
            f"{source}: features must be an (N, D) array with N >= 2, got shape {f.shape}"
        )
    if not np.isfinite(f).all():
        raise DataError(f"{source}: features contain NaN or infinity")
    if names is not None and len(names) != f.shape[0]:
        raise DataError(f"{source}: {len(names)} names for {f.shape[0]} feature rows")
    return FidInput(
        source=source, stats=fid_statistics(f), features=f, names=names, n=f.shape[0]
    )


def read_fid_npz(path: str | os.PathLike[str]) -> FidInput:
    """Read an ``.npz`` holding ``features`` or ``mu`` + ``sigma`` (see the module docstring).

    Raises:
        DataError: Missing/unreadable file, neither layout present, or arrays of the wrong shape or non-finite.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(
            f"{path}: cannot read .npz ({e.__class__.__name__}: {str(e).splitlines()[0]})"
        ) from None
    if "features" in arrays:
        names = (
            [str(x) for x in arrays["names"].tolist()] if "names" in arrays else None
        )
        return from_features(path, arrays["features"], names)
    if "mu" not in arrays or "sigma" not in arrays:
        raise DataError(
            f"{path}: needs 'features' or 'mu' + 'sigma', found {sorted(arrays) or 'no arrays'}"
        )
    mu, sigma = (
        np.asarray(arrays["mu"], np.float64),
        np.asarray(arrays["sigma"], np.float64),
    )
    if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
        raise DataError(
            f"{path}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}"
        )
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise DataError(f"{path}: mu or sigma contain NaN or infinity")
    n = int(arrays["n"]) if "n" in arrays and arrays["n"].size == 1 else None
    return FidInput(source=path, stats={"mu": mu, "sigma": sigma}, n=n)


def write_fid_npz(
    path: str | os.PathLike[str],
    features: np.ndarray,
    *,
    names: list[str] | None = None,
    with_stats: bool = True,
) -> None:
    """Write features (plus ``mu``, ``sigma``, ``n`` when ``with_stats``) to ``.npz`` atomically.

    Args:
        path: Destination ``.npz``.
        features: ``(N, D)`` features.
        names: Optional per-row names (e.g. image file names).
        with_stats: Also store the statistics so the file can be read by tools that only know ``mu``/``sigma``.
    """
    f = np.asarray(features, dtype=np.float64)
    arrays: dict[str, np.ndarray] = {"features": f}
    if names is not None:
        arrays["names"] = np.asarray(names, dtype=str)
    if with_stats:
        stats = fid_statistics(f)
        arrays.update(mu=stats["mu"], sigma=stats["sigma"], n=np.asarray(f.shape[0]))
    with (
        atomic_path(path) as tmp,
        tmp.open("wb") as fh,
    ):  # a file object: np.savez would append ".npz" to a name
        np.savez(fh, **arrays)
