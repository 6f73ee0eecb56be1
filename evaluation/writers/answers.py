"""Writers of one-file text predictions: VQAv2/OK-VQA, VizWiz, GQA, SEED, MMBench, MMMU, captions, MM-Vet.

Each takes the model's raw answers keyed by the benchmark's id, checks them against the OFFICIAL reference file
(every reference id answered, no unknown id; see :func:`evaluation.writers._common.align`) and writes the format the
registered scorer reads. Answers are written RAW: the answer processing of the official pipeline (LLaVA's
EvalAIAnswerProcessor for VQA, ``rstrip('.').lower()`` for GQA, the MCQ parsers) happens in the scorers, exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evaluation.readers.caption import read_caption_references
from evaluation.readers.multiple_choice import read_mmbench, read_mmmu, read_seed
from evaluation.writers._common import PathLike, align_answers
from setok.io import DataError, read_json, write_json, write_jsonl


def _where(out: PathLike, references: PathLike) -> str:
    return f"{out} (references {references})"


def _records(path: Path, data: Any, key: str, id_field: str) -> list[Any]:
    """Ids ``record[id_field]`` of ``data[key]`` (or of ``data`` itself when it is a list)."""
    records = data.get(key) if isinstance(data, dict) else data
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty list of records{f' under {key!r}' if key else ''}")
    bad = [n for n, r in enumerate(records) if not isinstance(r, dict) or id_field not in r]
    if bad:
        raise DataError(f"{path}: records {bad[:5]} lack {id_field!r}")
    return [r[id_field] for r in records]


def write_vqa(answers: Mapping[Any, str], annotations: PathLike, out: PathLike) -> Path:
    """VQAv2 / OK-VQA: ``[{"question_id", "answer"}]`` (the EvalAI upload format the ``vqav2``/``okvqa`` scorers read).

    Args:
        answers: ``question_id -> raw answer``.
        annotations: The official annotations (``{"annotations": [...]}``) or questions (``{"questions": [...]}``)
            JSON; a questions file also serves the unannotated test-dev split.
        out: Output JSON path.

    Returns:
        ``out``. Rows follow the reference order; the ids keep the references' type (integers).
    """
    annotations = Path(annotations)
    data = read_json(annotations)
    key = "annotations" if isinstance(data, dict) and "annotations" in data else "questions"
    ids = _records(annotations, data, key, "question_id")
    pairs = align_answers(answers, ids, _where(out, annotations))
    write_json(out, [{"question_id": i, "answer": a} for i, a in pairs])
    return Path(out)


def write_vizwiz(answers: Mapping[Any, str], annotations: PathLike, out: PathLike) -> Path:
    """VizWiz-VQA: ``[{"image", "answer"}]`` keyed by image file name (``VizWiz_val_00000000.jpg``).

    Args:
        answers: ``image file name -> raw answer``.
        annotations: Official ``val.json`` / ``test.json`` (a JSON array of ``{"image", ...}``).
        out: Output JSON path.
    """
    annotations = Path(annotations)
    ids = _records(annotations, read_json(annotations), "", "image")
    pairs = align_answers(answers, ids, _where(out, annotations))
    write_json(out, [{"image": i, "answer": a} for i, a in pairs])
    return Path(out)


def write_gqa(answers: Mapping[Any, str], questions: PathLike, out: PathLike) -> Path:
    """GQA: ``[{"questionId", "prediction"}]`` (what LLaVA's ``convert_gqa_for_eval.py`` writes, minus its lowering).

    Every balanced question (``isBalanced``, the ones GQA ``eval.py`` scores) needs an answer; answers to unbalanced
    questions of the file are written too (the scorer ignores them, as ``eval.py`` does).

    Args:
        answers: ``questionId -> raw answer``.
        questions: Official questions JSON, ``{questionId: {"isBalanced": bool, ...}}``.
        out: Output JSON path.
    """
    questions = Path(questions)
    data = read_json(questions)
    if not isinstance(data, dict) or not data or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(f"{questions}: expected the official GQA questions object {{questionId: question}}")
    balanced = [k for k, v in data.items() if v.get("isBalanced")]
    others = [k for k, v in data.items() if not v.get("isBalanced")]
    pairs = align_answers(answers, balanced, _where(out, questions), optional=others)
    write_json(out, [{"questionId": i, "prediction": a} for i, a in pairs])
    return Path(out)


def write_seed(
    answers: Mapping[Any, str], annotations: PathLike, out: PathLike, *, data_type: str | None = None
) -> Path:
    """SEED-Bench-1: JSON lines ``{"question_id", "prediction"}`` (the leaderboard upload format).

    Args:
        answers: ``question_id -> raw output`` (the scorer takes its first non-blank character as the letter).
        annotations: Official ``SEED-Bench.json``.
        out: Output JSONL path.
        data_type: ``"image"`` to require only the image questions (score with ``--data-type image``); ``None`` or
            ``"all"`` (default): every question.
    """
    annotations = Path(annotations)
    questions = read_seed(annotations)
    ids = [q.id for q in questions if data_type in (None, "all") or q.data_type == data_type]
    if not ids:
        raise DataError(f"{annotations}: no questions of data_type {data_type!r}")
    chosen = set(ids)
    others = [q.id for q in questions if q.id not in chosen]  # answered video questions: written, ignored by scorer
    pairs = align_answers(answers, ids, _where(out, annotations), optional=others)
    write_jsonl(out, [{"question_id": i, "prediction": a} for i, a in pairs])
    return Path(out)


def write_mmbench(answers: Mapping[Any, str], annotations: PathLike, out: PathLike) -> Path:
    """MMBench: JSON lines ``{"index", "prediction"}``, one per TSV row (every circular copy included).

    Args:
        answers: ``index -> raw output`` for every row of the TSV (``index`` and ``index + k * 1000000``).
        annotations: Official MMBench TSV (``MMBench_DEV_EN.tsv``).
        out: Output JSONL path.
    """
    annotations = Path(annotations)
    ids = [r.index for r in read_mmbench(annotations)]
    pairs = align_answers(answers, ids, _where(out, annotations))
    write_jsonl(out, [{"index": i, "prediction": a} for i, a in pairs])
    return Path(out)


def write_mmmu(answers: Mapping[Any, str], annotations: PathLike, out: PathLike) -> Path:
    """MMMU: JSON lines ``{"id", "prediction"}`` with the raw model output (the scorer runs the official parser).

    Args:
        answers: ``id (validation_Accounting_1) -> raw output``.
        annotations: MMMU questions, JSON list or JSON lines ``{"id", "question_type", "options", "answer"}``.
        out: Output JSONL path.
    """
    annotations = Path(annotations)
    ids = [q.id for q in read_mmmu(annotations)]
    pairs = align_answers(answers, ids, _where(out, annotations))
    write_jsonl(out, [{"id": i, "prediction": a} for i, a in pairs])
    return Path(out)


def write_captions(
    answers: Mapping[Any, str], annotations: PathLike, out: PathLike, *, split: str = "test"
) -> Path:
    """Captioning (COCO, Flickr30K): the COCO results format ``[{"image_id", "caption"}]``.

    Args:
        answers: ``image_id -> caption``.
        annotations: COCO captions JSON (``captions_val2014.json``) or a Karpathy split file.
        out: Output JSON path.
        split: Karpathy split whose images are captioned (ignored for the COCO layout).

    Returns:
        ``out``; ids are written with the references' type (``COCO.loadRes`` compares ids as given).
    """
    annotations = Path(annotations)
    ids = list(read_caption_references(annotations, split))
    pairs = align_answers(answers, ids, _where(out, annotations))
    write_json(out, [{"image_id": i, "caption": a} for i, a in pairs])
    return Path(out)


def write_mmvet(answers: Mapping[Any, str], annotations: PathLike, out: PathLike) -> Path:
    """MM-Vet: the official results JSON ``{"v1_0": "answer", ...}``.

    Args:
        answers: ``id -> answer``; LLaVA's integer question ids are accepted as ``v1_<n>`` (its
            ``convert_mmvet_for_eval.py`` does that renaming).
        annotations: Official ``mm-vet.json``.
        out: Output JSON path.
    """
    annotations = Path(annotations)
    refs = read_json(annotations)
    if not isinstance(refs, dict) or not refs:
        raise DataError(f"{annotations}: expected mm-vet.json, a non-empty object of id -> question entry")
    named = {(f"v1_{k}" if isinstance(k, int) and not isinstance(k, bool) else k): v for k, v in answers.items()}
    if len(named) != len(answers):
        raise DataError(f"{_where(out, annotations)}: ids given both as n and as 'v1_n'")
    pairs = align_answers(named, list(refs), _where(out, annotations))
    write_json(out, dict(pairs))
    return Path(out)
