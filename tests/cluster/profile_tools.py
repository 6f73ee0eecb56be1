"""profiles/slurm as Snakemake reads it, and a small-node overlay of it for a one-node test cluster.

The overlay is derived from the rendered profile and the rules' sizes (setok/resources.py), never written by hand:
every rule keeps its partition and task geometry; only ``cpus_per_task``, ``mem_mb``, ``runtime``, ``nodes`` and
``gpu`` are capped at what the test cluster has, so a job that asks 72 CPUs and 256 GB of a 2-CPU node (or 8 nodes
of a one-node cluster) is not left pending for ever. What only several nodes show (Stage I/II's 8 x 8 GPUs, ``srun``
across nodes) stays with the stand-in Slurm of tests/cluster/fake_slurm. It is layered after the real profile
(``--profile profiles/slurm --profile <overlay>``; a later profile replaces whole top-level keys, which is why the
overlay repeats every rule of ``set-resources``).
"""
from __future__ import annotations

import ast
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles" / "slurm"
BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Slurm's or the profile's variables (a test may itself run inside a Slurm job)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SETOK_"))}
    env.update({"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    env.update(extra)
    return env


def job_stats(out: str) -> dict[str, int]:
    """rule -> job count, from the "Job stats:" table Snakemake prints."""
    stats = out[out.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def literal(value: str) -> Any:
    """'8' -> 8, "'gpu'" -> 'gpu', 'max(threads, 2)' -> itself."""
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def rendered_profile(env: dict[str, str], *, evaluate: bool = True) -> dict[str, Any]:
    """The profile as Snakemake reads it (YTE rendered under ``env``): {key: value}, resources as dicts, their
    values evaluated as constants (``evaluate``) or left as the text Snakemake evaluates (``'gpu'`` keeps quotes)."""
    value_of = literal if evaluate else str
    from snakemake.profiles import ProfileConfigFileParser

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with open(PROFILE / "config.yaml", encoding="utf-8") as f:
            parsed = dict(ProfileConfigFileParser().parse(f))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    defaults = dict(item.split("=", 1) for item in parsed.pop("default-resources"))
    per_rule: dict[str, dict[str, Any]] = {}
    for item in parsed.pop("set-resources"):
        rule, assignment = item.split(":", 1)
        name, value = assignment.split("=", 1)
        per_rule.setdefault(rule, {})[name] = value_of(value)
    return {**parsed, "default-resources": {k: value_of(v) for k, v in defaults.items()}, "set-resources": per_rule}


def scaled(resources: dict[str, Any], *, cpus: int, mem_mb: int, runtime: int, nodes: int = 1, gpus: int = 8
           ) -> dict[str, Any]:
    """``resources`` (unevaluated text, as ``rendered_profile(..., evaluate=False)`` gives) with CPUs, memory,
    runtime, nodes and GPUs capped at the test cluster's, numbers as numbers; an expression (``max(threads, 2)``)
    is wrapped in ``min(..., cap)``."""
    caps = {"cpus_per_task": cpus, "mem_mb": mem_mb, "runtime": runtime, "nodes": nodes, "gpu": gpus}
    out: dict[str, Any] = {}
    for key, text in resources.items():
        value = literal(text)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key in caps:
            out[key] = min(value, caps[key]) if number else f"min({text}, {caps[key]})"
        else:  # numbers as numbers (Snakemake converts units only of those), the rest as the text it evaluates
            out[key] = value if number else text
    return out


def write_small_node_profile(dest: Path, env: dict[str, str], *, cpus: int, mem_mb: int, runtime: int = 30,
                             nodes: int = 1, gpus: int = 8, extra: dict[str, Any] | None = None) -> Path:
    """Write the overlay profile into ``dest`` (its ``config.yaml``) for a cluster of ``nodes`` nodes with ``cpus``
    CPUs, ``mem_mb`` memory for a job and ``gpus`` GPUs; ``extra``: further top-level keys (e.g. the status
    command). Returns ``dest``."""
    from setok.resources import JOBS, SCORING, SCORING_RULES

    prof = rendered_profile(env, evaluate=False)
    caps = {"cpus": cpus, "mem_mb": mem_mb, "runtime": runtime, "nodes": nodes, "gpus": gpus}
    # The rules' own sizes (setok/resources.py) capped too: a rule's row, or for a scoring rule the largest of its
    # rows (its GPU count stays the rule's, per benchmark).
    sizes = {rule: {k: str(v) for k, v in job.as_resources().items()} for rule, job in JOBS.items()}
    for rule in SCORING_RULES:
        sizes[rule] = {k: str(max(getattr(row, k) for row in SCORING.values()))
                       for k in ("mem_mb", "runtime", "cpus_per_task")}
    per_rule = {rule: {**sizes.get(rule, {}), **res} for rule, res in prof["set-resources"].items()}
    per_rule.update({rule: size for rule, size in sizes.items() if rule not in per_rule})
    overlay: dict[str, Any] = {
        "default-resources": scaled(prof["default-resources"], **caps),
        "set-resources": {rule: scaled(res, **caps) for rule, res in per_rule.items()},
        **(extra or {}),
    }
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    return dest
