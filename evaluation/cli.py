"""Command line: ``python -m evaluation {list, score, fid-features}``.

``score`` is a fixed contract used by the workflow::

    python -m evaluation score <benchmark> --predictions P [--annotations A] [--questions Q] --out R.json
        [--variant V] [--checkpoint C] [--config-sha S] [--bootstrap N] [--seed S] [--provenance-from F ...]
        [benchmark options]

It writes ``R.json`` and ``R.samples.jsonl`` (see :mod:`evaluation.results`); ``--provenance-from`` merges the
``provenance`` of a JSON file into the result's (a limited prediction job's record, the tokenizer's ``tokens.json``).
Bad input prints one line ``error: <file>: <problem>`` to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from evaluation import registry
from evaluation.provenance import Provenance, marks, read_provenance
from evaluation.results import write_result
from setok.io import DataError

COMMON_OPTIONS = {
    "predictions",
    "annotations",
    "questions",
    "out",
    "variant",
    "checkpoint",
    "config_sha",
    "bootstrap",
    "seed",
    "provenance_from",
    "command",
    "benchmark",
}


def _score_parser(sub: argparse._SubParsersAction, bench: registry.Benchmark) -> None:
    p = sub.add_parser(
        bench.name,
        help=bench.summary,
        description=bench.help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--predictions", required=True, type=Path, help="model outputs (format above)"
    )
    p.add_argument(
        "--annotations",
        required=bench.needs_annotations,
        type=Path,
        default=None,
        help="references (format above)",
    )
    if bench.takes_questions:
        p.add_argument(
            "--questions", type=Path, default=None, help="questions file (format above)"
        )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="result JSON; per-sample scores go to <stem>.samples.jsonl",
    )
    p.add_argument(
        "--variant", default=None, help="model variant recorded in the result"
    )
    p.add_argument(
        "--checkpoint", default=None, help="checkpoint recorded in the result"
    )
    p.add_argument(
        "--config-sha", default=None, help="config hash recorded in the result"
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=None,
        metavar="N",
        help=f"bootstrap resamples for ci95 (default {bench.default_bootstrap}; 0 disables)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument(
        "--provenance-from",
        type=Path,
        action="append",
        default=[],
        metavar="F",
        help="JSON file whose `provenance` (a subset, shortcuts) is merged into the result's; repeatable",
    )
    bench.add_arguments(p)
    p.set_defaults(benchmark=bench.name)


def build_parser(benchmarks: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: one ``score`` sub-parser per registered benchmark, or per name of ``benchmarks``.

    Args:
        benchmarks: Registered names to add ``score`` sub-parsers for (``None``: all, which imports every benchmark
            module); :func:`main` passes the one being scored.
    """
    parser = argparse.ArgumentParser(
        prog="python -m evaluation", description="Score benchmark predictions."
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{list,score,fid-features}"
    )
    commands.add_parser("list", help="print the registered benchmarks")
    score = commands.add_parser(
        "score",
        help="score predictions; `score <benchmark> --help` documents the file formats",
    )
    benches = score.add_subparsers(dest="benchmark", required=True, metavar="benchmark")
    for name in registry.names() if benchmarks is None else benchmarks:
        _score_parser(benches, registry.get(name))
    feats = commands.add_parser(
        "fid-features",
        help="write Inception pool3 features (+ mu, sigma) of an image folder to .npz, reusable as an FID input",
    )
    feats.add_argument("folder", type=Path)
    feats.add_argument("--out", required=True, type=Path, help="output .npz")
    feats.add_argument("--device", default=None)
    feats.add_argument("--batch-size", type=int, default=32)
    return parser


def _list() -> int:
    for name in registry.names():
        bench = registry.get(name)
        metrics = ", ".join(
            f"{m.name} ({'higher' if m.higher_is_better else 'lower'} is better)"
            for m in bench.metrics
        )
        print(f"{name}\t{bench.summary}\tmetrics: {metrics}")
    return 0


def _score(args: argparse.Namespace) -> int:
    """Score and write the result; Python's cyclic garbage collector is off meanwhile (see :func:`_no_gc`)."""
    with _no_gc():
        return _score_and_write(args)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: a scorer builds millions of small objects that form no cycle (the VQAv2
    answers, one row per question), and each automatic collection re-scans all of them (a third of the time it
    takes to build 200K rows); reference counting still frees everything as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _score_and_write(args: argparse.Namespace) -> int:
    bench = registry.get(args.benchmark)
    if args.bootstrap is not None and args.bootstrap < 0:
        raise DataError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    opts = {k: v for k, v in vars(args).items() if k not in COMMON_OPTIONS}
    extra = Provenance()
    for f in args.provenance_from:  # read first: a bad record fails before any scoring
        extra = extra.merged(read_provenance(f))
    result = bench.score(
        args.predictions,
        args.annotations,
        questions=getattr(args, "questions", None),
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        **opts,
    )
    record = write_result(
        args.out,
        benchmark=bench.name,
        variant=args.variant,
        result=result,
        checkpoint=args.checkpoint,
        config_sha=args.config_sha,
        provenance=extra,
    )
    shown = ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items())
    print(f"{bench.name}: {shown} (n={result.n}) -> {args.out}")
    for m in marks(Provenance.from_json(record["provenance"])):
        print(f"  {m.symbol} {m.text}")
    return 0


def _fid_features(args: argparse.Namespace) -> int:
    from evaluation.features.images import folder_features
    from evaluation.readers.fid import write_fid_npz

    files, feats = folder_features(
        args.folder, batch_size=args.batch_size, device=args.device
    )
    write_fid_npz(args.out, feats, names=[f.name for f in files])
    print(f"{len(files)} images -> {args.out}")
    return 0


def _scored_benchmark(argv: Sequence[str]) -> list[str] | None:
    """``[name]`` when ``argv`` is ``score <name> ...`` with a registered ``name``, else ``None`` (all benchmarks).

    Only that benchmark's module is imported then; anything else (``list``, ``score --help``, an unknown name, which
    argparse reports with the full list) builds the full parser.
    """
    if len(argv) < 2 or argv[0] != "score" or argv[1].startswith("-"):
        return None
    try:
        registry.get(argv[1])
    except KeyError:
        return None
    return [argv[1]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 on bad input, with a one-line ``error:`` on stderr)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_scored_benchmark(argv)).parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        if args.command == "score":
            return _score(args)
        return _fid_features(args)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
