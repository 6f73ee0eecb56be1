"""``make learn``: train every stage of both families on the CI fixtures long enough to learn, probe each on its own
training data, and check it against trivial baselines.

    python -m evaluation.learning [--out results/learn] [--report reports] [--jobs 2] [--until STAGE ...]
    python -m evaluation.learning probe <stage> --out results/learn      (one stage's probe, run by the above)

Configs: ``config/paper.yaml`` + ``config/ci.yaml`` (the smoke run's models and fixtures) + ``config/learn.yaml``
(longer schedules). Each stage runs as its rule runs it (:mod:`evaluation.learning.plan`); a stage whose ``model.pt``
was trained under the same config is reused, so a rerun only redoes what changed. The two families train side by side
(``--jobs``); ``--until`` stops each family's chain at the named stages (and checks only the stages it ran). Writes
``<report>/learning.json``, ``<report>/learning.md`` and ``<report>/figures/learning/losses.png``; exits 1 when a
check fails (the table says which).
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from evaluation.learning import plan
from setok.cli import run
from setok.config import config_sha, dump, load_config
from setok.io import DataError, read_json, write_json, write_text
from setok.model_file import FAMILIES, read_model

log = logging.getLogger("evaluation.learning")
CONFIGS = ("config/paper.yaml", "config/ci.yaml", "config/learn.yaml")


def probe(stage: plan.Stage, root: Path) -> dict[str, float]:
    """Run ``stage``'s probe (:mod:`evaluation.learning.probes`) on its trained model."""
    from evaluation.learning import probes

    folder = plan.model_path(root, stage).parent
    cfg = load_config(plan.run_folder(root, stage.family) / "config.yaml")
    tokenizer = plan.tokenizer_path(root, stage.family)
    init = plan.model_path(root, plan.BY_NAME[stage.init]) if stage.init else None
    kind = stage.stage or "tokenizer"
    if stage.name == "setok.tokenizer":
        return probes.probe_setok_tokenizer(folder, cfg)
    if kind == "semantic_codebook":
        return probes.probe_semantic_codebook(folder, cfg)
    if kind.startswith("pixel_"):
        return probes.probe_semhitok_pixels(folder, cfg, kind)
    if stage.family == "setok":
        if kind == "stage1":
            return probes.probe_setokim_stage1(folder, tokenizer, cfg)
        if kind == "mask_decoder":
            return probes.probe_mask_decoder(folder, tokenizer, cfg)
        return probes.probe_answers(folder, tokenizer, cfg, "stage2", init=init)
    codes = probes.probe_unified_codes(folder, tokenizer, cfg, kind)
    return codes | (probes.probe_answers(folder, tokenizer, cfg, kind, init=init) if kind == "stage2" else {})


def is_current(model: Path, sha: str) -> bool:
    """Whether ``model`` exists and was trained under the config hashed ``sha``."""
    if not model.is_file():
        return False
    try:
        return read_model(model, family=FAMILIES, mmap=True).config_sha == sha
    except DataError:  # a file of an older format: train again
        return False


def subprocess_step(argv: list[str], log_file: Path, env: dict[str, str], what: str) -> float:
    """Run ``argv`` with its output in ``log_file``; returns its seconds (one-line error naming the log)."""
    t0 = time.time()
    with open(log_file, "w") as f:
        if subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env).returncode:
            raise DataError(f"{what} failed; see {log_file}")
    return round(time.time() - t0, 1)


def run_chain(family: str, root: Path, *, threads: int, until: str | None) -> dict[str, dict[str, Any]]:
    """Train and probe the family's stages in order, up to ``until`` (all when None). A stage is retrained when its
    model is missing or was trained under another config, and so is every stage after it. Returns ``{stage:
    {"probe": {...}, "train_seconds": s, "probe_seconds": s}}`` (each stage's ``learned.json``)."""
    folder = plan.run_folder(root, family)
    sha = config_sha(load_config(folder / "config.yaml"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Any]] = {}
    stale = False
    for stage in plan.chain(family):
        model = plan.model_path(root, stage)
        learned = model.parent / "learned.json"
        stale = stale or not is_current(model, sha) or not learned.is_file()
        if stale:
            shutil.rmtree(model.parent / "checkpoints", ignore_errors=True)
            (model.parent / "train_log.jsonl").unlink(missing_ok=True)
            log.info("training %s", stage.name)
            train = subprocess_step(plan.command(root, stage), logs / f"{stage.name}.train.log", env,
                                    f"{stage.name}: training")
            argv = [sys.executable, "-m", "evaluation.learning", "probe", stage.name, "--out", str(root)]
            seconds = subprocess_step(argv, logs / f"{stage.name}.probe.log", env, f"{stage.name}: probe")
            probe_file = model.parent / "probe.json"
            write_json(learned, {"probe": read_json(probe_file), "train_seconds": train, "probe_seconds": seconds})
            probe_file.unlink()
            log.info("%s: trained in %.0f s, probed in %.0f s", stage.name, train, seconds)
        out[stage.name] = read_json(learned)
        if stage.name == until:
            break
    return out


def learn(root: Path, report: Path, *, configs: list[str], jobs: int, until: list[str]) -> int:
    """Resolve each family's config, run the chains side by side, write the report; 1 when a check failed."""
    from evaluation.learning.report import write_report

    ends = {plan.BY_NAME[name].family: name for name in until}
    families = list(ends) if until else list(plan.FAMILY_VARIANT)
    for family in families:
        path = plan.run_folder(root, family) / "config.yaml"
        text = dump(load_config(configs, plan.FAMILY_VARIANT[family]))
        if not path.is_file() or path.read_text() != text:
            write_text(path, text)
    threads = max(1, (os.cpu_count() or 1) // min(jobs, len(families)))
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = list(pool.map(lambda f: run_chain(f, root, threads=threads, until=ends.get(f)), families))
    stages = {k: v for d in done for k, v in d.items()}
    failed = write_report(stages, root=root, report=report, wall_seconds=round(time.time() - t0, 1),
                          complete=not until)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.learning", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("results/learn"), help="run folder (one folder per family)")
    sub = ap.add_subparsers(dest="command")
    p = sub.add_parser("probe", help="probe one trained stage (writes <its folder>/probe.json)")
    p.add_argument("stage", choices=sorted(plan.BY_NAME))
    p.add_argument("--out", type=Path, default=Path("results/learn"))
    ap.add_argument("--report", type=Path, default=Path("reports"), help="where learning.md / .json go")
    ap.add_argument("--config", action="append", help=f"config files, merged in order (default: {' '.join(CONFIGS)})")
    ap.add_argument("--jobs", type=int, default=2, help="families trained side by side")
    ap.add_argument("--until", action="append", default=[], choices=sorted(plan.BY_NAME),
                    help="stop that family's chain after this stage (repeatable; default: every stage of both)")
    args = ap.parse_args(argv)
    if args.command == "probe":
        stage = plan.BY_NAME[args.stage]
        return run(lambda: write_json(plan.model_path(args.out, stage).parent / "probe.json", probe(stage, args.out)))
    code = 0

    def job() -> None:
        nonlocal code
        code = learn(args.out, args.report, configs=args.config or list(CONFIGS), jobs=args.jobs, until=args.until)
    return run(job) or code


if __name__ == "__main__":
    raise SystemExit(main())
