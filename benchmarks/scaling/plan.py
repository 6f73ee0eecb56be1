"""The plan: the machine and the data assumptions, each training stage's parameters, per-sample FLOPs and activation
bytes at the sizes of a config (vision costs counted on the meta-built modules, the LLM's by closed form)."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from setok.config import Config, LoRAConfig
from setok.modeling.build import frozen_tokenizer_dtype

from .counting import flop_count, matmul_params, meta, n_params, saved_bytes
from .formulas import (
    ADDED_TOKENS,
    LLAMA2_7B,
    layer_activation_bytes,
    llm_forward_flops,
    logits_bytes,
    lora_activation_bytes,
    lora_params,
)


@dataclasses.dataclass(frozen=True)
class Hardware:
    """The machine the plan targets (the paper: 64 x H100 80 GB) and the efficiency assumed."""

    gpus: int = 64
    memory_gb: float = 80.0
    bf16_tflops: float = 989.0  # H100 SXM dense BF16 tensor-core peak (no sparsity)
    fp32_tflops: float = 67.0  # H100 SXM FP32 without tensor cores (PyTorch's default for fp32 matmuls: no TF32)
    mfu: float = 0.40  # model FLOPs utilisation assumed for every stage
    ib_gbs: float = 50.0  # GB/s per GPU between nodes (one 400 Gb/s NIC per GPU)
    nvlink_gbs: float = 450.0  # GB/s per GPU per direction inside one 8-GPU node
    headroom: float = 0.9  # usable share of GPU memory (allocator, NCCL and DeepSpeed buffers, CUDA context)


@dataclasses.dataclass(frozen=True)
class Assumptions:
    """Data-dependent quantities the papers do not give (docs/scaling.md lists them)."""

    visual_tokens: int = 25  # SeTok tokens per image (Table 5: 23-25 on average)
    stage1_images: float = 0.3  # images per Stage-I sample: 7:3 text:vision mixture, one image per vision sample
    stage2_images: float = 1.0  # images per Stage-II sample
    stage1_positions: int | None = None  # LLM positions per Stage-I sample (None: mllm.max_length)
    stage2_positions: int = 512  # LLM positions per Stage-II sample after padding to the longest in the micro-batch
    skew: float = 0.5  # share of the patches in the largest cluster, for the skewed tokenizer row


@dataclasses.dataclass(frozen=True)
class Stage:
    """One training stage: schedule, parameters and per-sample costs."""

    name: str
    steps: int
    batch: int
    micro: int
    zero: int
    trainable: int  # parameters the engine trains
    frozen: int  # frozen parameters inside the engine (bf16)
    outside: float  # bytes of frozen modules outside the engine (frozen SeTok, text tower, ...)
    positions: float  # LLM positions (or vision patches) per sample
    bf16_flops: float  # model FLOPs per sample on bf16 tensor cores (forward + backward)
    frozen_flops: float  # FLOPs per sample of the frozen SeTok forward outside the engine
    frozen_precision: str  # the precision it runs at: "fp32" (no tensor cores), "bf16" or "fp16"
    recompute_flops: float  # extra FLOPs per sample under full activation recomputation
    act: float  # activation bytes per micro-batch, nothing recomputed
    act_recompute: float | None  # the same under full recomputation (None: not planned)


def vision_costs(m: dict[str, Any], cfg: Config, a: Assumptions) -> dict[str, float]:
    """Per-image FLOPs of SeTok's pieces and the mask decoder, and per-image saved bytes of the CNN decoders."""
    setok, md = m["setok"], m["mask_decoder"]
    enc, merger, detok = setok.encoder, setok.merger, setok.detokenizer
    s = cfg.tokenizer.backbone.image_size
    _, h, w, d = enc(meta(1, 3, s, s)).shape
    n, c, dim = h * w, a.visual_tokens, merger.proj.out_features

    def merge(groups: int, length: int, grad: bool) -> Callable[[], Tensor]:
        return lambda: (merger.proj(meta(1, n, d, grad=grad)).sum()
                        + merger.inter(merger.inner(meta(groups, length, dim, grad=grad)).mean(1)[None]).sum())

    balanced, skewed = math.ceil(n / c), math.ceil(a.skew * n)
    tokens, valid = meta(1, c, dim, grad=True), torch.ones(1, c, dtype=torch.bool, device="meta")
    g = detok.grid
    mul = m["setokim"].diffloss.diffusion_batch_mul
    net, cond = m["setokim"].diffloss.net, m["setokim"].output_projector.out_features
    t = torch.zeros(mul, dtype=torch.long, device="meta")
    out = {
        "patches": n, "width": d, "grid": h, "gram": 2.0 * n * n * d,  # Eq. (1)-(2): all pairwise distances
        "enc_fwd": flop_count(lambda: enc(meta(1, 3, s, s)), backward=False),
        "enc_train": flop_count(lambda: enc(meta(1, 3, s, s)), backward=True),
        "merge_fwd": flop_count(merge(c, balanced, False), backward=False),
        "merge_train": flop_count(merge(c, balanced, True), backward=True),
        "merge_train_skewed": flop_count(merge(c, skewed, True), backward=True),
        "detok_train": flop_count(lambda: detok(tokens, valid), backward=True),
        "detok_fwd": flop_count(lambda: detok(tokens, valid), backward=False),
        "maskdec_train": flop_count(lambda: md(meta(1, h, w, d), meta(1, c, dim)), backward=True),
        "diff_train": flop_count(lambda: net(meta(mul, dim), t, meta(mul, cond, grad=True)), backward=True),
        # fp32 meta tensors: halved for 16-bit training
        "pixdec_saved": saved_bytes(lambda: detok.pixel_decoder(meta(1, detok.pos.shape[-1], g, g, grad=True))) / 2,
        "maskdec_saved": saved_bytes(lambda: md(meta(1, h, w, d), meta(1, c, dim))) / 2,
        "balanced": balanced, "skewed": skewed,
    }
    out["setok_fwd"] = out["enc_fwd"] + out["merge_fwd"] + out["gram"]
    return out


