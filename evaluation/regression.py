"""Regression baselines: every number the smoke run writes, compared with a committed baseline file.

``python -m evaluation.regression write [--results results] [--baselines reports/baselines/smoke.json]
[--config config/ci.yaml]`` (``make baselines``) and ``python -m evaluation.regression check [--results results]
[--baselines reports/baselines/smoke.json]`` (``make regression``).

What is read from ``--results`` (the benchmark is the name on the left):

* ``<benchmark>``: ``<variant>/eval/<benchmark>.json``, its ``metrics`` and ``n`` (other keys are ignored);
* ``tokens``: ``<variant>/tokenizer/tokens.json``, its numeric top-level statistics (mean tokens per image, ...);
* ``cost``: ``<variant>/cost.json``, its numeric top-level statistics (TFLOPs and tokens per image).

``write`` records one value per variant x benchmark x metric, each result's ``n``, the tolerance rule and where the
numbers came from, as key-sorted JSON (the same results give the same bytes; the git diff is the review). ``check``
prints one table of everything that moved beyond tolerance, changed ``n``, is missing or has no baseline, and exits
1; it exits 0 only when every baselined value is present and within tolerance. Bad input (no results, a malformed
file) is one line ``error: <file>: <problem>`` and exit 2. Why the tolerance is what it is: docs/regression.md.
"""
from __future__ import annotations

import argparse
import fnmatch
import platform
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evaluation.report.table_specs import result_file
from evaluation.results import git_sha
from setok.cli import run
from setok.io import DataError, read_json, write_json

RULE = "a metric passes when |now - baseline| <= abs + rel * |baseline|; n must be equal"


@dataclass(frozen=True)
class Tolerance:
    """How far a metric may move: ``abs + rel * |baseline|``, for the metrics whose ``benchmark.metric`` matches
    the glob ``match``."""

    match: str
    abs: float
    rel: float

    def allowed(self, baseline: float) -> float:
        return self.abs + self.rel * abs(baseline)


# First match wins (measurements and reasoning: docs/regression.md). FID and pixel L1/L2 are computed from continuous
# pixels and features, so they carry the CPU kernels' rounding: AVX2 instead of AVX-512 kernels moved them by 2.6e-5
# relative at most, 10x under this tolerance, while removing SeTok's positional encoding moves rFID by 2.7e-3, 10x over
# it. Every other number counts discrete decisions (argmax, greedy text, cluster sizes, thresholded masks, FLOPs) and
# was bit-identical across kernel paths and thread counts, so any change is real.
CONTINUOUS = 2.5e-4
TOLERANCES = (
    Tolerance("*.fid*", abs=1e-9, rel=CONTINUOUS),
    Tolerance("*.l1", abs=1e-9, rel=CONTINUOUS),
    Tolerance("*.l2", abs=1e-9, rel=CONTINUOUS),
    Tolerance("*", abs=1e-9, rel=1e-9),
)


@dataclass(frozen=True)
class Measured:
    """The numbers of one result file."""

    path: Path
    n: int | None
    metrics: dict[str, float]
    git_sha: str | None = None  # the commit that wrote it (result JSONs record it)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_eval(path: Path) -> Measured:
    data = read_json(path)
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict) or not all(_is_number(v) for v in metrics.values()):
        raise DataError(f"{path}: expected a result JSON with a 'metrics' object of numbers")
    n = data.get("n")
    if n is not None and not _is_number(n):
        raise DataError(f"{path}: 'n' is {n!r}, expected an integer or null")
    sha = data.get("git_sha")
    return Measured(path, n, {k: float(v) for k, v in metrics.items()}, sha if isinstance(sha, str) else None)


def _read_statistics(path: Path) -> Measured:
    data = read_json(path)
    if not isinstance(data, dict) or not _is_number(data.get("n")):
        raise DataError(f"{path}: expected a JSON object with an integer 'n'")
    metrics = {k: float(v) for k, v in data.items() if k != "n" and _is_number(v)}
    return Measured(path, int(data["n"]), metrics)


# (glob under the results folder, where the benchmark name is, reader): see the module docstring.
SOURCES = (
    ("*/eval/*.json", lambda p: p.stem, _read_eval),
    ("*/tokenizer/tokens.json", lambda p: "tokens", _read_statistics),
    ("*/cost.json", lambda p: "cost", _read_statistics),
)


def collect(results: Path) -> dict[tuple[str, str], Measured]:
    """``(variant, benchmark) -> Measured`` of every result file under ``results``; an absent or empty folder is a
    :class:`DataError` (a check with nothing to compare must never pass)."""
    if not results.is_dir():
        raise DataError(f"{results}: results folder not found; run `make smoke` first")
    found = {}
    for pattern, benchmark, read in SOURCES:
        for path in sorted(results.glob(pattern)):
            found[(path.relative_to(results).parts[0], benchmark(path))] = read(path)
    if not found:
        raise DataError(f"{results}: no result files ({', '.join(p for p, _, _ in SOURCES)}); run `make smoke` first")
    return found


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(results: Path, measured: dict[tuple[str, str], Measured], config: Path) -> dict[str, Any]:
    """Where the numbers came from. The git shas are the ones the result files recorded and the date is the newest
    result file's modification time, so rewriting from the same results gives the same bytes; torch and the CPU are
    this process's (``make baselines`` runs where ``make smoke`` ran)."""
    import torch

    shas = sorted({m.git_sha for m in measured.values() if m.git_sha})
    newest = max(m.path.stat().st_mtime for m in measured.values())
    return {
        "results_folder": str(results),
        "git_sha": shas or [git_sha()],
        "config": str(config),
        "torch": torch.__version__,
        "cpu": _cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "date": datetime.fromtimestamp(int(newest), timezone.utc).isoformat(),
    }


