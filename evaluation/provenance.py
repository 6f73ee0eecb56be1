"""Provenance of a result: what makes its number something other than the benchmark's score of these predictions.

The ``provenance`` object of a result JSON (:mod:`evaluation.results`) and of ``tokens.json``::

    {"grader": null | {"name": str, "model": str|null, "file": str|null, "judges_predictions": bool},
     "subset": [{"kept": int, "of": int|null, "unit": str, "by": str}, ...],
     "shortcuts": [str, ...]}

``grader``: the grader a model-judged benchmark (MM-Vet, GenAI-Bench) was scored with, ``null`` for benchmarks
without one. ``judges_predictions`` is false for grades that do not come from looking at the predictions being
scored (``precomputed``: a grade file; ``fake``: tests). ``subset``: each restriction to part of the benchmark, "kept
of N unit" (``of`` null when N is unknown). ``shortcuts``: anything else that makes the number not the benchmark's
real score, one sentence each. An empty provenance (``grader`` null, no subset, no shortcut) is a clean result.

The rule deciding what is recorded. A number is marked when something the harness knows makes it differ from what the
benchmark's protocol gives for these predictions:

* grades not judged from the predictions: always (a precomputed grader's scores do not depend on what is scored);
* a subset: fewer queries, images or subtasks than the references define (``benchmarks.<b>.limit``, MME
  ``options.subtasks``, ``eval.limit``);
* a stand-in for the benchmark's data or protocol: the tokenizer benchmarks on an evaluation set that is not ImageNet
  (``eval.dataset`` of kind ``bundled``), zero-shot top-1 over fewer or more classes than ImageNet-1k's 1000, a judge
  or scorer model other than the benchmark's official one.

Not marked, because the number is still the benchmark's own for the data it read: which metrics are computed (the
editing benchmarks' ``metrics: l1,l2`` gives the exact L1/L2; the others print "—"), a documented protocol choice
the papers use themselves (``fid_image_size``: rFID at the resolution a variant is evaluated at, 256 or 384 in the
papers; SEED's ``data_type: image``; answer-parsing rules of a reference implementation), and reference files in the
benchmark's official layout, whatever their size (the CI fixtures; their ``n`` is in the result).

Reports mark every value whose provenance is not clean with a symbol after it and explain each symbol in a legend
below the table or figure (:class:`Legend`): ``°`` grades not judged from these predictions, ``ˢ`` a subset, ``§``
a shortcut.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from setok.io import DataError, read_json

GRADES = "°"
SUBSET = "ˢ"
SHORTCUT = "§"
SYMBOLS = (GRADES, SUBSET, SHORTCUT)
LATEX_SYMBOLS = {GRADES: r"$^{\circ}$", SUBSET: r"$^{s}$", SHORTCUT: r"\S{}"}
LEGEND_TITLE = "Marked values are not a model's measured benchmark score:"
MEANINGS = {GRADES: "grades not judged from these predictions (a precomputed grade file)",
            SUBSET: "a subset of the benchmark", SHORTCUT: "a shortcut: a stand-in for its data or protocol"}


@dataclass(frozen=True)
class Subset:
    """``kept`` of ``of`` ``unit`` (``of`` ``None`` when unknown), restricted by ``by`` (a config key or option)."""

    kept: int
    of: int | None
    unit: str
    by: str

    def describe(self) -> str:
        """``"5 of 14 subtasks (options.subtasks)"``; ``"first 8 images (...)"`` when N is unknown."""
        count = f"{self.kept} of {self.of}" if self.of is not None else f"first {self.kept}"
        return f"{count} {self.unit} ({self.by})"


@dataclass
class Provenance:
    """See the module docstring; ``Provenance()`` is a clean result."""

    grader: dict[str, Any] | None = None
    subset: list[Subset] = field(default_factory=list)
    shortcuts: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not marks(self)

    def merged(self, other: Provenance | None) -> Provenance:
        """Both provenances in one (subsets and shortcuts concatenated, each once; one grader at most).

        Raises:
            DataError: Both name a grader and they differ.
        """
        if other is None:
            return self
        if self.grader is not None and other.grader is not None and self.grader != other.grader:
            raise DataError(f"two graders recorded for one result: {self.grader} and {other.grader}")
        return Provenance(grader=self.grader if self.grader is not None else other.grader,
                          subset=list(dict.fromkeys([*self.subset, *other.subset])),
                          shortcuts=list(dict.fromkeys([*self.shortcuts, *other.shortcuts])))

    def to_json(self) -> dict[str, Any]:
        return {"grader": None if self.grader is None else dict(self.grader),
                "subset": [{"kept": s.kept, "of": s.of, "unit": s.unit, "by": s.by} for s in self.subset],
                "shortcuts": list(self.shortcuts)}

    @classmethod
    def from_json(cls, obj: Any, where: str | os.PathLike[str] = "<provenance>") -> Provenance:
        """The object :meth:`to_json` writes, checked.

        Raises:
            DataError: Not that shape (naming ``where``).
        """
        if not isinstance(obj, dict) or not {"grader", "subset", "shortcuts"} <= set(obj):
            raise DataError(f"{where}: provenance must be an object with grader, subset and shortcuts")
        grader, subset, shortcuts = obj["grader"], obj["subset"], obj["shortcuts"]
        if grader is not None and not (isinstance(grader, dict) and isinstance(grader.get("name"), str)
                                       and isinstance(grader.get("judges_predictions"), bool)):
            raise DataError(f"{where}: provenance.grader must be null or an object with name and judges_predictions")
        if not isinstance(subset, list) or not all(
            isinstance(s, dict) and isinstance(s.get("kept"), int) and (s.get("of") is None or isinstance(s["of"], int))
            and isinstance(s.get("unit"), str) and isinstance(s.get("by"), str) for s in subset
        ):
            raise DataError(f"{where}: provenance.subset must be a list of {{kept, of, unit, by}}")
        if not isinstance(shortcuts, list) or not all(isinstance(s, str) for s in shortcuts):
            raise DataError(f"{where}: provenance.shortcuts must be a list of strings")
        return cls(grader=grader, subset=[Subset(s["kept"], s["of"], s["unit"], s["by"]) for s in subset],
                   shortcuts=list(shortcuts))


def read_provenance(path: str | os.PathLike[str]) -> Provenance:
    """The ``provenance`` of a JSON file (a result JSON, ``tokens.json`` or a task's limit record).

    Raises:
        DataError: Missing file, no ``provenance`` key, or a malformed one.
    """
    data = read_json(Path(path))
    if not isinstance(data, dict) or "provenance" not in data:
        raise DataError(f"{path}: no provenance object")
    return Provenance.from_json(data["provenance"], path)


# ---------------------------------------------------------------------------------------------- what gets recorded


def eval_set_provenance(cfg: Any, total: int) -> Provenance:
    """Of the tokenizer evaluation set of ``cfg`` (``eval.dataset``, ``eval.limit``), with ``total`` images before
    ``eval.limit``: a shortcut when it is not ImageNet, a subset under ``eval.limit`` or the dataset's own ``limit``."""
    name = cfg.eval.dataset
    source = cfg.datasets[name]
    out = Provenance()
    if source.kind != "imagenet":
        out.shortcuts.append(f"evaluated on the {name} images (datasets.{name}.kind = {source.kind}), "
                             "not ImageNet val")
    if source.limit is not None:
        out.subset.append(Subset(min(source.limit, total), None, "images", f"datasets.{name}.limit = {source.limit}"))
    if cfg.eval.limit is not None and cfg.eval.limit < total:
        out.subset.append(Subset(cfg.eval.limit, total, "images", f"eval.limit = {cfg.eval.limit}"))
    return out


# ---------------------------------------------------------------------------------------------- marks in reports


@dataclass(frozen=True)
class Mark:
    """One reason a value is marked: its symbol (one of :data:`SYMBOLS`) and the legend's explanation."""

    symbol: str
    text: str


def marks(p: Provenance) -> tuple[Mark, ...]:
    """The marks of a provenance, grader first (empty for a clean result)."""
    out = []
    g = p.grader
    if g is not None and not g.get("judges_predictions", False):
        what = f"precomputed grades ({g['file']})" if g.get("file") else f"grades of the {g['name']} grader"
        out.append(Mark(GRADES, f"{what}, not judged from these predictions"))
    out += [Mark(SUBSET, f"subset, {s.describe()}") for s in p.subset]
    out += [Mark(SHORTCUT, f"shortcut: {s}") for s in p.shortcuts]
    return tuple(out)


def read_marks(path: str | os.PathLike[str] | None) -> tuple[Mark, ...]:
    """The marks of a result file; none when the file does not exist or predates provenance (no such key)."""
    if path is None or not Path(path).is_file():
        return ()
    data = read_json(Path(path))
    if not isinstance(data, dict) or "provenance" not in data:
        return ()
    return marks(Provenance.from_json(data["provenance"], path))


def symbols(ms: Iterable[Mark]) -> str:
    """The distinct symbols of ``ms`` in canonical order, e.g. ``"°ˢ"`` (what is printed after a value)."""
    present = {m.symbol for m in ms}
    return "".join(s for s in SYMBOLS if s in present)


def tex_marks(text: str) -> str:
    """``text`` with the mark symbols as LaTeX."""
    for symbol, tex in LATEX_SYMBOLS.items():
        text = text.replace(symbol, tex)
    return text


class Legend:
    """The marks of one table or figure: :meth:`add` returns the symbols to print after a value and remembers why."""

    def __init__(self) -> None:
        self.entries: set[tuple[str, str, str]] = set()

    def add(self, where: str, ms: Iterable[Mark]) -> str:
        """Record ``ms`` of a value of ``where`` (the benchmark); returns its symbols ("" for none)."""
        ms = tuple(ms)
        self.entries.update((m.symbol, where, m.text) for m in ms)
        return symbols(ms)

    def lines(self) -> list[str]:
        """``"<symbol> <where>: <why>"`` per distinct reason, in a fixed order (symbol, then where, then why)."""
        ordered = sorted(self.entries, key=lambda e: (SYMBOLS.index(e[0]), e[1], e[2]))
        return [f"{symbol} {where}: {text}" for symbol, where, text in ordered]

    def markdown(self) -> str:
        """A Markdown paragraph and list (empty when nothing is marked), to follow a table's notes."""
        lines = self.lines()
        return "" if not lines else "\n" + LEGEND_TITLE + "\n\n" + "".join(f"- {x}\n" for x in lines)

    def latex(self, esc: Callable[[str], str]) -> str:
        """The legend as a footnote-size paragraph after a tabular (empty when nothing is marked); ``esc`` escapes
        text for LaTeX (the symbols are translated here)."""
        lines = self.lines()
        if not lines:
            return ""
        body = " \\\\\n".join(tex_marks(esc(x)) for x in lines)
        return f"\\par\\smallskip{{\\footnotesize {esc(LEGEND_TITLE)} \\\\\n{body}}}\n"