def vit_sizes(visual: nn.Module) -> tuple[int, int, int]:
    """``(layers, heads, MLP width)`` of an open_clip vision tower: timm trunk (SigLIP) or native ViT (CI)."""
    trunk = getattr(visual, "trunk", None)
    if trunk is not None:
        return len(trunk.blocks), trunk.blocks[0].attn.num_heads, trunk.blocks[0].mlp.fc1.out_features
    blocks = visual.transformer.resblocks
    return len(blocks), blocks[0].attn.num_heads, blocks[0].mlp.c_fc.out_features


def tokenizer_activations(
    m: dict[str, Any], v: dict[str, float], cfg: Config, a: Assumptions, b: int, length: int
) -> float:
    """Bytes SeTok training saves per micro-batch of ``b`` images (clusters of ``length`` patches)."""
    layers, heads, ffn = vit_sizes(m["setok"].encoder.visual)
    merger, mc, dc = m["setok"].merger, cfg.tokenizer.merger, cfg.tokenizer.detokenizer
    c, n = a.visual_tokens, v["patches"]
    enc = layers * layer_activation_bytes(seq=n, batch=b, hidden=v["width"], heads=heads, ffn=ffn)
    ffn = int(mc.dim * mc.mlp_ratio)
    merge = 2.0 * b * n * v["width"] + len(merger.inner.blocks) * layer_activation_bytes(
        seq=length, batch=b * c, hidden=mc.dim, heads=mc.heads, ffn=ffn) + len(merger.inter.blocks) * \
        layer_activation_bytes(seq=c, batch=b, hidden=mc.dim, heads=mc.heads, ffn=ffn)
    detok = dc.layers * layer_activation_bytes(seq=dc.grid**2, batch=b, hidden=dc.dim, heads=dc.heads,
                                               ffn=int(dc.dim * dc.mlp_ratio), context=c) + b * v["pixdec_saved"]
    return enc + merge + detok


def llm_activations(*, seq: int, batch: int, lora: LoRAConfig | None, recompute: bool) -> float:
    """Bytes LLaMA-2-7B training saves per micro-batch (flash attention), LM-head logits included."""
    L, h = LLAMA2_7B["layers"], LLAMA2_7B["hidden"]
    layer = layer_activation_bytes(seq=seq, batch=batch, hidden=h, heads=LLAMA2_7B["heads"],
                                   ffn=LLAMA2_7B["intermediate"], mlp="swiglu")
    if lora is not None:
        layer += lora_activation_bytes(seq=seq, batch=batch, hidden=h, intermediate=LLAMA2_7B["intermediate"],
                                       r=lora.r, targets=list(lora.target_modules), dropout=lora.dropout)
    stored = L * 2.0 * seq * batch * h + layer if recompute else L * layer  # recompute: layer inputs + one layer
    return stored + logits_bytes(seq=seq, batch=batch, vocab=LLAMA2_7B["vocab"] + ADDED_TOKENS)