def write(results: Path, baselines: Path, config: Path) -> dict[str, Any]:
    """Write the baseline file of every result under ``results``; returns what was written."""
    measured = collect(results)
    entries: dict[str, dict[str, Any]] = {}
    for (variant, benchmark), m in measured.items():
        entries.setdefault(variant, {})[benchmark] = {"n": m.n, "metrics": m.metrics}
    record = {
        "provenance": provenance(results, measured, config),
        "tolerance": {"rule": RULE, "tolerances": [vars(t) for t in TOLERANCES]},
        "results": entries,
    }
    write_json(baselines, record)
    return record


def load_baselines(path: Path) -> tuple[dict[tuple[str, str], dict[str, Any]], tuple[Tolerance, ...]]:
    """``(variant, benchmark) -> {"n", "metrics"}`` and the tolerances of a baseline file."""
    data = read_json(path)
    try:
        tolerances = tuple(Tolerance(**t) for t in data["tolerance"]["tolerances"])
        entries = {(v, b): {"n": e["n"], "metrics": dict(e["metrics"])}
                   for v, benchmarks in data["results"].items() for b, e in benchmarks.items()}
    except (KeyError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: not a baseline file ({type(e).__name__}: {e}); rewrite it with `make baselines`")
    return entries, tolerances


def tolerance(benchmark: str, metric: str, tolerances: tuple[Tolerance, ...]) -> Tolerance:
    """The first tolerance whose glob matches ``benchmark.metric``."""
    for t in tolerances:
        if fnmatch.fnmatchcase(f"{benchmark}.{metric}", t.match):
            return t
    raise DataError(f"no tolerance matches {benchmark}.{metric}; the baseline file needs a catch-all '*'")


REWRITE = "no baseline: run `make baselines`"
HEADER = ("variant", "benchmark", "metric", "baseline", "now", "delta", "tolerance", "problem")


def _num(value: float | int | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def compare(
    baselines: dict[tuple[str, str], dict[str, Any]],
    measured: dict[tuple[str, str], Measured],
    tolerances: tuple[Tolerance, ...],
    results: Path = Path("results"),
) -> list[tuple[str, ...]]:
    """One row (see ``HEADER``) per problem; empty when everything baselined is present and within tolerance.
    ``results`` only names the file a missing result should have been."""
    rows = []
    for variant, benchmark in sorted(baselines.keys() | measured.keys()):
        key = (variant, benchmark)
        if key not in measured:
            missing = f"missing: {result_file(results, variant, benchmark)}"
            rows.append((variant, benchmark, "—", "", "", "", "", missing))
            continue
        now = measured[key]
        if key not in baselines:
            rows.append((variant, benchmark, "—", "", "", "", "", f"{REWRITE} ({now.path})"))
            continue
        base = baselines[key]
        if base["n"] != now.n:
            delta = "" if base["n"] is None or now.n is None else f"{now.n - base['n']:+d}"
            rows.append((variant, benchmark, "n", _num(base["n"]), _num(now.n), delta, "0", "n changed"))
        for metric in sorted(base["metrics"].keys() | now.metrics.keys()):
            b, v = base["metrics"].get(metric), now.metrics.get(metric)
            if v is None:
                rows.append((variant, benchmark, metric, _num(b), "—", "", "", "metric missing"))
            elif b is None:
                rows.append((variant, benchmark, metric, "—", _num(v), "", "", REWRITE))
            elif abs(v - b) > (allowed := tolerance(benchmark, metric, tolerances).allowed(b)):
                rows.append((variant, benchmark, metric, _num(b), _num(v), f"{v - b:+.3g}", f"{allowed:.3g}", "moved"))
    return rows


def table(rows: list[tuple[str, ...]]) -> str:
    """``rows`` under ``HEADER``, columns padded to their widest cell."""
    widths = [max(len(r[i]) for r in (HEADER, *rows)) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in (HEADER, *rows))


def check(results: Path, baselines: Path) -> int:
    """Compare ``results`` with the baseline file; print the verdict; 0 when nothing moved, else 1."""
    entries, tolerances = load_baselines(baselines)
    measured = collect(results)
    rows = compare(entries, measured, tolerances, results)
    if rows:
        print(f"regression check FAILED: {len(rows)} problem(s) in {results} against {baselines}")
        print(table(rows))
        print("A deliberate change: `make baselines` rewrites the file; commit it with the change (the diff is "
              "the review).")
        return 1
    values = sum(len(e["metrics"]) for e in entries.values())
    print(f"regression check passed: {values} values of {len(entries)} results in {results} within tolerance of "
          f"{baselines}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.regression", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name, summary in (("check", "compare the results with the baselines"),
                          ("write", "rewrite the baselines from the results")):
        p = sub.add_parser(name, help=summary, description=summary)
        p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results)")
        p.add_argument("--baselines", type=Path, default=Path("reports/baselines/smoke.json"),
                       help="baseline file (default: reports/baselines/smoke.json)")
        if name == "write":
            p.add_argument("--config", type=Path, default=Path("config/ci.yaml"),
                           help="the config the results were made with, recorded in the file (default: config/ci.yaml)")
    args = ap.parse_args(argv)
    status = 0

    def job() -> None:
        nonlocal status
        if args.command == "check":
            status = check(args.results, args.baselines)
        else:
            record = write(args.results, args.baselines, args.config)
            print(f"wrote {args.baselines}: {sum(len(b) for b in record['results'].values())} results")

    return run(job) or status


if __name__ == "__main__":
    raise SystemExit(main())
