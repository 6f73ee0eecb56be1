"""The plan as markdown tables: parameters, FLOPs, memory, ZeRO options, throughput, and the Table 13 cross-check."""
from __future__ import annotations

from typing import Any

from setok.config import Config

from .budget import memory, needs_recompute, timing
from .builds import build_meta
from .counting import matmul_params, n_params
from .formulas import (
    ADDED_TOKENS,
    GB,
    LLAMA2_7B,
    comm_bytes,
    implied_tokens,
    korthikanti_bytes,
    llama_params,
    lora_params,
    usable_gpus,
)
from .plan import Assumptions, Hardware, Stage, stages, vision_costs

TABLE13 = [("SigLIP + MLP", 256, 15.8), ("SigLIP + Q-former", 32, 12.4), ("SigLIP + Resampler", 64, 13.4),
           ("SeTok", 25, 8.2)]  # (mechanism, visual tokens, TFLOPs) as printed in the SeTok paper's Table 13


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(x) for x in r) + " |" for r in rows])


def gb(x: float) -> str:
    return f"{x / GB:,.2f} GB"


def tf(x: float) -> str:
    return f"{x / 1e12:,.3f}"


def params_table(m: dict[str, Any], cfg: Config) -> str:
    setok, setokim, lm, lo = m["setok"], m["setokim"], m["setokim"].lm, cfg.mllm.lora
    pool = n_params(getattr(getattr(setok.encoder.visual, "trunk", None), "attn_pool", None))
    closed = llama_params(**{k: LLAMA2_7B[k] for k in ("hidden", "intermediate", "layers", "vocab")})
    n_lora = lora_params(hidden=LLAMA2_7B["hidden"], intermediate=LLAMA2_7B["intermediate"],
                         layers=LLAMA2_7B["layers"], r=lo.r, targets=list(lo.target_modules))
    heads = {"input projector": setokim.input_projector, "output projector": setokim.output_projector,
             "end-of-image head": setokim.eoi_head, "diffusion MLP": setokim.diffloss}
    rows = [[f"SigLIP-SO400M-14-{cfg.tokenizer.backbone.image_size} vision tower (of it: MAP head {pool:,}, unused)",
             f"{n_params(setok.encoder):,}", "tokenizer"],
            ["SigLIP text tower (frozen, concept prompts)", f"{m['text_params']:,}", "—"],
            ["token merger", f"{n_params(setok.merger):,}", "tokenizer"],
            [f"detokenizer (of it: pixel decoder {n_params(setok.detokenizer.pixel_decoder):,})",
             f"{n_params(setok.detokenizer):,}", "tokenizer"],
            ["SeTok total (text projection, logit scale included)", f"{n_params(setok):,}", "tokenizer"],
            ["LLaMA-2-7B, vocab 32,000: closed form / meta model", f"{closed:,} / {m['llama_plain']:,}", "—"],
            [f"LLaMA-2-7B + {ADDED_TOKENS} added tokens (vocab {LLAMA2_7B['vocab'] + ADDED_TOKENS:,})",
             f"{n_params(lm):,}", "stage1"]]
    rows += [[f"SeTokIM {k}", f"{n_params(mod):,}", "stage1, stage2"] for k, mod in heads.items()]
    rows += [["mask decoder", f"{n_params(m['mask_decoder']):,}", "mask_decoder"],
             [f"LoRA r={lo.r} on {len(lo.target_modules)} projections: closed form", f"{n_lora:,}", "stage2"],
             ["LoRA + [Img]/[/Img] rows of embedding and LM head: peft on meta",
              f"{n_params(m['lora_lm'], trainable=True):,}", "stage2"]]
    return table(["module", "parameters", "trained in"], rows)


def flops_table(plan: list[Stage], v: dict[str, float], a: Assumptions) -> str:
    note = (f"SigLIP forward per image {tf(v['enc_fwd'])}, forward+backward {tf(v['enc_train'])}; merger forward "
            f"{tf(v['merge_fwd'])} ({a.visual_tokens} clusters of {v['balanced']} patches; skewed: largest cluster "
            f"{v['skewed']}); detokenizer forward {tf(v['detok_fwd'])}; clustering distances {tf(v['gram'])}; "
            f"frozen SeTok forward {tf(v['setok_fwd'])}; diffusion MLP per generated token {tf(v['diff_train'])}.")
    rows = [[s.name, f"{s.positions:,.0f}", tf(s.bf16_flops),
             f"{tf(s.frozen_flops)} ({s.frozen_precision})" if s.frozen_flops else tf(0.0),
             tf(s.recompute_flops)] for s in plan]
    return note + "\n\n" + table(["stage", "positions / sample", "train, bf16", "frozen SeTok fwd",
                                  "extra if recomputed"], rows)


