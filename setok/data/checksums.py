"""Checksums of the official files: ``SHA256SUMS`` lists in ``sha256sum`` format, verified by every layout check.

This project ships NO checksum lists, because no machine it runs on can download the official files to compute
them. A lab pins what it downloaded with ``--write-checksums``: the check hashes the entry's named files (annotation
JSONs, CSVs, synset lists, refs pickles, template files; not image folders or tar shards) into a ``SHA256SUMS`` beside
each file (``<hex>  <relative path>``, merged with the entries already there). Every check verifies each
``SHA256SUMS`` found in a configured folder or beside a configured file, every file listed (streamed hashing, a
progress bar for large files), and fails naming the first mismatching file.
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from setok.data.layout import CheckReport, Layout
from setok.io import DataError, write_text

log = logging.getLogger("setok.data.checks")

SUMS = "SHA256SUMS"
LARGE = 256 * 2**20  # files at least this big get a progress bar while hashed
CHUNK = 2**20
_SUM_LINE = re.compile(r"\\?([0-9a-fA-F]{64}) [ *](.+)")


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



def finish(lay: Layout, *, write: bool) -> CheckReport:
    """Pin the named files (``write``), verify every ``SHA256SUMS`` found, and report."""
    if write:
        if not lay.named:
            log.warning("%s %s: no named files to pin (image folders and shards are not hashed)", lay.what, lay.name)
        for sums in write_checksums(lay.named):
            log.info("wrote %s", sums)
    verified = sum(verify_checksums(lay, sums) for sums in sums_files([*lay.configured, *map(Path, lay.named)]))
    return CheckReport(lay.name, lay.kind, list(lay.checked), verified, list(lay.named))
