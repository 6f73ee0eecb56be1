"""OpenImages in its official layout: ``root/<ImageID>.jpg`` plus the labels CSV and the class-descriptions CSV.

The labels CSV is the image-level labels file (``ImageID,Source,LabelName,Confidence``) or the box annotations
file (``ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,...``); only ``ImageID``, ``LabelName`` and the
optional ``Confidence`` are read. The class-descriptions CSV maps MIDs to display names
(``/m/011k07,Tortoise``); the official ``class-descriptions-boxable.csv`` has no header,
``oidv7-class-descriptions.csv`` has ``LabelName,DisplayName``: both are accepted.

pandas does the parsing and grouping when it is installed (the official CSVs have millions of rows); otherwise the
standard ``csv`` module gives the same result, slowly.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from torch.utils.data import Dataset

from setok.data.sample import Sample
from setok.data.transforms import image_transform, load_tensor
from setok.io import DataError

IMAGE_SUFFIX = ".jpg"
_REQUIRED = ("ImageID", "LabelName")
_MAX_NAMED = 5  # how many missing files an error message lists


def load_pandas() -> ModuleType | None:
    """Return pandas if installed (the fast path for the multi-million-row official files), else ``None``."""
    try:
        import pandas
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return pandas


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def read_class_descriptions(path: str | Path) -> dict[str, str]:
    """Read a class-descriptions CSV (``LabelName,DisplayName``, with or without that header).

    Args:
        path: ``class-descriptions-boxable.csv`` or ``oidv7-class-descriptions.csv``.

    Returns:
        ``MID -> display name`` in file order.

    Raises:
        DataError: The file is missing or malformed, a row is empty, or a MID has two different names.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: class descriptions file not found")
    mapping: dict[str, str] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        for row in reader:
            lineno = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if lineno == 1 and [c.strip().lower() for c in row] == ["labelname", "displayname"]:
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise DataError(f"{path}: line {lineno} is not 'LabelName,DisplayName' ({','.join(row)!r})")
            mid, name = row[0].strip(), row[1].strip()
            if mapping.get(mid, name) != name:
                raise DataError(f"{path}: line {lineno}: {mid} is named both {mapping[mid]!r} and {name!r}")
            mapping[mid] = name
    if not mapping:
        raise DataError(f"{path}: no classes")
    return mapping


@dataclass(frozen=True)
class LabelTable:
    """Positive labels grouped per image, stored flat so that worker processes share it cheaply.

    Attributes:
        ids: ImageIDs, sorted.
        offsets: ``(len(ids) + 1,)`` int64; image ``i`` has the labels ``codes[offsets[i]:offsets[i + 1]]``.
        codes: Indices into ``vocabulary``, de-duplicated per image in first-seen order.
        vocabulary: Display names (de-duplicated, in class-descriptions file order).
    """

    ids: list[str]
    offsets: np.ndarray
    codes: np.ndarray
    vocabulary: list[str]

    def labels(self, index: int) -> list[str]:
        """Display names of image ``index``."""
        return [self.vocabulary[c] for c in self.codes[self.offsets[index]:self.offsets[index + 1]]]

    def head(self, n: int) -> LabelTable:
        """Keep the first ``n`` images."""
        return LabelTable(self.ids[:n], self.offsets[: n + 1], self.codes[: self.offsets[min(n, len(self.ids))]],
                          self.vocabulary)


def _unknown_mid_error(labels_csv: Path, classes_csv: Path, unknown: list[str]) -> DataError:
    more = f" and {len(unknown) - 1} more" if len(unknown) > 1 else ""
    return DataError(f"{labels_csv}: LabelName {unknown[0]}{more} not in {classes_csv} "
                     "(pair image-level labels with oidv7-class-descriptions.csv, boxes with "
                     "class-descriptions-boxable.csv)")


