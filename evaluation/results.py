"""The result file contract: ``R.json`` plus per-sample scores in ``R.samples.jsonl``.

``R.json``::

    {"benchmark": str, "variant": str|null, "metrics": {name: float}, "n": int|null,
     "ci95": {name: [lo, hi]}, "checkpoint": str|null, "config_sha": str|null, "git_sha": str|null,
     "provenance": {"grader": null | {"name", "model", "file", "judges_predictions"},
                    "subset": [{"kept", "of", "unit", "by"}], "shortcuts": [str]}}

``provenance`` says what makes ``metrics`` other than the benchmark's score of these predictions
(:mod:`evaluation.provenance` has the rule): the grader of a model-judged benchmark (``judges_predictions`` false for
precomputed grades, which are always recorded), each subset ("kept of N unit": a benchmark's ``limit``, MME's
``subtasks``, ``eval.limit``) and each shortcut (a stand-in for the benchmark's data or protocol). The scorer records
what its options and grader decide; the caller adds what it alone knows (``python -m evaluation score
--provenance-from F``: a benchmark's ``limit`` written by its prediction job, the tokenizer evaluation set in
``tokens.json``). Every report marks a value whose provenance is not clean (``°`` ``ˢ`` ``§``, with a legend).
``metrics`` and ``n`` mean the same with or without marks: ``n`` counts the samples scored.

Both files are written atomically (samples first, so an existing ``R.json`` implies complete samples) and
byte-for-byte reproducibly: the same inputs give the same bytes. ``R.samples.jsonl`` is compact JSON lines with
sorted keys (``{"accuracy":1.0,"question_id":1}``, encoded by msgspec: 100K rows in tens of milliseconds).
"""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path
from typing import Any

from evaluation.provenance import Provenance
from evaluation.registry import ScoreResult
from setok.io import DataError, write_json, write_jsonl

RESULT_KEYS = (
    "benchmark",
    "variant",
    "metrics",
    "n",
    "ci95",
    "checkpoint",
    "config_sha",
    "git_sha",
    "provenance",
)


def samples_path(path: str | os.PathLike[str]) -> Path:
    """``R.json`` -> ``R.samples.jsonl`` (same folder, the result's stem)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.samples.jsonl")


def git_sha(cwd: str | os.PathLike[str] | None = None) -> str | None:
    """``git rev-parse HEAD`` of ``cwd`` (default: the working directory), or ``None`` outside a repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else None


def _finite(name: str, value: float, out: Path) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise DataError(
            f"{out}: metric {name} is {value}; refusing to write a non-finite result"
        )
    return value


def result_record(
    *,
    benchmark: str,
    variant: str | None,
    result: ScoreResult,
    checkpoint: str | None,
    config_sha: str | None,
    git_sha: str | None,
    provenance: Provenance | None = None,
    out: Path = Path("<result>"),
) -> dict[str, Any]:
    """The result JSON object (see the module docstring) for ``result``; ``provenance`` (the caller's) is merged
    into the scorer's ``result.provenance``."""
    return {
        "benchmark": benchmark,
        "variant": variant,
        "metrics": {k: _finite(k, v, out) for k, v in result.metrics.items()},
        "n": None if result.n is None else int(result.n),
        "ci95": {
            k: [_finite(k, lo, out), _finite(k, hi, out)]
            for k, (lo, hi) in result.ci95.items()
        },
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "config_sha": config_sha,
        "git_sha": git_sha,
        "provenance": result.provenance.merged(provenance).to_json(),
    }


def write_result(
    path: str | os.PathLike[str],
    *,
    benchmark: str,
    variant: str | None,
    result: ScoreResult,
    checkpoint: str | None,
    config_sha: str | None,
    provenance: Provenance | None = None,
) -> dict[str, Any]:
    """Write ``path`` (result JSON) and ``samples_path(path)`` (per-sample JSONL) atomically.

    Args:
        path: Result JSON path, e.g. ``results/eval/imagenet/setok.json``.
        benchmark: Registered benchmark name.
        variant: Model variant name (``None`` if not applicable).
        result: What the benchmark's ``score`` returned.
        checkpoint: Checkpoint path or id that produced the predictions.
        config_sha: Hash of the resolved config.
        provenance: What the caller knows beyond the scorer (a limit, the evaluation set), merged into
            ``result.provenance``.

    Returns:
        The JSON object written (``git_sha`` filled from ``git rev-parse HEAD`` of the working directory).
    """
    path = Path(path)
    record = result_record(
        benchmark=benchmark,
        variant=variant,
        result=result,
        checkpoint=checkpoint,
        config_sha=config_sha,
        git_sha=git_sha(),
        provenance=provenance,
        out=path,
    )
    write_jsonl(samples_path(path), result.rows, compact=True)
    write_json(path, record)
    return record
