"""The inference contract of a benchmark: the queries a model answers, and the writer its answers go through.

A :class:`Query` is one model input read from the benchmark's OFFICIAL files (question + image, caption prompt, edit
instruction + input image, referring expression + image). A :class:`Task` lists them and turns the model's outputs,
keyed by :attr:`Query.id`, into the official prediction file with the benchmark's writer
(:mod:`evaluation.writers`), which checks the ids and writes atomically.

``limit`` (``BenchmarkConfig.limit``) keeps the first N queries. The scorers need exactly one prediction per reference
id, so a limited task writes a SUBSET REFERENCE next to the predictions: ``write(outputs, out)`` puts the reference
files restricted to the kept queries in ``<out>.references/`` and :meth:`BenchmarkTask.references` names them (score
with those ``--annotations`` / ``--questions`` instead of the configured ones). The alternative, refusing ``limit``,
would leave no cheap way to run a paper-scale benchmark partially; the subset keeps the official file layout, so
the same scorer reads it unchanged. Beside them, ``<out>.references/provenance.json`` records the subset ("kept of N
queries", :mod:`evaluation.provenance`) for the score job (``--provenance-from``), so every report marks the result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from evaluation.provenance import Provenance, Subset
from setok.io import DataError, write_json

if TYPE_CHECKING:
    from setok.config import BenchmarkConfig

QueryKind = Literal["answer", "caption", "generate", "edit", "segment"]
SUBSET_SUFFIX = ".references"
PROVENANCE_FILE = "provenance.json"


@dataclass(frozen=True)
class Query:
    """One model input.

    Attributes:
        id: The benchmark's own id, what the writer keys on (VQA ``question_id``, POPE ``(split, question_id)``,
            MME ``(subtask, image, question)``, the editing target's relative path, RefCOCO ``sent_id`` ...).
        kind: ``answer`` / ``caption`` (text out), ``generate`` (image out, no input image), ``edit`` (image out),
            ``segment`` (a bool ``(H, W)`` mask out, at the input image's size).
        prompt: The user text with the benchmark's prompt convention applied (module constants cite the source).
        image: The input image, or ``None`` for text-to-image.
        max_new_tokens: Text generation budget.
    """

    id: Any
    kind: QueryKind
    prompt: str
    image: Path | None
    max_new_tokens: int = 16


class Task(Protocol):
    """A benchmark's inference side (built by :func:`evaluation.tasks.build_task`)."""

    name: str

    def queries(self) -> list[Query]:
        """The queries to answer, in reference order (the first ``limit`` when a limit is set)."""
        ...

    def write(self, outputs: Mapping[Any, Any], out: Path) -> Path:
        """Write ``outputs`` (``id -> str | PIL.Image | bool (H, W) array``) as the official prediction file."""
        ...


def subset_dir(out: Path) -> Path:
    """Folder of the subset references of a limited task: ``<out>.references`` beside the predictions ``out``."""
    out = Path(out)
    return out.parent / f"{out.name}{SUBSET_SUFFIX}"


def require(path: str | Path | None, key: str, *, folder: bool = False) -> Path:
    """A configured path that must exist.

    Args:
        path: The configured value (``None`` when unset).
        key: Its config key, ``benchmarks.<name>.<field>``, named in the error.
        folder: Whether it must be a folder (else a file or a folder).

    Raises:
        DataError: Unset, or missing on disk (one line naming the key or the path).
    """
    if path is None:
        raise DataError(f"{key}: not set (the model's inputs need it)")
    p = Path(path)
    if folder and not p.is_dir():
        raise DataError(f"{p}: folder not found ({key})")
    if not p.exists():
        raise DataError(f"{p}: file not found ({key})")
    return p


def configured(name: str, cfg: BenchmarkConfig, field: str, *, folder: bool = False) -> Path:
    """The configured path ``cfg.<field>`` of benchmark ``name``, which must exist (see :func:`require`)."""
    return require(getattr(cfg, field), f"benchmarks.{name}.{field}", folder=folder)


def check_images(queries: Sequence[Query]) -> None:
    """Every query image must be a file.

    Raises:
        DataError: ``<first missing path>: image file not found`` (with the count of the others), one line.
    """
    paths = list(dict.fromkeys(q.image for q in queries if q.image is not None))
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more of {len(paths)} images)" if len(missing) > 1 else ""
        raise DataError(f"{missing[0]}: image file not found{more}")


