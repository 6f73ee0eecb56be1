"""Measured on a GPU: one micro-batch of each stage's dominant computation at paper size (random weights, synthetic
inputs), timed and its peak memory read, beside the plan's numbers."""
from __future__ import annotations

import datetime
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from setok.config import Config
from setok.modeling.clustering import cluster_agreement

from .builds import build_meta, build_setok_on, llama_2_7b, with_lora
from .counting import matmul_params
from .formulas import ADDED_TOKENS, LLAMA2_7B, llm_forward_flops, lora_params
from .plan import Assumptions, Hardware, Stage, llm_activations, stages, vision_costs
from .render import gb, table


def time_step(step: Callable[[], Tensor], *, backward: bool = True, repeats: int = 5) -> tuple[float, float]:
    """Median seconds of ``step()`` (and the backward of its result) after two warm-up runs, and the peak bytes
    allocated above what was held before the timed runs (activations and transients; 0 off CUDA)."""
    cuda = torch.cuda.is_available()

    def run() -> None:
        with torch.set_grad_enabled(backward):
            out = step()
            if backward:
                out.backward()

    for _ in range(2):
        run()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() if cuda else 0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), float(torch.cuda.max_memory_allocated() - base if cuda else 0)


def measure_setok(cfg: Config, hw: Hardware, v: dict[str, float], planned: Stage, device: str) -> list[list[str]]:
    """SeTok training step (bf16) and the frozen tokenize pass (fp32, bf16) on one micro-batch of random images."""
    setok, _ = build_setok_on(cfg, device)
    b, size = cfg.train_tokenizer.micro_batch_size, cfg.tokenizer.backbone.image_size
    images = torch.rand(b, 3, size, size, device=device)
    setok.to(torch.bfloat16)

    def train_step() -> Tensor:
        tok, rec = setok(images.to(torch.bfloat16))
        return rec.float().square().mean() + tok.tokens.float().square().mean()

    sec, mem = time_step(train_step)
    rows = [["tokenizer: SeTok forward + backward, bf16 (clusters of random features)", f"{b} images",
             f"{hw.mfu * hw.bf16_tflops * 1e12 / planned.bf16_flops:,.1f} images/s", f"{b / sec:,.1f} images/s",
             gb(planned.act), gb(mem)]]
    clusterings = []
    for dtype, tflops in ((torch.float32, hw.fp32_tflops), (torch.bfloat16, hw.bf16_tflops)):
        setok.to(dtype)
        sec, _ = time_step(lambda: setok.tokenize(images.to(dtype)).tokens, backward=False)
        with torch.no_grad():
            clusterings.append(setok.tokenize(images.to(dtype)).clusters)
        rows.append([f"frozen SeTok tokenize, {str(dtype)[6:]}", f"{b} images",
                     f"{hw.mfu * tflops * 1e12 / v['setok_fwd']:,.1f} images/s", f"{b / sec:,.1f} images/s", "—",
                     "—"])
    same = cluster_agreement(*clusterings)
    rows.append(["frozen SeTok clustering, bf16 against fp32", f"{b} images", "—",
                 f"token count equal in {same['count']:.0%} of images, patch's token equal in {same['patch']:.0%} "
                 f"of patches", "—", "—"])
    return rows


def measure_llm(cfg: Config, hw: Hardware, s1: Stage, s2: Stage, device: str) -> list[list[str]]:
    """LLaMA-2-7B (random, bf16) training steps: Stage-I shapes with and without recomputation, Stage-II with LoRA.
    The loss is transformers' causal-LM loss over random ids (SeTokIM adds projectors and heads of < 1% FLOPs)."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            lm = llama_2_7b(LLAMA2_7B["vocab"] + ADDED_TOKENS)
    finally:
        torch.set_default_dtype(default)
    lm.config.use_cache = False
    peak, n_mm, L, h = hw.bf16_tflops * 1e12, matmul_params(lm), LLAMA2_7B["layers"], LLAMA2_7B["hidden"]
    lora = cfg.mllm.lora
    n_lora = lora_params(hidden=h, intermediate=LLAMA2_7B["intermediate"], layers=L, r=lora.r,
                         targets=list(lora.target_modules))
    p1, p2 = int(s1.positions), int(s2.positions)
    cases = [(s1.micro, p1, True, None), (max(1, s1.micro // 2), p1, False, None), (s2.micro, p2, False, lora)]
    rows = []
    for micro, seq, recompute, adapters in cases:
        if adapters is not None:
            lm.gradient_checkpointing_disable()
            for p in lm.parameters():
                p.grad = None
            lm = with_lora(lm, adapters)
            per_pos = 4.0 * n_mm + 12.0 * L * h * seq + 6.0 * n_lora
        else:
            (lm.gradient_checkpointing_enable if recompute else lm.gradient_checkpointing_disable)()
            per_pos = 3 * llm_forward_flops(matmul_params=n_mm, layers=L, hidden=h, tokens=seq) / seq
        ids = torch.randint(0, LLAMA2_7B["vocab"], (micro, seq), device=device)
        sec, mem = time_step(lambda: lm(input_ids=ids, labels=ids).loss)
        what = "stage2: LLaMA-2-7B + LoRA" if adapters is not None else \
            f"stage1: LLaMA-2-7B, {'full' if recompute else 'no'} recompute"
        rows.append([f"{what}, forward + backward", f"{micro} x {seq}", f"{hw.mfu * peak / per_pos:,.0f} positions/s",
                     f"{micro * seq / sec:,.0f} positions/s (MFU {micro * seq * per_pos / sec / peak:.0%})",
                     gb(llm_activations(seq=seq, batch=micro, lora=adapters, recompute=recompute)), gb(mem)])
    return rows


def measure(cfg: Config, hw: Hardware, a: Assumptions, device: str) -> str:
    """One micro-batch of each stage's dominant computation at paper size on ``device`` (random weights, synthetic
    inputs; one GPU, so no ZeRO and no optimizer), beside the plan's numbers."""
    m = build_meta(cfg)
    v = vision_costs(m, cfg, a)
    plan = {s.name: s for s in stages(m, v, cfg, a)}
    rows = measure_setok(cfg, hw, v, plan["tokenizer"], device)
    rows += measure_llm(cfg, hw, plan["stage1"], plan["stage2"], device)
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else device
    return f"Measured by `python benchmarks/scaling_plan.py --measure` on {name}, {datetime.date.today()}.\n\n" + \
        table(["measurement", "micro-batch", "planned", "measured", "planned activations",
               "measured peak above weights + grads"], rows)