def _csv_engine() -> str:
    """Pick pandas' pyarrow CSV engine when pyarrow is installed (about ten times faster), else the C engine."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover - depends on the environment
        return "c"
    return "pyarrow"


def _read_labels_pandas(pd: ModuleType, labels_csv: Path, classes_csv: Path, mapping: dict[str, str]) -> LabelTable:
    try:
        columns = list(pd.read_csv(labels_csv, nrows=0).columns)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"{labels_csv}: cannot read CSV header ({_one_line(e)})") from None
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise DataError(f"{labels_csv}: missing column(s) {', '.join(missing)} (header: {','.join(columns)})")
    use = [c for c in (*_REQUIRED, "Confidence") if c in columns]
    try:
        df = pd.read_csv(labels_csv, usecols=use, dtype=str, keep_default_na=False, engine=_csv_engine())
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"{labels_csv}: malformed CSV ({_one_line(e)})") from None
    if "Confidence" in df.columns:
        text = df["Confidence"]
        positive = (text == "1").to_numpy().copy()
        other = ~(positive | (text == "0").to_numpy())  # official files hold only "0" and "1"; parse the rest
        if other.any():
            value = pd.to_numeric(text[other], errors="coerce").to_numpy()
            bad = np.flatnonzero(np.isnan(value))
            if bad.size:
                row = np.flatnonzero(other)[bad[0]]
                raise DataError(f"{labels_csv}: line {row + 2}: Confidence {text.iat[row]!r} is not a number")
            positive[other] = value == 1
        df = df[positive]
    vocabulary = list(dict.fromkeys(mapping.values()))
    name_index = {n: i for i, n in enumerate(vocabulary)}
    mids = list(mapping)
    mid_to_name = np.array([name_index[mapping[m]] for m in mids], dtype=np.int64)
    mid_codes = pd.Index(mids).get_indexer(df["LabelName"])
    if (mid_codes < 0).any():
        unknown = list(dict.fromkeys(df["LabelName"].to_numpy()[mid_codes < 0]))
        raise _unknown_mid_error(labels_csv, classes_csv, unknown)
    names = mid_to_name[mid_codes]
    image_codes, image_ids = pd.factorize(df["ImageID"])  # codes in first-seen order
    image_ids = np.asarray(image_ids, dtype=object)
    keep = ~pd.Index(image_codes.astype(np.int64) * len(vocabulary) + names).duplicated()  # first (image, name)
    image_codes, names = image_codes[keep], names[keep]
    by_id = np.argsort(image_ids, kind="stable")
    rank = np.empty_like(by_id)
    rank[by_id] = np.arange(len(by_id))
    order = np.argsort(rank[image_codes], kind="stable")  # group by sorted ImageID, rows stay in file order
    grouped = rank[image_codes][order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if len(grouped) else np.zeros(0, np.int64)
    return LabelTable(
        ids=image_ids[by_id].tolist(),
        offsets=np.r_[starts, len(grouped)].astype(np.int64),
        codes=names[order].astype(np.int32),
        vocabulary=vocabulary,
    )


def _read_labels_csv_module(labels_csv: Path, classes_csv: Path, mapping: dict[str, str]) -> LabelTable:
    vocabulary = list(dict.fromkeys(mapping.values()))
    name_index = {n: i for i, n in enumerate(vocabulary)}
    groups: dict[str, list[int]] = {}
    unknown: dict[str, None] = {}
    try:
        with labels_csv.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            missing = [c for c in _REQUIRED if c not in columns]
            if missing:
                raise DataError(f"{labels_csv}: missing column(s) {', '.join(missing)} (header: {','.join(columns)})")
            has_conf = "Confidence" in columns
            for row in reader:
                lineno = reader.line_num
                if has_conf:
                    try:
                        if float(row["Confidence"]) != 1:
                            continue
                    except (TypeError, ValueError):
                        raise DataError(f"{labels_csv}: line {lineno}: Confidence {row['Confidence']!r} "
                                        "is not a number") from None
                mid = row["LabelName"]
                if mid not in mapping:
                    unknown[mid] = None
                    continue
                codes = groups.setdefault(row["ImageID"], [])
                code = name_index[mapping[mid]]
                if code not in codes:
                    codes.append(code)
    except UnicodeDecodeError as e:
        raise DataError(f"{labels_csv}: not UTF-8 text ({_one_line(e)})") from None
    if unknown:
        raise _unknown_mid_error(labels_csv, classes_csv, list(unknown))
    ids = sorted(groups)
    lengths = [len(groups[i]) for i in ids]
    return LabelTable(
        ids=ids,
        offsets=np.r_[0, np.cumsum(lengths, dtype=np.int64)].astype(np.int64),
        codes=np.array([c for i in ids for c in groups[i]], dtype=np.int32),
        vocabulary=vocabulary,
    )


def read_image_labels(labels_csv: str | Path, classes_csv: str | Path) -> LabelTable:
    """Group the positive labels (``Confidence == 1``, or every row without that column) per image.

    Args:
        labels_csv: Image-level labels or box annotations CSV, with its official header.
        classes_csv: Class-descriptions CSV mapping every MID used in ``labels_csv`` to a display name.

    Returns:
        The grouped labels; images whose rows are all negative are left out (they have no label).

    Raises:
        DataError: A file is missing or malformed, a Confidence is not a number, a MID is not in
            ``classes_csv``, or no row is positive.
    """
    labels_csv, classes_csv = Path(labels_csv), Path(classes_csv)
    if not labels_csv.is_file():
        raise DataError(f"{labels_csv}: labels CSV not found")
    mapping = read_class_descriptions(classes_csv)
    pd = load_pandas()
    if pd is not None:
        table = _read_labels_pandas(pd, labels_csv, classes_csv, mapping)
    else:
        table = _read_labels_csv_module(labels_csv, classes_csv, mapping)
    if not table.ids:
        raise DataError(f"{labels_csv}: no row with Confidence 1")
    return table


def _check_files(root: Path, ids: list[str], labels_csv: Path) -> None:
    """Raise if any ``root/<id>.jpg`` is missing (one directory scan for large lists, ``stat`` for small ones)."""
    names = [i + IMAGE_SUFFIX for i in ids]
    if len(names) > 10_000:
        present = {e.name for e in os.scandir(root)}
        missing = [n for n in names if n not in present]
    else:
        missing = [n for n in names if not (root / n).is_file()]
    if missing:
        listed = ", ".join(missing[:_MAX_NAMED]) + (" ..." if len(missing) > _MAX_NAMED else "")
        raise DataError(f"{root}: {len(missing)} image(s) listed in {labels_csv} not found: {listed}")


class OpenImagesManifest(Dataset[Sample]):
    """OpenImages images with their positive object labels (display names).

    Images are ordered by ImageID; ``labels`` are the image's display names de-duplicated in CSV order;
    ``label`` is always ``-1`` (no single class).

    Attributes:
        classes: Empty: OpenImages images have no single class for zero-shot classification.
        vocabulary: Every display name of the class-descriptions file, de-duplicated, in file order.
        ids: ImageIDs in dataset order.
    """

    def __init__(
        self,
        root: str | Path,
        labels_csv: str | Path,
        classes_csv: str | Path,
        *,
        image_size: int,
        limit: int | None = None,
        contrastive: bool = True,
    ) -> None:
        """Read the CSVs and check that every image they list is on disk.

        Args:
            root: Folder holding ``<ImageID>.jpg``.
            labels_csv: Image-level labels or box annotations CSV.
            classes_csv: Class-descriptions CSV.
            image_size: Side of the square output images.
            limit: Keep only the first ``limit`` images (by ImageID).
            contrastive: Whether the labels feed the contrastive loss.

        Raises:
            ValueError: ``limit`` is below 1.
            DataError: ``root`` or a CSV is missing or malformed, a MID is unknown, or a listed image is missing.
        """
        root = Path(root)
        if limit is not None and limit < 1:
            raise ValueError(f"OpenImagesManifest: limit must be >= 1, got {limit}")
        if not root.is_dir():
            raise DataError(f"{root}: OpenImages image folder not found")
        table = read_image_labels(labels_csv, classes_csv)
        self._table = table if limit is None else table.head(limit)
        _check_files(root, self._table.ids, Path(labels_csv))
        self.root = root
        self.ids: list[str] = self._table.ids
        self.classes: list[str] = []
        self.vocabulary: list[str] = self._table.vocabulary
        self.contrastive = contrastive
        self.image_size = image_size
        self._transform = image_transform(image_size)

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        """Load image ``index`` with its display-name labels."""
        image_id = self.ids[index]
        return Sample(
            id=image_id,
            image=load_tensor(self.root / f"{image_id}{IMAGE_SUFFIX}", self._transform),
            labels=self._table.labels(index),
            label=-1,
            contrastive=self.contrastive,
        )
