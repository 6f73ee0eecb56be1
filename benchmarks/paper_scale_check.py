"""The paper-scale code path on one GPU: SeTok and every SeTokIM stage at the paper's model sizes, a few steps each.

    python benchmarks/paper_scale_check.py --out OUT [--llm-layers 16] [--steps 3] [--measure] [--dry-run]

What the CI run cannot show: SigLIP-SO400M-14-384, the 12 + 8-layer merger and the 12-layer detokenizer at 384 px,
LLaMA-2-7B's widths with activation checkpointing, bf16, DeepSpeed (the configured ZeRO stages) with its fused Adam,
NCCL, peft LoRA at r = 128, and prediction through the KV cache, the diffusion head and the mask decoder at those
sizes. The config is ``config/paper.yaml``'s models and schedules (precision, ZeRO stage, optimizer, micro-batch,
recomputation) with random weights (no hub is reachable from the GPU machines: the SigLIP tower random, the LLM a
random ``Llama`` of LLaMA-2-7B's sizes with the GPT-2 byte-level tokenizer), trained for ``--steps`` steps on
``config/ci.yaml``'s fixtures, one GPU, no gradient accumulation. The stages run through the same CLIs and the same
``setok.launch`` as the Snakemake rules; each stage's time and peak GPU memory (``max_memory_gb`` in
``train_log.jsonl``) go to ``OUT/paper_scale_check.md``.

One GPU holds no ZeRO partition of 64: full fine-tuning of all 32 LLaMA-2-7B layers needs about 16 bytes per
parameter (109 GB) before activations, so ``--llm-layers`` (default 16) keeps the LLM's widths and halves its depth;
time and memory per layer scale linearly (docs/scaling.md). ``--measure`` then runs ``scaling_plan.py --measure``
(the full 32-layer model, forward + backward without an optimizer) into ``OUT/measured.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# LLaMA-2-7B's sizes; the vocabulary is the GPT-2 byte-level tokenizer's (LLaMA's own cannot load offline): 50,257
# rows instead of 32,000, 0.15 B more embedding parameters, which changes neither the layers nor their cost.
LLAMA2_7B = {"vocab_size": 50257, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096}
STAGES = ("train_tokenizer", "train_stage1", "train_mask_decoder", "train_stage2")
# One benchmark per kind of output: answers (KV-cached greedy text), images (diffusion head + detokenizer),
# edited images (two images in one sequence), masks (the mask decoder on generated tokens).
PREDICT = {"vqav2": "vqav2.json", "coco_fid": "coco_fid", "magicbrush": "magicbrush", "refcoco+": "refcoco+.json"}


def paper_scale_config(
    *, llm_layers: int, steps: int, num_workers: int = 2, sizes: str = "paper",
) -> dict[str, Any]:
    """The raw config of the check: paper.yaml's models and stage settings, ci.yaml's data, random weights.

    ``sizes="ci"`` keeps ci.yaml's tiny models and fp32 stages instead (the same jobs in minutes on a CPU: a check
    of this script, not of the paper scale)."""
    from setok.config import deep_merge

    paper = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    ci = yaml.safe_load((ROOT / "config/ci.yaml").read_text())
    raw = deep_merge(paper, ci)
    models = paper if sizes == "paper" else raw
    if sizes == "paper":
        raw["tokenizer"] = deep_merge(paper["tokenizer"], {"backbone": {"pretrained": None}})
        raw["mllm"] = deep_merge(paper["mllm"], {"llm": {
            "source": "random", "tokenizer": "gpt2-bytelevel", "dtype": "bfloat16",
            "model_config": {**LLAMA2_7B, "num_hidden_layers": llm_layers}}})
    for stage in STAGES:
        p = models[stage]
        raw[stage] = deep_merge(p, {
            # the fixtures' sources, steps and logging; the paper's precision, ZeRO, optimizer, micro-batch
            **{k: ci[stage][k] for k in ("sources", "language_ratio", "template") if k in ci[stage]},
            "steps": steps, "batch_size": p["micro_batch_size"], "warmup_steps": 1, "checkpoint_every": steps,
            "log_every": 1, "num_workers": num_workers})
    raw["eval"] = deep_merge(raw["eval"], {"batch_size": 4})
    return raw


# Each training job's run folder under OUT, as the rules lay out results/<variant>/.
RUNS = {"train_tokenizer": "tokenizer", "train_stage1": "stage1", "train_mask_decoder": "stage1/mask_decoder",
        "train_stage2": "stage2"}


def commands(out: Path, *, device: str) -> list[tuple[str, list[str]]]:
    """``(name, argv)`` of every job, in order, with the Snakemake rules' CLIs and paths under ``out`` (one GPU)."""
    py, cfg, tok = sys.executable, str(out / "config.yaml"), str(out / "tokenizer/model.pt")
    run = {name: str(out / folder) for name, folder in RUNS.items()}

    def launch(*args: str) -> list[str]:
        cpu = ["--allow-cpu"] if device == "cpu" else []  # GPUs asked are GPUs used: the CPU only when asked
        return [py, "-m", "setok.launch", "--gpus", "1", "--nodes", "1", *cpu, "--", py, "-m", *args]

    def mllm(stage: str, init: str | None) -> list[str]:
        return launch("setok.train.mllm", "--stage", stage, "--config", cfg, "--tokenizer", tok,
                      *(("--init", f"{run[init]}/model.pt") if init else ()), "--out", run[f"train_{stage}"])

    jobs = [
        ("train_tokenizer", launch("setok.train.tokenizer", "--config", cfg, "--out", run["train_tokenizer"])),
        ("train_stage1", mllm("stage1", None)),
        ("train_mask_decoder", mllm("mask_decoder", "train_stage1")),
        ("train_stage2", mllm("stage2", "train_mask_decoder")),
    ]
    for bench, name in PREDICT.items():
        jobs.append((f"predict {bench}", [
            py, "-m", "evaluation.predict.mllm", "--model", str(out / "stage2/model.pt"), "--tokenizer", tok,
            "--config", cfg, "--benchmark", bench, "--out", str(out / "predictions" / name), "--device", device]))
    return jobs