def stages(m: dict[str, Any], v: dict[str, float], cfg: Config, a: Assumptions) -> list[Stage]:
    """The four training stages of the harness at the sizes of ``cfg``."""
    setok, setokim, md, lm = m["setok"], m["setokim"], m["mask_decoder"], m["setokim"].lm
    h, L, c = LLAMA2_7B["hidden"], LLAMA2_7B["layers"], a.visual_tokens
    n_mm = matmul_params(lm)
    heads = n_params(setokim) - n_params(lm)
    lora = n_params(m["lora_lm"], trainable=True)
    n_lora = lora_params(hidden=h, intermediate=LLAMA2_7B["intermediate"], layers=L, r=cfg.mllm.lora.r,
                         targets=list(cfg.mllm.lora.target_modules))
    tt, s1, s2, sm = cfg.train_tokenizer, cfg.train_stage1, cfg.train_stage2, cfg.train_mask_decoder
    # The frozen SeTok of the MLLM stages at mllm.tokenizer_precision (as_trained: train_tokenizer's, bf16).
    tok_dtype = frozen_tokenizer_dtype(cfg.mllm.tokenizer_precision, cfg)
    prec = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[tok_dtype]
    tok_bytes = float(torch.finfo(tok_dtype).bits // 8)
    tok_fwd = v["enc_fwd"] + v["merge_fwd"] + v["gram"] + v["detok_fwd"]
    out = []
    for label, key, length in (("tokenizer", "merge_train", v["balanced"]),
                               ("tokenizer (skewed clusters)", "merge_train_skewed", v["skewed"])):
        out.append(Stage(label, tt.steps, tt.batch_size, tt.micro_batch_size, tt.zero_stage,
                         n_params(setok, trainable=True), n_params(setok, trainable=False), 4.0 * m["text_params"],
                         v["patches"], v["enc_train"] + v[key] + v["detok_train"] + v["gram"], 0.0, "bf16", tok_fwd,
                         tokenizer_activations(m, v, cfg, a, tt.micro_batch_size, length), None))
    p1 = a.stage1_positions or cfg.mllm.max_length
    fwd1 = llm_forward_flops(matmul_params=n_mm, layers=L, hidden=h, tokens=p1)
    out.append(Stage("stage1", s1.steps, s1.batch_size, s1.micro_batch_size, s1.zero_stage, n_params(setokim), 0,
                     tok_bytes * n_params(setok), p1,
                     3 * fwd1 + a.stage1_images * c * v["diff_train"], a.stage1_images * v["setok_fwd"], prec, fwd1,
                     llm_activations(seq=p1, batch=s1.micro_batch_size, lora=None, recompute=False),
                     llm_activations(seq=p1, batch=s1.micro_batch_size, lora=None, recompute=True)))
    # The mask-decoder phase holds SeTok and the mask decoder only (no LLM: setok.train.mllm._train_mask_decoder).
    out.append(Stage("mask_decoder", sm.steps, sm.batch_size, sm.micro_batch_size, sm.zero_stage, n_params(md), 0,
                     tok_bytes * n_params(setok), v["patches"], v["maskdec_train"], v["setok_fwd"], prec, 0.0,
                     sm.micro_batch_size * v["maskdec_saved"], None))
    p2 = a.stage2_positions
    mm2, attn2 = 2.0 * n_mm * p2, 4.0 * L * h * p2**2
    out.append(Stage("stage2", s2.steps, s2.batch_size, s2.micro_batch_size, s2.zero_stage, lora + heads,
                     n_params(lm), tok_bytes * n_params(setok), p2,
                     2 * mm2 + 3 * attn2 + 6.0 * n_lora * p2 + a.stage2_images * c * v["diff_train"],
                     a.stage2_images * v["setok_fwd"], prec, mm2 + attn2,
                     llm_activations(seq=p2, batch=s2.micro_batch_size, lora=cfg.mllm.lora, recompute=False),
                     llm_activations(seq=p2, batch=s2.micro_batch_size, lora=cfg.mllm.lora, recompute=True)))
    return out