class BenchmarkTask(ABC):
    """Shared behaviour of every task: cached loading, ``limit``, image checks, subset references.

    Subclasses implement :meth:`load` (all queries), :meth:`configured_references`, :meth:`write_subset` (the
    reference files restricted to the kept queries) and :meth:`write_predictions` (the writer call).
    """

    def __init__(self, name: str, *, limit: int | None = None) -> None:
        """Args: name: The benchmark name. limit: Keep the first ``limit`` queries (``None``: all).

        Raises:
            DataError: ``limit`` below 1.
        """
        if limit is not None and limit < 1:
            raise DataError(f"benchmarks.{name}.limit: must be >= 1, got {limit}")
        self.name = name
        self.limit = limit
        self._queries: list[Query] | None = None

    # ------------------------------------------------------------------------------------------- to implement

    @abstractmethod
    def load(self) -> list[Query]:
        """Every query of the benchmark, in reference order (read from the official files)."""

    @abstractmethod
    def configured_references(self) -> dict[str, Path]:
        """The scorer's reference flags for the full benchmark: ``{"annotations": ..., ["questions": ...]}``."""

    @abstractmethod
    def write_subset(self, kept: list[Query], folder: Path) -> dict[str, Path]:
        """Write the references restricted to ``kept`` under ``folder``; return them as :meth:`references` does."""

    @abstractmethod
    def write_predictions(self, outputs: Mapping[Any, Any], out: Path, references: dict[str, Path]) -> Path:
        """Call the benchmark's writer against ``references``; returns ``out``."""

    # ------------------------------------------------------------------------------------------- shared

    def all_queries(self) -> list[Query]:
        """:meth:`load`, read once."""
        if self._queries is None:
            self._queries = self.load()
            if not self._queries:
                raise DataError(f"benchmarks.{self.name}: the official files hold no query")
        return self._queries

    def select(self, queries: list[Query]) -> list[Query]:
        """The queries kept under ``limit`` (the first ``limit``; MME overrides this)."""
        return queries if self.limit is None else queries[: self.limit]

    def queries(self) -> list[Query]:
        """The queries to answer (after ``limit``); every image is checked to exist.

        Raises:
            DataError: A malformed official file or a missing image (one line naming the path).
        """
        kept = self.select(self.all_queries())
        check_images(kept)
        return kept

    def references(self, out: Path) -> dict[str, Path]:
        """The ``--annotations`` / ``--questions`` to score ``out`` with.

        The configured files without ``limit``; with it, the subset files that :meth:`write` puts in
        ``<out>.references/`` (their names do not depend on the data, so a workflow can plan them).
        """
        if self.limit is None:
            return self.configured_references()
        return self.subset_paths(subset_dir(out))

    def provenance_record(self, out: Path) -> Path | None:
        """Where :meth:`write` records the subset of a limited task (``None`` without ``limit``)."""
        return None if self.limit is None else subset_dir(out) / PROVENANCE_FILE

    def subset_paths(self, folder: Path) -> dict[str, Path]:
        """Where :meth:`write_subset` writes under ``folder``: the configured names, moved into ``folder``."""
        return {k: folder / p.name for k, p in self.configured_references().items()}

    def write(self, outputs: Mapping[Any, Any], out: Path) -> Path:
        """Write the model's outputs as the official prediction file (and the subset references under ``limit``).

        Args:
            outputs: ``query id -> output``: ``str`` for answer/caption, a PIL image for generate/edit, a bool
                ``(H, W)`` mask at the input image's size for segment.
            out: The predictions file or folder the scorer reads (``results/<variant>/predictions/<name>``).

        Returns:
            ``out``.

        Raises:
            DataError: Missing, unknown or malformed outputs (the writer's one-line message).
        """
        out = Path(out)
        if self.limit is None:
            refs = self.configured_references()
        else:
            queries = self.all_queries()
            kept = self.select(queries)
            refs = self.write_subset(kept, subset_dir(out))
            subset = Subset(len(kept), len(queries), "queries", f"benchmarks.{self.name}.limit = {self.limit}")
            record = self.provenance_record(out)
            assert record is not None
            write_json(record, {"provenance": Provenance(subset=[subset]).to_json()})
        return self.write_predictions(outputs, out, refs)
