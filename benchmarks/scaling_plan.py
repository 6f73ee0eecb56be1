"""Memory and speed of SeTok + SeTokIM at paper scale, planned on paper (docs/scaling.md), on the CPU, offline.

    python benchmarks/scaling_plan.py [--config config/paper.yaml] [--gpus 64] [--mfu 0.4] [--stage2-positions 512]

Parameters are counted exactly by building the paper-scale modules on the ``meta`` device (no weights allocated, no
download): SigLIP-SO400M-14-384 through open_clip, SeTok through ``build_setok``, SeTokIM through ``build_setokim``
(with the Hub-backed SigLIP text tokenizer and LLaMA checkpoint swapped for meta-built stand-ins of the same shapes),
LoRA through peft on the meta LLaMA (checked against the closed form). FLOPs of the vision modules are counted by
``torch.utils.flop_counter`` on meta tensors; the LLM's by the closed form (tested against the counter on a tiny
LLaMA). Memory follows the ZeRO paper (2 + 2 + 12 bytes per parameter) and a per-layer activation count (below).
Prints markdown tables to stdout; ``--write docs/scaling.md`` replaces the generated section of that file instead
(between ``<!-- plan:begin -->`` and ``<!-- plan:end -->``, or the ``measured`` markers with ``--measure``), so the
document never drifts from the config (``tests/test_scaling_plan.py`` checks it is current).
"""
# This script is the command line; the work is in the ``scaling`` package beside it (formulas, counting, builds,
# plan, budget, render, measure, document), whose names it re-exports for the tests and other scripts.
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from scaling.budget import memory, needs_recompute, timing
from scaling.builds import build_meta, build_setok_on, llama_2_7b, with_lora
from scaling.counting import flop_count, matmul_params, meta, n_params, saved_bytes
from scaling.document import generated_section, replace_section
from scaling.formulas import (
    ADDED_TOKENS,
    GB,
    LLAMA2_7B,
    SHAPES,
    comm_bytes,
    implied_tokens,
    korthikanti_bytes,
    layer_activation_bytes,
    llama_params,
    llm_forward_flops,
    logits_bytes,
    lora_activation_bytes,
    lora_params,
    usable_gpus,
    zero_bytes,
)
from scaling.measure import measure, measure_llm, measure_setok, time_step
from scaling.plan import (
    Assumptions,
    Hardware,
    Stage,
    llm_activations,
    stages,
    tokenizer_activations,
    vision_costs,
    vit_sizes,
)
from scaling.render import (
    TABLE13,
    flops_table,
    gb,
    memory_table,
    params_table,
    report,
    table,
    table13,
    tf,
    timing_table,
)

__all__ = [
    "ADDED_TOKENS", "GB", "LLAMA2_7B", "SHAPES", "TABLE13", "Assumptions", "Hardware", "Stage", "build_meta",
    "build_setok_on", "comm_bytes", "flop_count", "flops_table", "gb", "generated_section", "implied_tokens",
    "korthikanti_bytes", "layer_activation_bytes", "llama_2_7b", "llama_params", "llm_activations",
    "llm_forward_flops", "logits_bytes", "lora_activation_bytes", "lora_params", "main", "matmul_params", "measure",
    "measure_llm", "measure_setok", "memory", "memory_table", "meta", "n_params", "needs_recompute", "params_table",
    "replace_section", "report", "saved_bytes", "stages", "table", "table13", "tf", "time_step", "timing",
    "timing_table", "tokenizer_activations", "usable_gpus", "vision_costs", "vit_sizes", "with_lora", "zero_bytes",
]


def main(argv: list[str] | None = None) -> int:
    from setok.config import load_config

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", action="append", default=None, help="config file(s) (default config/paper.yaml)")
    for f in dataclasses.fields(Hardware) + dataclasses.fields(Assumptions):
        kind = int if f.type in ("int", "int | None") else float
        ap.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default, help=f"default {f.default}")
    ap.add_argument("--measure", action="store_true", help="time each stage's micro-batch on --device (a GPU)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--write", type=Path, help="replace the generated section of this markdown file (docs/scaling.md)")
    args = vars(ap.parse_args(argv))
    do_measure, device, write = args.pop("measure"), args.pop("device"), args.pop("write")
    cfg = load_config(args.pop("config") or ["config/paper.yaml"])
    hw = Hardware(**{f.name: args[f.name] for f in dataclasses.fields(Hardware)})
    a = Assumptions(**{f.name: args[f.name] for f in dataclasses.fields(Assumptions)})
    text = measure(cfg, hw, a, device) if do_measure else report(cfg, hw, a)
    if write is None:
        print(text)
    else:
        from setok.io import write_text

        write_text(write, replace_section(write.read_text(), "measured" if do_measure else "plan", text))
        print(f"wrote the {'measured' if do_measure else 'plan'} section of {write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
