"""The table specs (``reports/tables.yaml``), the paper numbers (``evaluation/paper_numbers.yaml``) and where each
cell's result lives. Read by the table generator and by Snakemake (a table's rule depends on exactly its result files).

Spec of one table::

    tables:
      setok_table6:
        paper: setok                       # section of paper_numbers.yaml
        table: "6"                         # the paper's table number
        title: "..."
        lost: false                        # the extracted text lost the numbers: the paper column is all "—"
        columns: [{key: fid.fid, title: "ImageNet rFID", better: lower, digits: 2},
                  {key: info.llm, title: "LLM", kind: info}]
        rows: [{key: hard_cluster, label: "SeTok", variant: hard_cluster}, {key: titok_l_32, label: "TiTok-L-32"}]

A column key is ``benchmark.metric``: ``tokens.*`` is read from ``results/<v>/tokenizer/tokens.json`` (``*_percent``
= 100 x the fraction stored without the suffix), ``cost.*`` from ``results/<v>/cost.json``, ``info.*`` is the paper's
only, anything else from ``results/<v>/eval/<benchmark>.json`` (``metrics`` and ``ci95``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from setok.io import DataError, read_json

BETTER = ("lower", "higher")


@dataclass(frozen=True)
class Column:
    """One column of a paper table: ``key`` = ``benchmark.metric``; ``kind`` ``metric`` (paper / ours / Δ) or
    ``info`` (the paper's descriptive value only)."""

    key: str
    title: str
    kind: str = "metric"
    better: str | None = None
    digits: int = 1

    @property
    def benchmark(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def metric(self) -> str:
        return self.key.split(".", 1)[1]


@dataclass(frozen=True)
class Row:
    """One row: ``variant`` is ours (measured) or ``None`` for a model of another paper (paper numbers only)."""

    key: str
    label: str
    variant: str | None = None


@dataclass(frozen=True)
class TableSpec:
    id: str
    paper: str
    table: str
    title: str
    lost: bool
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]

    @property
    def variants(self) -> list[str]:
        """Our variants in row order (each once)."""
        return list(dict.fromkeys(r.variant for r in self.rows if r.variant))


@dataclass(frozen=True)
class PaperValue:
    value: float | str
    mark: str = ""


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{where}.{key}: missing")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise DataError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def _column(c: Any, where: str) -> Column:
    key = _need(c, "key", str, where)
    if "." not in key:
        raise DataError(f"{where}.key: {key!r} is not benchmark.metric")
    kind = c.get("kind", "info" if key.startswith("info.") else "metric")
    if kind not in ("metric", "info") or (kind == "info") != key.startswith("info."):
        raise DataError(f"{where}.kind: {kind!r} (info.* columns are kind info, the others kind metric)")
    unknown = set(c) - {"key", "title", "kind", "better", "digits"}
    if unknown:
        raise DataError(f"{where}: unknown keys {sorted(unknown)}")
    if kind == "info":
        return Column(key=key, title=_need(c, "title", str, where), kind="info")
    better = _need(c, "better", str, where)
    if better not in BETTER:
        raise DataError(f"{where}.better: {better!r} is not one of {BETTER}")
    digits = _need(c, "digits", int, where)
    if not 0 <= digits <= 6:
        raise DataError(f"{where}.digits: {digits} is not in 0..6")
    return Column(key=key, title=_need(c, "title", str, where), better=better, digits=digits)


def _row(r: Any, where: str) -> Row:
    unknown = set(r or {}) - {"key", "label", "variant"}
    if unknown:
        raise DataError(f"{where}: unknown keys {sorted(unknown)}")
    variant = r.get("variant")
    if variant is not None and not isinstance(variant, str):
        raise DataError(f"{where}.variant: expected a variant name, got {variant!r}")
    return Row(key=_need(r, "key", str, where), label=_need(r, "label", str, where), variant=variant)


def load_specs(path: str | Path) -> dict[str, TableSpec]:
    """Every table spec of ``path``, checked (a bad entry raises :class:`DataError` with its key path)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: table specs not found")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tables = data.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise DataError(f"{path}: no `tables:` mapping")
    specs = {}
    for tid, t in tables.items():
        where = f"{path}: tables.{tid}"
        columns = tuple(_column(c, f"{where}.columns[{i}]") for i, c in enumerate(_need(t, "columns", list, where)))
        rows = tuple(_row(r, f"{where}.rows[{i}]") for i, r in enumerate(_need(t, "rows", list, where)))
        for name, keys in (("columns", [c.key for c in columns]), ("rows", [r.key for r in rows])):
            dup = sorted({k for k in keys if keys.count(k) > 1})
            if dup:
                raise DataError(f"{where}.{name}: duplicate keys {dup}")
        specs[tid] = TableSpec(id=tid, paper=_need(t, "paper", str, where), table=str(_need(t, "table", (str, int),
                               where)), title=_need(t, "title", str, where), lost=bool(t.get("lost", False)),
                               columns=columns, rows=rows)
    return specs


def load_paper_numbers(path: str | Path) -> dict[tuple[str, str, str, str], PaperValue]:
    """``(paper, table, row, column) -> value`` of ``evaluation/paper_numbers.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: paper numbers file not found")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: dict[tuple[str, str, str, str], PaperValue] = {}
    for paper, section in data.items():
        for i, n in enumerate((section or {}).get("numbers", [])):
            where = f"{path}: {paper}.numbers[{i}]"
            key = (paper, str(_need(n, "table", (str, int), where)), _need(n, "row", str, where),
                   _need(n, "column", str, where))
            if key in out:
                raise DataError(f"{where}: duplicate entry for table {key[1]}, row {key[2]}, column {key[3]}")
            value = _need(n, "value", (int, float, str), where)
            out[key] = PaperValue(value=value if isinstance(value, str) else float(value), mark=str(n.get("mark", "")))
    return out


def result_file(results: str | Path, variant: str, column_key: str) -> Path | None:
    """The file holding ``column_key`` of ``variant`` (``None`` for ``info.*``, which are the paper's only)."""
    benchmark = column_key.split(".", 1)[0]
    root = Path(results) / variant
    if benchmark == "info":
        return None
    if benchmark == "tokens":
        return root / "tokenizer" / "tokens.json"
    if benchmark == "cost":
        return root / "cost.json"
    return root / "eval" / f"{benchmark}.json"


def read_ours(results: str | Path, variant: str, column: Column) -> tuple[float | None, tuple[float, float] | None]:
    """Our value of ``column`` for ``variant`` and its 95% interval (``None`` when not measured)."""
    path = result_file(results, variant, column.key)
    if path is None or not path.is_file():
        return None, None
    data = read_json(path)
    metric = column.metric
    if column.benchmark in ("tokens", "cost"):
        scale = 1.0
        if metric.endswith("_percent") and metric not in data:
            metric, scale = metric.removesuffix("_percent"), 100.0
        value = data.get(metric)
        return (None if value is None else scale * float(value)), None
    if not isinstance(data.get("metrics"), dict):
        raise DataError(f"{path}: not a result file (no `metrics`)")
    value = data["metrics"].get(metric)
    ci = (data.get("ci95") or {}).get(metric)
    return (None if value is None else float(value)), (None if ci is None else (float(ci[0]), float(ci[1])))