def memory_table(plan: list[Stage], hw: Hardware) -> str:
    rows, budget = [], hw.headroom * hw.memory_gb * GB
    for s in plan:
        rc = needs_recompute(s, hw)
        mem, free = memory(s, hw, zero=s.zero, recompute=rc), memory(s, hw, zero=s.zero, recompute=False)
        largest = int((budget - free["total"] + free["act"]) // (free["act"] / s.micro))
        rows.append([s.name, s.zero, mem["gpus"], f"{s.batch} / {s.micro} / {s.batch // (s.micro * mem['gpus'])}",
                     gb(mem["weights"]), gb(mem["grads"]), gb(mem["optim"]), gb(s.outside), gb(free["act"]),
                     "—" if s.act_recompute is None else gb(s.act_recompute), "full" if rc else "none",
                     gb(mem["total"]), "yes" if mem["total"] <= budget else "**no**", largest])
    return table(["stage", "ZeRO", "GPUs", "batch / micro / accum", "weights", "grads", "Adam + master",
                  "frozen outside engine", "activations", "activations, full recompute", "recompute", "total", "fits",
                  "largest micro-batch without recompute"], rows)


def zero_table(plan: list[Stage], hw: Hardware) -> str:
    rows = []
    for s in plan:
        n = usable_gpus(batch=s.batch, micro=s.micro, gpus=hw.gpus)
        acc, bw = s.batch // (s.micro * n), (hw.nvlink_gbs if n <= 8 else hw.ib_gbs) * GB
        cells = []
        for z in range(4):
            comm = comm_bytes(zero=z, trainable=s.trainable, frozen=s.frozen, gpus=n, accumulation=acc) / bw
            cells.append(f"{gb(memory(s, hw, zero=z, recompute=needs_recompute(s, hw))['total'])}, {comm:.2f} s")
        rows.append([s.name] + cells)
    return table(["stage", "ZeRO-0", "ZeRO-1", "ZeRO-2", "ZeRO-3"], rows)


def timing_table(plan: list[Stage], hw: Hardware) -> str:
    rows, total, wall, wall8 = [], 0.0, 0.0, 0.0
    for s in plan:
        t = timing(s, hw)
        if "skewed" not in s.name:
            total, wall, wall8 = total + t["gpu_hours"], wall + t["hours"], wall8 + t["hours8"]
        rows.append([s.name, f"{s.steps:,} x {s.batch}", t["gpus"], f"{s.positions / t['sec']:,.0f}",
                     f"{1 / t['sec']:,.2f}", f"{t['frozen_share']:.0%}", f"{t['hfu']:.0%}", f"{t['step']:.2f} s",
                     f"{t['comm']:.2f} s", f"{t['gpu_hours']:,.0f}", f"{t['hours']:,.1f} h", f"{t['hours8']:,.1f} h"])
    rows.append(["total (balanced tokenizer)", "", "", "", "", "", "", "", "", f"{total:,.0f}", f"{wall:,.1f} h",
                 f"{wall8:,.1f} h"])
    return table(["stage", "steps x batch", "GPUs", "positions/s/GPU", "samples/s/GPU", "frozen SeTok share of time",
                  "HFU", "compute/step", "comm/step", "GPU-hours", "wall-clock on those GPUs", "wall-clock on 8 GPUs"],
                 rows)


def table13(m: dict[str, Any], v: dict[str, float]) -> str:
    mm = matmul_params(m["setokim"].lm)
    rows = []
    for name, k, flops in TABLE13:
        vis = v["setok_fwd"] if name == "SeTok" else v["enc_fwd"]
        tokens = implied_tokens(flops=flops * 1e12 - vis, matmul_params=mm, layers=LLAMA2_7B["layers"],
                                hidden=LLAMA2_7B["hidden"])
        rows.append([name, k, flops, tf(vis), f"{tokens:,.0f}", f"{tokens - k - 2:,.0f}"])
    return table(["mechanism", "visual tokens", "paper TFLOPs", "vision fwd TFLOP (ours)", "implied LLM tokens",
                  "implied text tokens"], rows)


def report(cfg: Config, hw: Hardware, a: Assumptions) -> str:
    """All tables, as markdown."""
    m = build_meta(cfg)
    v = vision_costs(m, cfg, a)
    plan = stages(m, v, cfg, a)
    s1 = next(s for s in plan if s.name == "stage1")
    c = LLAMA2_7B
    kor = c["layers"] * korthikanti_bytes(seq=int(s1.positions), batch=s1.micro, hidden=c["hidden"], heads=c["heads"])
    return "\n".join([
        f"Generated by `python benchmarks/scaling_plan.py --write docs/scaling.md` from `config/paper.yaml` "
        f"({hw.gpus} GPUs x {hw.memory_gb:.0f} GB, {hw.bf16_tflops:g} TFLOP/s bf16, MFU {hw.mfu:.0%}, frozen SeTok "
        f"in the MLLM stages: {cfg.mllm.tokenizer_precision}).",
        "", "### Parameters (exact, built on the meta device)", "", params_table(m, cfg),
        "", "### FLOPs per sample (TFLOP; a multiply-add counts 2)", "", flops_table(plan, v, a),
        "", f"### Memory per GPU at the configured ZeRO stage (fits: total <= {hw.headroom:.0%} of "
        f"{hw.memory_gb:.0f} GB)", "", memory_table(plan, hw),
        "", f"Korthikanti's GPT formula for the Stage-I micro-batch, 32 layers, no flash attention: {gb(kor)}.",
        "", "### ZeRO options: total per GPU, communication per optimizer step (not overlapped)", "",
        zero_table(plan, hw),
        "", "### Throughput and GPU-hours", "", timing_table(plan, hw),
        "", "### Cross-check: SeTok paper Table 13 TFLOPs -> implied LLM sequence length", "", table13(m, v)])
