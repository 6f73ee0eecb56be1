"""The benchmark registry: one :class:`Benchmark` subclass per module of :mod:`evaluation.suite`, its one home.

Adding a benchmark (vqav2, gqa, pope, ...) is one module, plus its fixture, test and config entry::

    from evaluation.registry import Benchmark, Metric, ScoreResult, register

    @register("pope")
    class Pope(Benchmark):
        help = '''POPE yes/no hallucination benchmark.

    references (--annotations): jsonl {"question_id", "answer"} ...
    predictions (--predictions): jsonl {"question_id", "text"} ...'''
        metrics = (Metric("accuracy", higher_is_better=True), Metric("f1", higher_is_better=True))
        headline = "f1"                                  # the metric the paper's tables report
        output = "text"                                  # what the model writes (image, mask: generative)
        missing_annotations = "the official split files"  # named when --annotations is absent

        @classmethod
        def task(cls, cfg):                              # the inference task from config.benchmarks[name]
            return PopeTask(cls.name, annotations=configured(cls.name, cfg, "annotations"), ...)

        @classmethod
        def check_layout(cls, lay, spec):                # the official files in place, cheaply
            ...

        def _score(self, predictions, annotations, *, n_bootstrap, seed, **opts):
            ...  # read files with evaluation.readers, compute with evaluation.metrics
            return ScoreResult(metrics={...}, n=..., rows=[...], ci95={...})

Every module in :mod:`evaluation.suite` is imported on first use of :func:`names` (and of :func:`get` with a name
that is not a module's), so nothing else has to be edited: ``build_task``, the MLLM tables, the workflow's benchmark
lists and ``python -m evaluation.layout_check`` read the class. :func:`get` of a benchmark whose module bears its
name imports that module alone, which keeps ``python -m evaluation score <benchmark>`` quick to start.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from evaluation.provenance import Provenance
from setok.io import DataError

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Metric:
    """One reported number of a benchmark.

    Attributes:
        name: Key in ``ScoreResult.metrics`` and in the result JSON.
        higher_is_better: Direction used by tables and comparisons.
        help: One line on what the number is (unit included).
    """

    name: str
    higher_is_better: bool
    help: str = ""


@dataclass
class ScoreResult:
    """What :meth:`Benchmark.score` returns.

    Attributes:
        metrics: Metric name to value (plain floats).
        n: Number of scored samples (``None`` when unknown, e.g. FID from precomputed statistics).
        rows: Per-sample scores, one dict per sample; written to ``<out stem>.samples.jsonl`` so any metric can be
            re-derived.
        ci95: Metric name to ``(low, high)`` percentile-bootstrap 95% interval; metrics without an interval are absent.
        provenance: What the scorer knows makes the metrics other than the benchmark's score of these predictions:
            its grader, a subset of the benchmark its options chose, a shortcut (:mod:`evaluation.provenance`);
            clean by default.
    """

    metrics: dict[str, float]
    n: int | None
    rows: list[dict[str, Any]]
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)


class Benchmark(ABC):
    """Base class of a registered benchmark.

    Class attributes to set in a subclass: ``help`` (documents the reference and prediction formats; shown by
    ``python -m evaluation score <name> --help``), ``metrics`` and, when they differ from the defaults,
    ``headline`` (the metric the paper's tables report; empty: the first metric of a result), ``output`` (what the
    model writes: ``text``, ``image``, ``mask`` or ``scores``; all but text and scores are generative),
    ``needs_annotations`` (with ``missing_annotations``, what ``--annotations`` names in the error when it is
    absent), ``takes_questions``, ``default_bootstrap`` and ``scoring_needs_gpu`` (its scorer runs a model: the
    workflow gives its scoring job a GPU, every other scoring job none). ``name`` is set by :func:`register`. A
    subclass implements :meth:`_score`; :meth:`score` does the checks every benchmark shares first.
    :meth:`check_layout` checks the benchmark's official files in place; :meth:`task`, on a benchmark the MLLM
    answers, builds its inference task from its config entry.
    """

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    metrics: ClassVar[tuple[Metric, ...]] = ()
    headline: ClassVar[str] = ""
    output: ClassVar[str] = "text"
    needs_annotations: ClassVar[bool] = True
    missing_annotations: ClassVar[str] = "the reference files"
    takes_questions: ClassVar[bool] = False
    default_bootstrap: ClassVar[int] = 1000
    # Whether scoring runs a model (Inception for FID, CLIP-I / DINO / LPIPS for editing, VQAScore) and so wants a
    # GPU; string matching, counting and mask IoU are seconds of CPU work. The workflow sizes score_benchmark /
    # score_tokenizer jobs by it (setok/resources.py: SCORING) and profiles/slurm picks their partition by it.
    scoring_needs_gpu: ClassVar[bool] = False

    def score(
        self,
        predictions: PathLike,
        annotations: PathLike | Sequence[PathLike] | None = None,
        *,
        questions: PathLike | None = None,
        n_bootstrap: int | None = None,
        seed: int = 0,
        **opts: Any,
    ) -> ScoreResult:
        """Score a predictions file against references: the checks every benchmark shares, then :meth:`_score`.

        Args:
            predictions: Path of the model's outputs (format in :attr:`help`).
            annotations: Path of the references (format in :attr:`help`); a list of paths where the benchmark's
                ``--annotations`` repeats (POPE's split files).
            questions: Path of the questions file, for benchmarks that take one.
            n_bootstrap: Bootstrap resamples for ``ci95``; ``None`` means :attr:`default_bootstrap`, 0 means none.
            seed: Seed of the bootstrap resampling.
            **opts: Benchmark-specific options (see :meth:`add_arguments`).

        Returns:
            The metrics, sample count, per-sample rows and intervals.

        Raises:
            setok.io.DataError: No ``annotations`` for a benchmark that :attr:`needs_annotations`
                (``<predictions>: <name> needs --annotations (<missing_annotations>)``), or an input file is missing
                or malformed (one line naming the file).
            ValueError: ``n_bootstrap`` is negative.
        """
        if self.needs_annotations and _absent(annotations):
            raise DataError(f"{predictions}: {self.name} needs --annotations ({self.missing_annotations})")
        return self._score(
            Path(predictions),
            _as_paths(annotations),
            questions=None if questions is None else Path(questions),
            n_bootstrap=self.resolve_bootstrap(n_bootstrap),
            seed=seed,
            **opts,
        )

    @abstractmethod
    def _score(
        self, predictions: Path, annotations: Path | list[Path] | None, *, n_bootstrap: int, seed: int, **opts: Any
    ) -> ScoreResult:
        """The benchmark's own scoring, called by :meth:`score` with the shared checks done.

        ``predictions`` and ``annotations`` arrive as paths (``annotations`` present when :attr:`needs_annotations`),
        ``n_bootstrap`` resolved to a count (0: no ``ci95``); ``**opts`` hold ``questions`` (a path or ``None``) and
        the benchmark's :meth:`add_arguments` options, so a subclass names only those it reads.
        """

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """Check that the official files of the config entry ``spec`` are in place (``python -m
        evaluation.layout_check --benchmark NAME``): cheaply, the named files parse with their official keys and a
        sample of the images exists. A benchmark without a check of its own only needs its configured paths to exist.

        Args:
            lay: Collects what the check looked at and words its one-line errors.
            spec: The ``benchmarks.<name>`` entry (``annotations``, ``questions``, ``images``, ``inputs``, ``options``).

        Raises:
            setok.config.ConfigError: A path the check needs is not set.
            setok.io.DataError: A file or folder is missing or malformed (``benchmark <name>: <path> ...``).
        """
        from setok.data.layout import check_configured_paths  # setok.data imports torch: only when checking

        check_configured_paths(lay, spec)

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """The inference task of this benchmark from its config entry (``config.benchmarks[name]``): its docstring
        names the config fields it reads (paths relative to the working directory, ``options`` as the scorer's flags).

        Raises:
            DataError: The benchmark has no inference task, or a needed path is unset or missing (named).
        """
        raise DataError(f"benchmark {cls.name!r} has no inference task")

    @classmethod
    def declares(cls, method: str) -> bool:
        """Whether this benchmark defines ``method`` (``"task"``, ``"check_layout"``) instead of the base's."""
        return getattr(cls, method).__func__ is not getattr(Benchmark, method).__func__

    @property
    def generative(self) -> bool:
        """Whether the model's outputs are images or masks (connector baselines that read images skip these)."""
        return self.output not in ("text", "scores")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add benchmark-specific CLI options; their values reach :meth:`score` as keyword arguments.

        Args:
            parser: The ``score <name>`` sub-parser.
        """

    @property
    def summary(self) -> str:
        """First line of :attr:`help`."""
        return self.help.strip().splitlines()[0] if self.help.strip() else ""

    def resolve_bootstrap(self, n_bootstrap: int | None) -> int:
        """Number of resamples to use given the caller's request (``None`` = this benchmark's default)."""
        n = self.default_bootstrap if n_bootstrap is None else int(n_bootstrap)
        if n < 0:
            raise ValueError(f"n_bootstrap must be >= 0, got {n}")
        return n


def _absent(annotations: PathLike | Sequence[PathLike] | None) -> bool:
    """No reference path given: ``None`` or an empty list of paths."""
    return annotations is None or (not isinstance(annotations, (str, os.PathLike)) and not list(annotations))


def _as_paths(annotations: PathLike | Sequence[PathLike] | None) -> Path | list[Path] | None:
    """``annotations`` as a :class:`~pathlib.Path`, or a list of them when several were given."""
    if annotations is None or isinstance(annotations, (str, os.PathLike)):
        return None if annotations is None else Path(annotations)
    return [Path(a) for a in annotations]


_REGISTRY: dict[str, type[Benchmark]] = {}
_LOADED = False
B = TypeVar("B", bound=type[Benchmark])


def register(name: str) -> Callable[[B], B]:
    """Class decorator adding a :class:`Benchmark` subclass to the registry under ``name``.

    Args:
        name: CLI name of the benchmark (``python -m evaluation score <name>``).

    Returns:
        The decorator; it sets ``cls.name`` and returns the class unchanged otherwise.

    Raises:
        ValueError: ``name`` is taken by another class, or the class lacks ``help`` or ``metrics``.
    """

    def decorate(cls: B) -> B:
        if not (isinstance(cls, type) and issubclass(cls, Benchmark)):
            raise TypeError(f"@register({name!r}) must decorate a Benchmark subclass")
        if name in _REGISTRY and _REGISTRY[name].__qualname__ != cls.__qualname__:
            raise ValueError(
                f"benchmark {name!r} is already registered by {_REGISTRY[name].__qualname__}"
            )
        if not cls.help.strip() or not cls.metrics:
            raise ValueError(
                f"benchmark {name!r} must define help (its file formats) and metrics"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtin() -> None:
    """Import every module of :mod:`evaluation.suite` once (and so register every benchmark)."""
    global _LOADED
    if not _LOADED:
        importlib.import_module("evaluation.suite").load_all()
        _LOADED = True


def _load_one(name: str) -> None:
    """Import the module ``evaluation.suite.<name>`` alone when it exists (it registers ``name`` by convention).

    Scoring one benchmark then imports only its module and what that imports (``python -m evaluation score vqav2``
    starts in a fraction of the time all 28 take); any other name falls back to importing every module.
    """
    if name in _REGISTRY or _LOADED or not name.isidentifier():
        return
    module = f"evaluation.suite.{name}"
    if importlib.util.find_spec(module) is not None:
        importlib.import_module(module)


def names() -> list[str]:
    """Sorted names of all registered benchmarks."""
    _load_builtin()
    return sorted(_REGISTRY)


def get(name: str) -> Benchmark:
    """A fresh instance of the benchmark registered as ``name``.

    Raises:
        KeyError: No benchmark of that name (the message lists the known ones).
    """
    _load_one(name)
    if name not in _REGISTRY:
        _load_builtin()
    if name not in _REGISTRY:
        raise KeyError(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name]()


def score(
    benchmark: str,
    predictions: PathLike,
    annotations: PathLike | None = None,
    **opts: Any,
) -> ScoreResult:
    """Score ``predictions`` with the named benchmark (``get(benchmark).score(...)``).

    Args:
        benchmark: Registered name, e.g. ``"imagenet"`` or ``"fid"``.
        predictions: Predictions path.
        annotations: References path.
        **opts: ``questions``, ``n_bootstrap``, ``seed`` and benchmark-specific options.

    Returns:
        The benchmark's :class:`ScoreResult`.
    """
    return get(benchmark).score(
        Path(predictions), None if annotations is None else Path(annotations), **opts
    )
