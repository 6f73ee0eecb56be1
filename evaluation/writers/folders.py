"""Writers of folder-shaped text predictions: POPE (one ``<split>.jsonl`` per split) and MME (``<subtask>.txt``).

Both folders are built in a temporary sibling and renamed into place (:func:`evaluation.writers._common.atomic_dir`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation.metrics.mme import SUBTASKS
from evaluation.readers import preview
from evaluation.readers.mme import read_lines
from evaluation.readers.pope import read_pope_references, resolve_annotations
from evaluation.writers._common import PathLike, align_answers, atomic_dir, one_line
from setok.io import DataError, write_jsonl, write_text


def write_pope(
    answers: Mapping[Any, str],
    annotations: PathLike | Sequence[PathLike],
    out: PathLike,
    *,
    overwrite: bool = False,
) -> Path:
    """POPE: a folder of ``<split>.jsonl`` files, rows ``{"question_id", "text"}`` (LLaVA's answer-file fields).

    Question ids restart at 1 in every official split, so the answers are keyed by ``(split, question_id)``
    (``("adversarial", 1)``); with a single reference split a bare ``question_id`` key is accepted too.

    Args:
        answers: ``(split, question_id) -> raw answer`` (or ``question_id -> raw answer`` for one split).
        annotations: The official split files (``coco_pope_<split>.json``): one, several, or their folder; the split
            is the file stem after its last ``_``, as the ``pope`` scorer reads it.
        out: Output folder (score it with ``--predictions out``).
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        ``out``.

    Raises:
        DataError: Missing or unknown answers (named with their split), non-string answers.
    """
    refs = resolve_annotations(annotations)
    where = f"{out} (references {', '.join(str(p) for p in refs.values())})"
    split_ids = {name: read_pope_references(path)[0] for name, path in sorted(refs.items())}
    flat = [k for k in answers if not isinstance(k, tuple)]
    if flat and len(refs) > 1:
        raise DataError(f"{where}: {len(refs)} splits need (split, question_id) keys; bare ids {preview(flat)}")
    keyed = {(k if isinstance(k, tuple) else (next(iter(refs)), k)): v for k, v in answers.items()}
    expected = [(name, qid) for name, ids in split_ids.items() for qid in ids]
    pairs = align_answers(keyed, expected, where)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for name in split_ids:
            rows = [{"question_id": qid, "text": text} for (split, qid), text in pairs if split == name]
            write_jsonl(tmp / f"{name}.jsonl", rows)
    return Path(out)


def write_mme(
    answers: Mapping[tuple[str, str, str], str],
    templates: PathLike,
    out: PathLike,
    *,
    subtasks: Sequence[str] = SUBTASKS,
    overwrite: bool = False,
) -> Path:
    """MME: the ``eval_tool`` results folder, ``<subtask>.txt`` with lines ``image<TAB>question<TAB>gt<TAB>answer``.

    The lines are the templates' (``eval_tool/Your_Results/<subtask>.txt``: ``image<TAB>question<TAB>gt``) in their
    order with the model's answer appended, which is what LLaVA's ``convert_answer_to_mme.py`` produces and MME's
    ``calculation.py`` reads. Tabs and line breaks inside an answer become spaces (a tab would add a fifth field and
    a line break a line; LLaVA's converter replaces ``\\n`` the same way). The answer's first 4 characters decide
    its parse, so this only changes answers that start with a line break.

    Args:
        answers: ``(subtask, image, question) -> raw answer``, with the template's image field and question text
            (``("existence", "000000006040.jpg", "Is there a train in this image? Please answer yes or no.")``).
        templates: Folder of the official template files ``<subtask>.txt``.
        out: Output folder (score it with ``--predictions out``).
        subtasks: Subtasks to write (default all 14); score a subset with ``--subtasks``.
        overwrite: Replace an existing non-empty ``out``.

    Returns:
        ``out``.

    Raises:
        DataError: Unknown subtasks, missing template files, missing or unknown answers (named), non-string answers.
    """
    templates = Path(templates)
    unknown = [s for s in subtasks if s not in SUBTASKS]
    if unknown:
        raise DataError(f"{templates}: unknown MME subtasks {preview(unknown)}; known: {', '.join(SUBTASKS)}")
    absent = [f"{s}.txt" for s in subtasks if not (templates / f"{s}.txt").is_file()]
    if absent:
        raise DataError(f"{templates}: missing template files {', '.join(absent)}")
    lines = {s: read_lines(templates / f"{s}.txt", min_fields=3, max_fields=4) for s in subtasks}
    expected = [(s, f[0], f[1]) for s in subtasks for f in lines[s]]
    where = f"{out} (templates {templates})"
    given_subtasks = {k[0] for k in answers if isinstance(k, tuple) and len(k) == 3}
    bad_keys = [k for k in answers if not (isinstance(k, tuple) and len(k) == 3)]
    if bad_keys:
        raise DataError(f"{where}: answers must be keyed by (subtask, image, question); got {preview(bad_keys)}")
    if given_subtasks - set(subtasks):
        raise DataError(f"{where}: answers for subtasks not written: {preview(sorted(given_subtasks - set(subtasks)))}")
    pairs = dict(align_answers(answers, expected, where))
    with atomic_dir(out, overwrite=overwrite) as tmp:
        for s in subtasks:
            text = "".join(
                "\t".join([f[0], f[1], f[2], one_line(pairs[(s, f[0], f[1])])]) + "\n" for f in lines[s]
            )
            write_text(tmp / f"{s}.txt", text)
    return Path(out)
