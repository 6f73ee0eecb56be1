"""Training loss curves, generated from the training logs only (never edited by hand).

``python -m evaluation.report.training_figures --results results --variants V... --out DIR``

Every ``results/<variant>/**/train_log.jsonl`` is one training stage (its folder relative to the variant:
``tokenizer``, ``stage1``, ``stage1/mask_decoder``, ``stage2``, ``semantic_codebook``, ...). Writes

* ``DIR/loss_<stage, "/" as "_">.png``: one panel per loss key of that stage (the union over the variants, ``loss``
  first), x = step, one line per variant;
* ``DIR/loss_curves.png``: the total ``loss`` of every stage, one panel a stage.

A variant keeps the same colour in every figure. A resumed run appends to its log, so a step may appear twice: the
last row of a step wins. A panel whose values are all positive and span more than two decades uses a log y axis.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.ticker import MaxNLocator

from evaluation.report.tokenizer_figures import plt, save_figure
from setok.cli import run
from setok.io import DataError

LOG_NAME = "train_log.jsonl"
NOT_LOSSES = frozenset({"step", "lr", "seconds", "max_memory_gb"})  # max_memory_gb: peak GPU memory (CUDA runs)
# The pipeline's stages in training order; any other stage found follows them alphabetically.
STAGE_ORDER = ("tokenizer", "stage1", "stage1/mask_decoder", "stage2", "semantic_codebook", "pixel_codebook",
               "pixel_finetune", "pixel_decoder")
PANEL_COLUMNS = 3


@dataclass(frozen=True)
class Series:
    """One loss key over training: the steps that logged it (ascending) and its values there."""

    steps: list[int]
    values: list[float]


@dataclass(frozen=True)
class StageLog:
    """One ``train_log.jsonl`` after de-duplication: every logged step (ascending) and each loss key's series."""

    steps: list[int]
    series: dict[str, Series]


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def read_log(path: Path) -> StageLog:
    """Read one training log; the last row of a repeated step wins, rows are ordered by step.

    Raises:
        DataError: ``<path>:<line>: ...`` for a line that is not a JSON object with an integer ``step`` and numeric
            values (a missing file is reported too).
    """
    if not path.is_file():
        raise DataError(f"{path}: training log not found")
    by_step: dict[int, dict[str, float]] = {}
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: malformed log line, not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{i}: malformed log line, expected a JSON object")
            step = row.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                raise DataError(f"{path}:{i}: malformed log line, 'step' is missing or not an integer")
            bad = sorted(k for k, v in row.items() if k not in NOT_LOSSES and not _is_number(v))
            if bad:
                raise DataError(f"{path}:{i}: malformed log line, non-numeric value for {', '.join(bad)}")
            by_step[step] = {k: float(v) for k, v in row.items() if k not in NOT_LOSSES}
    steps = sorted(by_step)
    keys: list[str] = []
    for s in steps:
        keys += [k for k in by_step[s] if k not in keys]
    series = {}
    for k in order_keys(keys):
        have = [s for s in steps if k in by_step[s]]
        series[k] = Series(have, [by_step[s][k] for s in have])
    return StageLog(steps, series)


def order_keys(keys: list[str]) -> list[str]:
    """Loss keys without repeats, in first-seen order but with the total ``loss`` first."""
    unique = list(dict.fromkeys(keys))
    return (["loss"] if "loss" in unique else []) + [k for k in unique if k != "loss"]


def stage_name(variant_dir: Path, log: Path) -> str:
    """The stage a log belongs to: its folder relative to the variant's folder (``stage1/mask_decoder``)."""
    return log.parent.relative_to(variant_dir).as_posix()


def stage_sort_key(stage: str) -> tuple[int, str]:
    return (STAGE_ORDER.index(stage), "") if stage in STAGE_ORDER else (len(STAGE_ORDER), stage)


def discover(results: Path, variant: str) -> dict[str, Path]:
    """``stage -> train_log.jsonl`` for one variant (empty when it has none), stages in training order."""
    root = results / variant
    found = {stage_name(root, p): p for p in root.rglob(LOG_NAME) if p.is_file()} if root.is_dir() else {}
    return {s: found[s] for s in sorted(found, key=stage_sort_key)}


