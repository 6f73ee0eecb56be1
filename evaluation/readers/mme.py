"""Readers of MME result folders in the official ``eval_tool`` layout.

A folder holds one ``<subtask>.txt`` per subtask (``existence.txt``, ..., ``OCR.txt``, ``code_reasoning.txt``) with one
line per question, ``image<TAB>question<TAB>gt<TAB>prediction``: the ``eval_tool/Your_Results`` template
(``image<TAB>question<TAB>gt``) with the model's answer appended, which is what ``calculation.py`` reads and what
LLaVA's ``convert_answer_to_mme.py`` writes (there the image field is ``<image stem>.txt``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.metrics.mme import SUBTASKS
from evaluation.readers import preview
from setok.io import DataError

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class MmeLine:
    """One question line of a subtask file."""

    image: str
    question: str
    gt: str
    prediction: str


@dataclass(frozen=True)
class MmeSubtask:
    """A subtask's questions grouped by image (two per image, in file order).

    Attributes:
        name: Subtask name (file stem).
        images: Image keys in order of first appearance.
        pairs: ``pairs[i]`` holds the two :class:`MmeLine` of ``images[i]``, in file order.
    """

    name: str
    images: list[str]
    pairs: list[tuple[MmeLine, MmeLine]]


def read_lines(path: Path, *, min_fields: int, max_fields: int) -> list[list[str]]:
    """Tab-split lines of ``path`` (whitespace-only lines skipped; only the line terminator is removed).

    Lines are read like ``calculation.py`` reads them (text mode, universal newlines), so a prediction keeps its
    leading and trailing spaces.

    Raises:
        DataError: Missing file, undecodable bytes, or a line with the wrong number of tab-separated fields.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8") as f:
            raw = f.readlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    out = []
    for i, line in enumerate(raw, 1):
        line = line.removesuffix("\n")
        if not line.strip() and "\t" not in line:
            continue
        fields = line.split("\t")
        if not min_fields <= len(fields) <= max_fields:
            want = str(min_fields) if min_fields == max_fields else f"{min_fields} or {max_fields}"
            raise DataError(
                f"{path}: line {i} has {len(fields)} tab-separated fields, expected {want} "
                f"(image, question, gt{', prediction' if max_fields == 4 else ''})"
            )
        out.append(fields)
    if not out:
        raise DataError(f"{path}: no lines")
    return out


def _pairs(path: Path, lines: list[MmeLine]) -> MmeSubtask:
    """Group lines by image; every image must have exactly two questions, each asked once."""
    by_image: dict[str, list[MmeLine]] = {}
    for line in lines:
        by_image.setdefault(line.image, []).append(line)
    bad = [img for img, ls in by_image.items() if len(ls) != 2]
    if bad:
        raise DataError(f"{path}: every image needs exactly 2 questions; not so for {preview(bad)}")
    same = [img for img, ls in by_image.items() if ls[0].question == ls[1].question]
    if same:
        raise DataError(f"{path}: the same question is asked twice for images {preview(same)}")
    wrong_gt = sorted({ln.gt for ln in lines if ln.gt.lower() not in ("yes", "no")})
    if wrong_gt:
        raise DataError(f"{path}: gt must be yes or no (any case), found {preview(wrong_gt)}")
    return MmeSubtask(name=path.stem, images=list(by_image), pairs=[(ls[0], ls[1]) for ls in by_image.values()])


def read_subtask(path: Path) -> MmeSubtask:
    """Read one ``<subtask>.txt`` results file (4 fields per line)."""
    rows = read_lines(path, min_fields=4, max_fields=4)
    return _pairs(path, [MmeLine(*r) for r in rows])


def _check_against_template(sub: MmeSubtask, path: Path, template: Path) -> None:
    """Predictions must answer exactly the template's questions, with the template's gt."""
    ref = {(r[0], r[1]): r[2] for r in read_lines(template, min_fields=3, max_fields=4)}
    got = {(ln.image, ln.question): ln.gt for pair in sub.pairs for ln in pair}
    missing = [f"{img}: {q}" for img, q in ref if (img, q) not in got]
    if missing:
        raise DataError(
            f"{path}: missing answers for {len(missing)} of {len(ref)} questions of {template}: {preview(missing)}"
        )
    extra = [f"{img}: {q}" for img, q in got if (img, q) not in ref]
    if extra:
        raise DataError(f"{path}: {len(extra)} questions are not in {template}: {preview(extra)}")
    differ = [f"{img}: {q}" for (img, q), gt in got.items() if gt.lower() != ref[(img, q)].lower()]
    if differ:
        raise DataError(f"{path}: gt differs from {template} for {preview(differ)}")


def read_mme(
    predictions: PathLike, subtasks: Sequence[str] = SUBTASKS, annotations: PathLike | None = None
) -> list[MmeSubtask]:
    """Read the selected subtasks of an MME results folder.

    Args:
        predictions: Folder of ``<subtask>.txt`` files (4 fields per line).
        subtasks: Subtasks to read, in this order.
        annotations: Optional folder of template files ``<subtask>.txt`` (``image, question, gt``); when given,
            each results file must answer exactly its questions with the same gt.

    Returns:
        One :class:`MmeSubtask` per requested subtask.

    Raises:
        DataError: Not a folder, missing subtask files (all named), malformed lines, images without exactly two
            questions, or (with ``annotations``) answers missing, extra or with another gt.
    """
    folder = Path(predictions)
    if not folder.is_dir():
        raise DataError(f"{folder}: MME predictions must be a folder of <subtask>.txt files")
    unknown = [s for s in subtasks if s not in SUBTASKS]
    if unknown:
        raise DataError(f"{folder}: unknown MME subtasks {preview(unknown)}; known: {', '.join(SUBTASKS)}")
    missing = [s for s in subtasks if not (folder / f"{s}.txt").is_file()]
    if missing:
        raise DataError(f"{folder}: missing subtask files {', '.join(f'{s}.txt' for s in missing)}")
    ref_dir = None if annotations is None else Path(annotations)
    if ref_dir is not None:
        if not ref_dir.is_dir():
            raise DataError(f"{ref_dir}: MME annotations must be a folder of <subtask>.txt template files")
        absent = [s for s in subtasks if not (ref_dir / f"{s}.txt").is_file()]
        if absent:
            raise DataError(f"{ref_dir}: missing subtask files {', '.join(f'{s}.txt' for s in absent)}")
    out = []
    for s in subtasks:
        sub = read_subtask(folder / f"{s}.txt")
        if ref_dir is not None:
            _check_against_template(sub, folder / f"{s}.txt", ref_dir / f"{s}.txt")
        out.append(sub)
    return out
