"""Run the shipped lmms-eval tasks on local datasets and turn lmms-eval's logged samples into OUR prediction files.

lmms-eval's numbers use lmms-eval's metrics (fractions in [0, 1]; POPE's yes-ratio counts reference yeses, GQA
ignores case and punctuation, ...). For the papers' numbers, write the logged answers with
:func:`write_predictions` and score them with the registered scorers (``evaluation.registry.get(name).score``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.lmms import TASKS_DIR
from evaluation.readers import preview
from evaluation.writers import write_gqa, write_mme, write_pope, write_vqa
from evaluation.writers._common import PathLike
from setok.io import DataError, read_jsonl


def _pope_key(doc: Mapping[str, Any]) -> Any:
    return (doc["category"], doc["question_id"])


def _mme_key(doc: Mapping[str, Any]) -> Any:
    # lmms-lab/MME's question_id is the image's path inside its subtask folder; the templates hold its file name.
    return (doc["category"], posixpath.basename(str(doc["question_id"])), doc["question"])


@dataclass(frozen=True)
class TaskSpec:
    """How a shipped task's logged answers become our prediction file.

    Attributes:
        key: Document (dataset row) -> the id the writer expects.
        writer: The :mod:`evaluation.writers` function.
        scorer: Registered scorer name.
        split: The dataset split the task YAML reads (``test_split``).
    """

    key: Callable[[Mapping[str, Any]], Any]
    writer: Callable[..., Path]
    scorer: str
    split: str


TASKS: dict[str, TaskSpec] = {
    "setok_pope": TaskSpec(_pope_key, write_pope, "pope", "test"),
    "setok_mme": TaskSpec(_mme_key, write_mme, "mme", "test"),
    "setok_vqav2_val": TaskSpec(lambda doc: doc["question_id"], write_vqa, "vqav2", "validation"),
    "setok_gqa": TaskSpec(lambda doc: doc["id"], write_gqa, "gqa", "testdev"),
}


def task_manager(*, include_defaults: bool = False) -> Any:
    """An lmms-eval ``TaskManager`` that indexes the shipped tasks (``evaluation/lmms/tasks``).

    Args:
        include_defaults: Also index lmms-eval's ~300 built-in task folders (slow: seconds); the shipped tasks
            reference lmms-eval's task functions by import path and do not need them.
    """
    from lmms_eval.tasks import TaskManager

    return TaskManager("WARNING", include_path=str(TASKS_DIR), include_defaults=include_defaults)


def evaluate(
    model: Any,
    datasets: Mapping[str, PathLike],
    *,
    model_args: str = "",
    batch_size: int = 1,
    limit: int | float | None = None,
    bootstrap_iters: int = 0,
    **kwargs: Any,
) -> dict[str, Any]:
    """``lmms_eval.evaluator.simple_evaluate`` on shipped tasks, each reading the local dataset given for it.

    Args:
        model: An :class:`evaluation.lmms.model.Answerer` (wrapped in ``setok_harness``), an lmms-eval model
            instance, or a registered model name (then ``model_args`` applies, e.g. ``"answerer=pkg.mod:make"``).
        datasets: Task name (``setok_pope``, ...) to the folder written by ``DatasetDict.save_to_disk``.
        model_args: lmms-eval model argument string, for a model name.
        batch_size: Prompts per Answerer call.
        limit: lmms-eval's per-task document limit (for trials).
        bootstrap_iters: lmms-eval's stderr bootstrap (0: none; our scorers give the intervals).
        **kwargs: Passed to ``simple_evaluate`` (``log_samples`` defaults to True: :func:`write_predictions`
            needs the samples).

    Returns:
        lmms-eval's results dict (``results``, ``samples``, ``configs``, ...).
    """
    from lmms_eval.api.model import lmms
    from lmms_eval.evaluator import simple_evaluate

    from evaluation.lmms.model import SetokHarness

    unknown = [t for t in datasets if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown tasks {unknown}; shipped: {', '.join(TASKS)}")
    missing = [str(p) for p in datasets.values() if not Path(p).is_dir()]
    if missing:
        raise DataError(f"{missing[0]}: dataset folder not found (expected a DatasetDict.save_to_disk folder)")
    if not isinstance(model, (str, lmms)):
        model = SetokHarness(answerer=model, batch_size=batch_size)
    tasks = [{"task": name, "dataset_path": str(Path(path).resolve())} for name, path in datasets.items()]
    kwargs.setdefault("log_samples", True)
    return simple_evaluate(
        model=model, model_args=model_args, tasks=tasks, task_manager=task_manager(), batch_size=batch_size,
        limit=limit, bootstrap_iters=bootstrap_iters, **kwargs,
    )


def logged_answers(task: str, samples: Sequence[Mapping[str, Any]]) -> dict[Any, str]:
    """The model's (filtered) answer per document of an lmms-eval run, keyed as the task's writer expects.

    Args:
        task: Shipped task name.
        samples: ``results["samples"][task]`` of a run with ``log_samples=True`` (each with its ``doc``), or the
            output of :func:`load_logged_samples`.

    Raises:
        DataError: Unknown task, no samples, or two documents with the same key.
    """
    if task not in TASKS:
        raise DataError(f"{task}: not a shipped task ({', '.join(TASKS)})")
    if not samples:
        raise DataError(f"{task}: no logged samples (run with log_samples=True)")
    key = TASKS[task].key
    out: dict[Any, str] = {}
    dups = []
    for s in samples:
        k = key(s["doc"])
        if k in out:
            dups.append(k)
        resp = s["filtered_resps"]
        out[k] = resp[0] if isinstance(resp, list) else resp
    if dups:
        raise DataError(f"{task}: {len(dups)} documents share an id: {preview(dups)}")
    return out


def load_logged_samples(task: str, samples_file: PathLike, dataset: PathLike) -> list[dict[str, Any]]:
    """Samples of a CLI run (``--log_samples`` writes ``<date>_samples_<task>.jsonl``) with their documents restored.

    lmms-eval drops ``doc`` when it saves samples, keeping ``doc_id``: the row of the task's split, so the row is
    read back from the same local dataset (image columns left out).

    Args:
        task: Shipped task name.
        samples_file: The saved samples JSONL.
        dataset: The ``save_to_disk`` folder the run read.

    Raises:
        DataError: Unknown task, a sample without ``doc_id``/``filtered_resps``, or a ``doc_id`` outside the split.
    """
    import datasets

    if task not in TASKS:
        raise DataError(f"{task}: not a shipped task ({', '.join(TASKS)})")
    rows = read_jsonl(samples_file)
    needed = {"doc_id", "filtered_resps"}
    bad = [n for n, r in enumerate(rows, 1) if not (isinstance(r, dict) and needed <= set(r))]
    if bad:
        raise DataError(f"{samples_file}: lines {preview(bad)} lack doc_id or filtered_resps")
    split = datasets.load_from_disk(str(dataset))[TASKS[task].split]
    split = split.select_columns([c for c, f in split.features.items() if not isinstance(f, datasets.Image)])
    outside = [r["doc_id"] for r in rows if not 0 <= int(r["doc_id"]) < len(split)]
    if outside:
        raise DataError(f"{samples_file}: doc_ids {preview(outside)} are not rows of {dataset} ({len(split)} rows)")
    return [{**r, "doc": split[int(r["doc_id"])]} for r in rows]


def write_predictions(
    task: str,
    results: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    references: PathLike,
    out: PathLike,
    **opts: Any,
) -> tuple[Path, str]:
    """Write a run's answers for ``task`` in the official format our scorer reads.

    Args:
        task: Shipped task name.
        results: What :func:`evaluate` returned, or the task's samples (e.g. from :func:`load_logged_samples`).
        references: The official references the writer checks the ids against (POPE split files/folder, MME
            templates folder, VQAv2 annotations, GQA questions).
        out: Output path (a folder for POPE and MME).
        **opts: Writer options (e.g. ``subtasks=[...]`` for MME, ``overwrite=True``).

    Returns:
        ``(written path, scorer name)``: score with ``evaluation.registry.get(name).score(path, references)``
        (GQA: ``questions=references``).
    """
    samples = results.get("samples", {}).get(task) if isinstance(results, Mapping) else results
    answers = logged_answers(task, samples or [])
    spec = TASKS[task]
    return spec.writer(answers, references, out, **opts), spec.scorer
