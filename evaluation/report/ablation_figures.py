"""Ablation bar charts with 95% confidence intervals, generated from result files only (never edited by hand).

``python -m evaluation.report.ablation_figures --results results --variants V... --metrics benchmark.metric...
[--paper evaluation/paper_numbers.yaml --paper-section setok] --title T --out FILE.png``

One panel per ``benchmark.metric``, one bar per variant, read from

* ``results/<variant>/eval/<benchmark>.json`` (``metrics`` and ``ci95 = {metric: [low, high]}``);
* ``tokens``: the top-level keys of ``results/<variant>/tokenizer/tokens.json`` (``<key>_percent`` is 100 x
  ``<key>`` when only ``<key>`` is there, as in the tokenizer table: ``codebook_usage_percent``);
* ``cost``: the top-level keys of ``results/<variant>/cost.json``.

The 95% CI is drawn as an asymmetric error bar, the paper's number (``paper_numbers.yaml``, row = variant, column =
``benchmark.metric``) as a black tick on the bar's position, and a missing result as an empty slot labelled "—"
(never a zero-height bar). A value whose file records a provenance that is not clean (precomputed grades, a subset, a
shortcut: :mod:`evaluation.provenance`) gets its symbols above its bar and after its variant's tick label, and the
figure's footer explains each symbol.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.provenance import Legend, Mark, read_marks
from evaluation.report.table_specs import load_paper_numbers
from evaluation.report.tokenizer_figures import legend_footer, plt, save_figure
from evaluation.report.training_figures import panel_grid, variant_colours
from setok.cli import run
from setok.io import DataError, read_json

DASH = "—"
LOWER_IS_BETTER = {"fid": True, "l1": True, "l2": True, "lpips": True}


@dataclass(frozen=True)
class Row:
    """One bar: a variant's value of one ``benchmark.metric`` (None: no result), its CI and the paper's value."""

    metric: str
    variant: str
    value: float | None
    ci: tuple[float, float] | None
    paper: float | None
    marks: tuple[Mark, ...] = ()  # why the value is not a measured benchmark score (none: it is)


def split_metric(spec: str) -> tuple[str, str]:
    """``"fid.fid" -> ("fid", "fid")`` (the benchmark is everything before the first dot)."""
    benchmark, dot, metric = spec.partition(".")
    if not dot or not benchmark or not metric:
        raise DataError(f"--metrics {spec!r}: expected benchmark.metric (e.g. fid.fid or tokens.mean)")
    return benchmark, metric


def direction(spec: str) -> str:
    """The y label: "lower is better" for fid, l1, l2, lpips, else "higher is better"."""
    return "lower is better" if LOWER_IS_BETTER.get(split_metric(spec)[1].lower(), False) else "higher is better"


def load_paper(path: Path, section: str, table: str | None = None) -> dict[tuple[str, str], float]:
    """``(row, "benchmark.metric") -> value`` from one section of ``paper_numbers.yaml`` (only table ``table``'s
    numbers when given: a row's metric can differ between tables); text values are left out.

    Raises:
        DataError: the file is missing or an entry is malformed (see :func:`load_paper_numbers`).
    """
    out: dict[tuple[str, str], float] = {}
    for (paper, t, row, column), p in load_paper_numbers(path).items():
        if paper == section and (table is None or t == table) and not isinstance(p.value, str):
            out.setdefault((row, column), float(p.value))
    return out


def _number(value: Any, where: Path, key: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise DataError(f"{where}: {key!r} is {type(value).__name__}, expected a number")
    return float(value)


def _interval(value: Any, where: Path, key: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise DataError(f"{where}: ci95[{key!r}] must be [low, high]")
    low, high = (_number(x, where, f"ci95.{key}") for x in value)
    return None if low is None or high is None else (low, high)


def result_path(results: Path, variant: str, spec: str) -> Path:
    """The file holding ``benchmark.metric`` of a variant (``tokens.json``, ``cost.json`` or its result JSON)."""
    benchmark = split_metric(spec)[0]
    if benchmark in ("tokens", "cost"):
        return results / variant / ("tokenizer/tokens.json" if benchmark == "tokens" else "cost.json")
    return results / variant / "eval" / f"{benchmark}.json"


def read_result(results: Path, variant: str, spec: str) -> tuple[float | None, tuple[float, float] | None]:
    """A variant's value of ``benchmark.metric`` and its 95% CI; (None, None) when the file or metric is missing."""
    benchmark, metric = split_metric(spec)
    path = result_path(results, variant, spec)
    if benchmark in ("tokens", "cost"):
        if not path.is_file():
            return None, None
        data = read_json(path)
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected a JSON object")
        if metric not in data and metric.endswith("_percent") and metric.removesuffix("_percent") in data:
            fraction = _number(data[metric.removesuffix("_percent")], path, metric.removesuffix("_percent"))
            return (None if fraction is None else 100.0 * fraction), None
        return _number(data.get(metric), path, metric), None
    if not path.is_file():
        return None, None
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise DataError(f"{path}: expected a JSON object with a 'metrics' object")
    value = _number(data["metrics"].get(metric), path, f"metrics.{metric}")
    ci95 = data.get("ci95") or {}
    if not isinstance(ci95, dict):
        raise DataError(f"{path}: 'ci95' must be an object")
    return value, (None if value is None else _interval(ci95.get(metric), path, metric))


def collect(results: Path, variants: list[str], metrics: list[str], paper: dict[tuple[str, str], float]) -> list[Row]:
    """Every (metric, variant) bar, metrics in the given order and variants in the given order within each."""
    rows = []
    for spec in metrics:
        for v in variants:
            value, ci = read_result(results, v, spec)
            marks = read_marks(result_path(results, v, spec)) if value is not None else ()
            rows.append(Row(spec, v, value, ci, paper.get((v, spec)), marks))
    return rows


def error_extent(value: float, ci: tuple[float, float]) -> tuple[float, float]:
    """The error bar below and above the value: ``(value - low, high - value)``, clipped at 0 when the value falls
    outside its own interval (a biased estimator such as FID on few images)."""
    return max(0.0, value - ci[0]), max(0.0, ci[1] - value)


def draw_panel(ax: plt.Axes, spec: str, rows: list[Row], colours: dict[str, Any], legend: Legend | None = None
               ) -> None:
    """One metric: a bar per variant with a measured value (plus its CI), an empty "—" slot for a missing one, the
    paper's number as a black tick at the variant's position, and a marked value's symbols above its bar and after
    its tick label (the reasons go to ``legend``)."""
    legend = Legend() if legend is None else legend
    symbols = [legend.add(split_metric(spec)[0], r.marks) for r in rows]
    xs = list(range(len(rows)))
    have = [(x, r) for x, r in zip(xs, rows) if r.value is not None]
    if have:
        ax.bar([x for x, _ in have], [r.value for _, r in have], color=[colours[r.variant] for _, r in have],
               width=0.7, label="ours")
    ci = [(x, r) for x, r in have if r.ci is not None]
    if ci:
        extents = [error_extent(r.value, r.ci) for _, r in ci]
        ax.errorbar([x for x, _ in ci], [r.value for _, r in ci],
                    yerr=[[e[0] for e in extents], [e[1] for e in extents]], fmt="none", ecolor="black",
                    elinewidth=1.0, capsize=4, label="95% CI")
    paper = [(x, r) for x, r in zip(xs, rows) if r.paper is not None]
    if paper:
        ax.plot([x for x, _ in paper], [r.paper for _, r in paper], linestyle="none", marker="_", markersize=22,
                markeredgewidth=2.5, color="black", label="paper")
    for x, r in zip(xs, rows):
        if r.value is None:
            ax.text(x, 0.03, DASH, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=14,
                    color="0.4")
    for x, r, sym in zip(xs, rows, symbols):
        if sym:
            top = max(r.value, r.ci[1]) if r.ci is not None else r.value
            ax.text(x, top, sym, ha="center", va="bottom", fontsize=12, color="firebrick")
    ax.set_xticks(xs, [r.variant + sym for r, sym in zip(rows, symbols)], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_title(spec, fontsize=9)
    ax.set_ylabel(direction(spec), fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="y", alpha=0.3)
    if ci or paper:
        ax.legend(fontsize=6, loc="best")


def plot(rows: list[Row], metrics: list[str], variants: list[str], title: str) -> plt.Figure:
    """The whole figure: one panel per metric (in ``metrics`` order), variants coloured as in the loss curves."""
    colours = variant_colours(variants)
    legend = Legend()
    fig, axes = panel_grid(len(metrics), width=max(2.8, 1.0 + 0.6 * len(variants)), height=3.4)
    for ax, spec in zip(axes, metrics):
        draw_panel(ax, spec, [r for r in rows if r.metric == spec], colours, legend)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    legend_footer(fig, legend)
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.ablation_figures", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--metrics", nargs="+", required=True, help="benchmark.metric, e.g. fid.fid tokens.mean")
    ap.add_argument("--paper", type=Path, default=None, help="evaluation/paper_numbers.yaml (no paper ticks if absent)")
    ap.add_argument("--paper-section", default="setok", help="the paper's section in --paper (setok, semhitok)")
    ap.add_argument("--paper-table", help="only this table's numbers of the section (e.g. 6)")
    ap.add_argument("--title", default="")
    ap.add_argument("--out", type=Path, required=True, help="FILE.png")
    args = ap.parse_args(argv)

    def job() -> None:
        for spec in args.metrics:
            split_metric(spec)
        paper = load_paper(args.paper, args.paper_section, args.paper_table) if args.paper else {}
        rows = collect(args.results, args.variants, args.metrics, paper)
        save_figure(plot(rows, args.metrics, args.variants, args.title), args.out)
        print(args.out)

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