def stage_summary(run: Path) -> dict[str, Any]:
    """Seconds per step after the first (warm-up, compilation), peak memory and last loss from ``train_log.jsonl``."""
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    first, last = rows[0]["seconds"], rows[-1]["seconds"]
    per_step = (last - first) / (len(rows) - 1) if len(rows) > 1 else first
    mem = [r["max_memory_gb"] for r in rows if "max_memory_gb" in r]
    return {"steps": rows[-1]["step"], "seconds_per_step": per_step, "max_memory_gb": max(mem) if mem else None,
            "loss": rows[-1]["loss"]}


def report(out: Path, timings: list[tuple[str, float, int]], *, what: str, device: str) -> str:
    """The markdown summary of a check: one row per job."""
    lines = [f"Paper-scale check ({device}, {what}, random weights, CI fixtures)",
             "", "| job | exit | wall s | steps | s / step after the first | peak GPU memory | last loss |",
             "|---|---|---|---|---|---|---|"]
    for name, wall, rc in timings:
        cells = ["—"] * 4
        run = out / RUNS[name] if name in RUNS else None
        if rc == 0 and run is not None and (run / "train_log.jsonl").exists():
            s = stage_summary(run)
            mem = "—" if s["max_memory_gb"] is None else f"{s['max_memory_gb']:.1f} GB"
            cells = [str(s["steps"]), f"{s['seconds_per_step']:.2f}", mem, f"{s['loss']:.3f}"]
        lines.append(f"| {name} | {rc} | {wall:.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    from setok.config import dump, resolve
    from setok.io import write_text

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="folder for the runs, logs and paper_scale_check.md")
    ap.add_argument("--llm-layers", type=int, default=16, help="LLaMA-2-7B layers kept (its widths are kept)")
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per training stage")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", choices=["paper", "ci"], default="paper",
                    help="ci: config/ci.yaml's tiny models (checks this script on a CPU in minutes)")
    ap.add_argument("--measure", action="store_true", help="then scaling_plan.py --measure into OUT/measured.md")
    ap.add_argument("--dry-run", action="store_true", help="write OUT/config.yaml and print the jobs only")
    args = ap.parse_args(argv)

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    raw = paper_scale_config(llm_layers=args.llm_layers, steps=args.steps, sizes=args.sizes)
    write_text(out / "config.yaml", dump(resolve(raw, raw["default_variant"])))
    jobs = commands(out, device=args.device)
    if args.dry_run:
        for name, argv_ in jobs:
            print(f"{name}: {shlex.join(argv_)}")
        return 0
    (out / "logs").mkdir(exist_ok=True)
    what = f"LLM {args.llm_layers} of 32 LLaMA-2-7B layers" if args.sizes == "paper" else "config/ci.yaml's sizes"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    timings: list[tuple[str, float, int]] = []
    for name, argv_ in jobs:
        t0 = time.time()
        log = out / "logs" / (name.replace(" ", "_") + ".log")
        with log.open("w") as f:
            rc = subprocess.call(argv_, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        timings.append((name, time.time() - t0, rc))
        print(f"{name}: exit {rc} after {timings[-1][1]:.0f} s (log {log})", flush=True)
        write_text(out / "paper_scale_check.md", report(out, timings, what=what, device=args.device))
        if rc != 0:
            print(log.read_text()[-4000:], file=sys.stderr)
            return rc
    if args.measure:
        rc = subprocess.call([sys.executable, str(ROOT / "benchmarks/scaling_plan.py"), "--measure", "--device",
                              args.device], cwd=ROOT, env=env, stdout=(out / "measured.md").open("w"))
        if rc != 0:
            return rc
    print((out / "paper_scale_check.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
