"""What the data loaders must deliver: images per second per GPU and per data worker at the planned step time.

The planned throughput of a stage is the ``samples/s/GPU`` column of docs/scaling.md's generated "Throughput and
GPU-hours" table (``benchmarks/scaling_plan.py``, kept current by tests/test_scaling_plan.py); the CPUs of a
training node are docs/cluster.md's resource table. Both are read from those files so that this benchmark follows
them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from setok.io import DataError


def _rows(text: str, header_start: str) -> list[list[str]]:
    """The body rows of the first markdown table whose header row starts with ``header_start``."""
    lines = text.splitlines()
    for n, line in enumerate(lines):
        if line.startswith(header_start):
            rows = []
            for row in lines[n + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    return []


@dataclass(frozen=True)
class Plan:
    """A stage's planned pace: ``per_gpu`` samples/s at ``batch`` images per step on ``gpus`` GPUs."""

    stage: str
    batch: int
    per_gpu: float
    gpus: int = 8

    @property
    def step_seconds(self) -> float:
        """Seconds per optimizer step on ``gpus`` GPUs (compute only, as planned)."""
        return self.batch / (self.gpus * self.per_gpu)

    def per_worker(self, workers: int) -> float:
        """Images per second each of ``workers`` data workers of a GPU must deliver."""
        return self.per_gpu / workers


def planned(path: Path, stage: str) -> Plan:
    """The ``stage`` row (``tokenizer``, ``tokenizer (skewed clusters)``, ...) of docs/scaling.md's throughput table.

    Raises:
        DataError: the file, the table or the row is missing, or its numbers do not parse.
    """
    if not path.is_file():
        raise DataError(f"{path}: not found")
    rows = _rows(path.read_text(encoding="utf-8"), "| stage | steps x batch | GPUs | positions/s/GPU | samples/s/GPU")
    row = next((r for r in rows if r[0] == stage), None)
    if row is None:
        raise DataError(f"{path}: no row {stage!r} in the 'Throughput and GPU-hours' table")
    try:
        batch = int(row[1].split("x")[1].replace(",", ""))
        return Plan(stage=stage, batch=batch, per_gpu=float(row[4].replace(",", "")))
    except (IndexError, ValueError):
        raise DataError(f"{path}: row {stage!r} of the throughput table does not parse ({' | '.join(row)})") from None


def node_cpus(path: Path, rule: str = "train_tokenizer") -> tuple[int, int]:
    """``(GPUs, CPUs)`` per node of the Slurm row naming ``rule`` in docs/cluster.md's resource table.

    Raises:
        DataError: the file, the row or its numbers are missing.
    """
    if not path.is_file():
        raise DataError(f"{path}: not found")
    rows = _rows(path.read_text(encoding="utf-8"), "| rules | nodes x GPUs | CPUs per node")
    row = next((r for r in rows if f"`{rule}`" in r[0]), None)
    try:
        return int(row[1].split("x")[1]), int(row[2])
    except (TypeError, IndexError, ValueError):
        raise DataError(f"{path}: no row for `{rule}` with 'nodes x GPUs' and 'CPUs per node' in the resource "
                        "table") from None