def variant_colours(variants: list[str]) -> dict[str, Any]:
    """One colour per variant from its position in ``--variants``, so it is the same in every figure."""
    cycle = plt.get_cmap("tab10").colors
    return {v: cycle[i % len(cycle)] for i, v in enumerate(variants)}


def wants_log_scale(values: list[float]) -> bool:
    """True when every finite value is positive and they span more than two decades."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100.0


def panel_grid(n: int, *, width: float = 3.6, height: float = 2.7) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure with ``n`` panels on a grid of at most ``PANEL_COLUMNS`` columns (no unused axes left in it)."""
    cols = max(1, min(n, PANEL_COLUMNS))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    return fig, flat[:n]


def _draw(ax: plt.Axes, title: str, lines: dict[str, Series], colours: dict[str, Any]) -> None:
    """Plot one panel: a line per variant, log y when :func:`wants_log_scale` says so."""
    ax.set_title(title, fontsize=9)
    for v, s in lines.items():
        ax.plot(s.steps, s.values, color=colours[v], label=v, linewidth=1.2, marker="." if len(s.steps) < 30 else None)
    values = [x for s in lines.values() for x in s.values]
    if wants_log_scale(values):
        ax.set_yscale("log")
    if not lines:
        ax.text(0.5, 0.5, "not logged", transform=ax.transAxes, ha="center", va="center", fontsize=8)
    ax.set_xlabel("step", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def plot_stage(stage: str, logs: dict[str, StageLog], colours: dict[str, Any]) -> plt.Figure:
    """One stage's figure: a panel per loss key (the union over ``logs``' variants, ``loss`` first)."""
    keys = order_keys([k for log in logs.values() for k in log.series])
    fig, axes = panel_grid(len(keys))
    for ax, key in zip(axes, keys):
        _draw(ax, key, {v: log.series[key] for v, log in logs.items() if key in log.series}, colours)
    if axes:
        axes[0].legend(fontsize=7)
    fig.suptitle(f"{stage}: training losses", fontsize=10)
    fig.tight_layout()
    return fig


def plot_overview(stages: dict[str, dict[str, StageLog]], colours: dict[str, Any]) -> plt.Figure:
    """The total ``loss`` of every stage, one panel a stage (titled with the stage)."""
    fig, axes = panel_grid(len(stages))
    for ax, (stage, logs) in zip(axes, stages.items()):
        _draw(ax, stage, {v: log.series["loss"] for v, log in logs.items() if "loss" in log.series}, colours)
    handles = {v: plt.Line2D([], [], color=c, label=v) for v, c in colours.items()
               if any(v in logs for logs in stages.values())}
    if axes and handles:
        axes[0].legend(handles=list(handles.values()), fontsize=7)
    fig.suptitle("total training loss per stage", fontsize=10)
    fig.tight_layout()
    return fig


def figure_name(stage: str) -> str:
    return f"loss_{stage.replace('/', '_')}.png"


def collect_stages(results: Path, variants: list[str]) -> dict[str, dict[str, StageLog]]:
    """``stage -> {variant: log}`` over every variant; a variant without logs is skipped with a warning on stderr.

    Raises:
        DataError: no variant has any training log, or a log is malformed.
    """
    stages: dict[str, dict[str, StageLog]] = {}
    for v in variants:
        found = discover(results, v)
        if not found:
            print(f"warning: {results / v}: no {LOG_NAME} found, variant skipped", file=sys.stderr)
            continue
        for stage, path in found.items():
            log = read_log(path)
            if not log.steps:
                print(f"warning: {path}: empty training log, skipped", file=sys.stderr)
                continue
            stages.setdefault(stage, {})[v] = log
    if not stages:
        raise DataError(f"{results}: no {LOG_NAME} with any rows for the variants {' '.join(variants)}")
    return {s: stages[s] for s in sorted(stages, key=stage_sort_key)}


def write_figures(results: Path, variants: list[str], out: Path) -> list[Path]:
    """Write every stage's figure and the overview; returns the written paths."""
    stages = collect_stages(results, variants)
    colours = variant_colours(variants)
    written = []
    for stage, logs in stages.items():
        path = out / figure_name(stage)
        save_figure(plot_stage(stage, logs, colours), path)
        written.append(path)
    path = out / "loss_curves.png"
    save_figure(plot_overview(stages, colours), path)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.report.training_figures", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--variants", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    def job() -> None:
        for path in write_figures(args.results, args.variants, args.out):
            print(path)

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
