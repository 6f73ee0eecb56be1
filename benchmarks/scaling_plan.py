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
from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from torch import Tensor, nn

from setok.config import Config, LoRAConfig
from setok.modeling.build import frozen_tokenizer_dtype
from setok.modeling.clustering import cluster_agreement

GB = 1e9
LLAMA2_7B = {"hidden": 4096, "intermediate": 11008, "layers": 32, "heads": 32, "vocab": 32000}
ADDED_TOKENS = 3  # [Img], [/Img] and <pad> (LLaMA-2 has none): setok.modeling.llm.add_image_tokens
SHAPES = {"q_proj": "hh", "k_proj": "hh", "v_proj": "hh", "o_proj": "hh", "gate_proj": "hf", "up_proj": "hf",
          "down_proj": "fh"}  # (in, out) of LLaMA's linear layers: h = hidden, f = intermediate
TABLE13 = [("SigLIP + MLP", 256, 15.8), ("SigLIP + Q-former", 32, 12.4), ("SigLIP + Resampler", 64, 13.4),
           ("SeTok", 25, 8.2)]  # (mechanism, visual tokens, TFLOPs) as printed in the SeTok paper's Table 13


# --------------------------------------------------------------------------------------------- closed forms


def llama_params(*, hidden: int, intermediate: int, layers: int, vocab: int, tied: bool = False) -> int:
    """Parameters of a multi-head LLaMA: per layer 4h^2 (attention) + 3hf (SwiGLU) + 2h (RMSNorms), embeddings
    ``V h`` (twice when the LM head is untied, as in LLaMA-2) and the final RMSNorm ``h``."""
    per_layer = 4 * hidden * hidden + 3 * hidden * intermediate + 2 * hidden
    return layers * per_layer + vocab * hidden * (1 if tied else 2) + hidden


def lora_params(*, hidden: int, intermediate: int, layers: int, r: int, targets: list[str]) -> int:
    """LoRA adapters ``A (r x in)`` and ``B (out x r)`` on each target linear layer: ``r (in + out)`` per layer."""
    size = {"h": hidden, "f": intermediate}
    return layers * sum(r * (size[SHAPES[t][0]] + size[SHAPES[t][1]]) for t in targets)


def zero_bytes(*, trainable: int, frozen: int, stage: int, gpus: int) -> dict[str, float]:
    """Model-state bytes per GPU under ZeRO ``stage`` (Rajbhandari et al. 2020, mixed precision with Adam).

    16-bit weights (2 B/param, frozen ones included), 16-bit gradients (2 B per trainable param) and fp32 master
    weights + Adam m + v (12 B per trainable param). Stage 1 partitions the optimizer state over ``gpus``, stage 2
    also the gradients, stage 3 also the weights.
    """
    n = gpus
    weights = 2.0 * (trainable + frozen) / (n if stage >= 3 else 1)
    grads = 2.0 * trainable / (n if stage >= 2 else 1)
    optim = 12.0 * trainable / (n if stage >= 1 else 1)
    return {"weights": weights, "grads": grads, "optim": optim, "total": weights + grads + optim}


def korthikanti_bytes(*, seq: int, batch: int, hidden: int, heads: int) -> float:
    """Activations of one GPT layer (16-bit, no tensor/sequence parallelism): ``s b h (34 + 5 a s / h)`` bytes
    (Korthikanti et al. 2022, Eq. 1; 4h MLP, dropout everywhere)."""
    return seq * batch * hidden * (34 + 5 * heads * seq / hidden)


def layer_activation_bytes(
    *, seq: int, batch: int, hidden: int, heads: int, ffn: int, mlp: str = "gelu", flash: bool = True, context: int = 0
) -> float:
    """Bytes a pre-norm transformer layer saves for backward (16-bit, no dropout), Korthikanti's accounting.

    Attention: norm input 2sbh, q/k/v input 2sbh, q, k, v 6sbh, output-projection input 2sbh, plus the softmax
    probabilities ``2 a s^2 b`` unless a fused (flash) kernel recomputes them. MLP: norm input 2sbh, first-linear
    input 2sbh, then ``4 s b f`` for GELU (activation input and output) or ``8 s b f`` for SwiGLU (gate, SiLU(gate),
    up, their product). A cross-attention to ``context`` positions (detokenizer) adds norm/q inputs and q, output
    input ``8sbh`` and context norm/kv inputs and k, v ``8 b c h``.
    """
    sbh = seq * batch * hidden
    total = 16 * sbh + (4 if mlp == "gelu" else 8) * seq * batch * ffn
    if not flash:
        total += 2 * heads * seq * seq * batch
    if context:
        total += 8 * sbh + 8 * batch * context * hidden
    return float(total)


def lora_activation_bytes(*, seq: int, batch: int, hidden: int, intermediate: int, r: int, targets: list[str],
                          dropout: float) -> float:
    """Extra bytes peft's LoRA saves per LLaMA layer: per target, the ``A`` input (its own dropout output 2 B and mask
    1 B per element when ``dropout > 0``, else the shared layer input) and the ``r``-wide ``A`` output (2 B)."""
    size = {"h": hidden, "f": intermediate}
    per_in = 3 if dropout > 0 else 0
    return float(sum(seq * batch * (per_in * size[SHAPES[t][0]] + 2 * r) for t in targets))


def logits_bytes(*, seq: int, batch: int, vocab: int) -> float:
    """Peak bytes of the LM head's output: bf16 logits, their fp32 copy (``SeTokIM.forward`` calls ``.float()``) and
    the fp32 log-softmax cross-entropy keeps for backward: ``10 s b V``."""
    return 10.0 * seq * batch * vocab


def llm_forward_flops(*, matmul_params: int, layers: int, hidden: int, tokens: int) -> float:
    """Forward FLOPs of a decoder over a ``tokens``-long sequence: ``2 N tokens`` for the weight matmuls plus
    ``4 L h tokens^2`` for ``QK^T`` and ``AV`` counted over the full square (kernels given an explicit padding mask
    compute every block; a causal-skipping kernel does half)."""
    return 2.0 * matmul_params * tokens + 4.0 * layers * hidden * tokens**2


def implied_tokens(*, flops: float, matmul_params: int, layers: int, hidden: int) -> float:
    """Inverse of :func:`llm_forward_flops`: the sequence length whose forward costs ``flops``."""
    a, b = 4.0 * layers * hidden, 2.0 * matmul_params
    return (-b + math.sqrt(b * b + 4 * a * flops)) / (2 * a)


def usable_gpus(*, batch: int, micro: int, gpus: int) -> int:
    """Most ranks ``n <= gpus`` with ``batch = micro x n x k`` (the harness's samplers reject anything else)."""
    return max((n for n in range(1, gpus + 1) if batch % (micro * n) == 0), default=0)


def comm_bytes(*, zero: int, trainable: int, frozen: int, gpus: int, accumulation: int) -> float:
    """Bytes each GPU sends per optimizer step (ring collectives move ``(n-1)/n`` of the buffer; all-reduce twice).

    ZeRO-0/1: one all-reduce of the bf16 gradients. ZeRO-2: a reduce-scatter per micro-batch plus an all-gather of
    the updated bf16 weights. ZeRO-3: per micro-batch, all-gathers of every bf16 weight in forward and backward plus
    a reduce-scatter of the gradients.
    """
    f = (gpus - 1) / gpus
    if zero <= 1:
        return 2 * f * 2.0 * trainable
    if zero == 2:
        return f * 2.0 * trainable * (accumulation + 1)
    return accumulation * f * (2 * 2.0 * (trainable + frozen) + 2.0 * trainable)


# --------------------------------------------------------------------------------------------- meta builds


def n_params(module: nn.Module | None, *, trainable: bool | None = None) -> int:
    """Number of parameters (``trainable`` True/False: only those with/without ``requires_grad``)."""
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if trainable is None or p.requires_grad == trainable)


def matmul_params(module: nn.Module) -> int:
    """Weights of the ``nn.Linear`` layers: the ``N`` of ``2 N`` FLOPs per token (embeddings are lookups, norms
    elementwise)."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


class _TextStub:
    """Stands in for the SigLIP text encoder, whose Hub tokenizer cannot load offline; SeTok reads only the width."""

    def __init__(self, embed_dim: int) -> None:
        self.embed_dim = embed_dim


def llama_2_7b(vocab: int) -> nn.Module:
    """``LlamaForCausalLM`` of LLaMA-2-7B's sizes with ``vocab`` rows, random, on the default device and dtype."""
    from transformers import LlamaConfig, LlamaForCausalLM

    c = LLAMA2_7B
    return LlamaForCausalLM(LlamaConfig(hidden_size=c["hidden"], intermediate_size=c["intermediate"],
                                        num_hidden_layers=c["layers"], num_attention_heads=c["heads"],
                                        num_key_value_heads=c["heads"], vocab_size=vocab))


def build_setok_on(cfg: Config, device: str) -> tuple[nn.Module, int]:
    """SeTok of ``cfg`` with random weights on ``device`` (``meta``: nothing allocated) through ``build_setok``, and
    the parameter count of the frozen SigLIP text tower (its Hub tokenizer cannot load offline: SeTok gets a stub
    that carries only the embedding width)."""
    import open_clip

    from setok.modeling import build
    from setok.modeling.backbone import VisionEncoder, _register_inline_config, _visual_width

    bb = cfg.tokenizer.backbone
    if bb.model_config is not None:
        _register_inline_config(bb.model_name, bb.model_config)
    with torch.device(device):
        clip = open_clip.create_model(bb.model_name, pretrained=None, force_image_size=bb.image_size, device=device,
                                      pretrained_text=False)
        pre = open_clip.get_model_preprocess_cfg(clip)
        visual = VisionEncoder(visual=clip.visual, mean=tuple(pre["mean"]), std=tuple(pre["std"]),
                               width=_visual_width(clip.visual))
        visual.requires_grad_(bb.train_vision)
        stub = _TextStub(int(open_clip.get_model_config(bb.model_name)["embed_dim"]))
        with mock.patch.object(build, "build_backbone", lambda _cfg: (visual, stub)):
            setok, _ = build.build_setok(cfg.tokenizer)
    return setok, n_params(clip) - n_params(clip.visual)


def build_meta(cfg: Config) -> dict[str, Any]:
    """SeTok, SeTokIM, the mask decoder and a LoRA-wrapped LLM of ``cfg`` on the meta device, through the harness's
    factories (``build_setokim`` gets a meta LLaMA-2-7B with the 3 added tokens instead of the Hub checkpoint)."""
    from setok.modeling import build

    setok, text_params = build_setok_on(cfg, "meta")
    with torch.device("meta"):
        lm = llama_2_7b(LLAMA2_7B["vocab"] + ADDED_TOKENS)
        with mock.patch.object(build, "build_llm", lambda _cfg: (lm, None)):
            setokim, _, mask_decoder = build.build_setokim(cfg, token_dim=setok.merger.proj.out_features,
                                                           image_dim=setok.encoder.width)
        lora_lm = with_lora(llama_2_7b(LLAMA2_7B["vocab"] + ADDED_TOKENS), cfg.mllm.lora)
        plain = n_params(llama_2_7b(LLAMA2_7B["vocab"]))
    return {"setok": setok, "setokim": setokim, "mask_decoder": mask_decoder, "lora_lm": lora_lm,
            "text_params": text_params, "llama_plain": plain}


def with_lora(lm: nn.Module, lora: LoRAConfig) -> nn.Module:
    """peft's LoRA and the two trainable delimiter rows on ``lm``, as ``setok.modeling.llm.add_lora`` configures it."""
    from peft import LoraConfig, get_peft_model

    rows = [LLAMA2_7B["vocab"], LLAMA2_7B["vocab"] + 1]  # [Img], [/Img]
    return get_peft_model(lm, LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM", trainable_token_indices={"model.embed_tokens": rows, "lm_head": rows}))


def flop_count(fn: Callable[[], Tensor], *, backward: bool) -> float:
    """FLOPs (a multiply-add = 2) of ``fn()`` and, if asked, of the backward of its sum, on whatever device."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = fn()
        if backward:
            out.float().sum().backward()
    return float(counter.get_total_flops())


def saved_bytes(fn: Callable[[], Tensor]) -> float:
    """Bytes of the non-parameter tensors autograd saves for backward while running ``fn()`` (each tensor object
    once; two views of one activation count twice, so this is an upper bound)."""
    seen: dict[int, Tensor] = {}

    def pack(t: Tensor) -> Tensor:
        if not isinstance(t, nn.Parameter) and not isinstance(t._base, nn.Parameter):  # weights, ``W.t()`` views
            seen[id(t)] = t
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return float(sum(t.numel() * t.element_size() for t in seen.values()))


def meta(*shape: int, grad: bool = False, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.empty(*shape, device="meta", dtype=dtype, requires_grad=grad)


# --------------------------------------------------------------------------------------------- the plan


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


def memory(st: Stage, hw: Hardware, *, zero: int, recompute: bool) -> dict[str, float]:
    """Bytes per GPU of ``st`` under ZeRO ``zero`` on the ranks it can use."""
    n = usable_gpus(batch=st.batch, micro=st.micro, gpus=hw.gpus)
    z = zero_bytes(trainable=st.trainable, frozen=st.frozen, stage=zero, gpus=n)
    act = st.act_recompute if recompute and st.act_recompute is not None else st.act
    return {**z, "act": act, "total": z["total"] + st.outside + act, "gpus": n}


def needs_recompute(st: Stage, hw: Hardware) -> bool:
    """Full recomputation is planned when the configured ZeRO stage does not fit without it."""
    fits = memory(st, hw, zero=st.zero, recompute=False)["total"] <= hw.headroom * hw.memory_gb * GB
    return st.act_recompute is not None and not fits


def timing(st: Stage, hw: Hardware) -> dict[str, float]:
    """Seconds per sample at ``hw.mfu``, then steps, communication and GPU-hours."""
    frozen_peak = hw.fp32_tflops if st.frozen_precision == "fp32" else hw.bf16_tflops
    frozen_sec = st.frozen_flops / (hw.mfu * frozen_peak * 1e12)
    sec = st.bf16_flops / (hw.mfu * hw.bf16_tflops * 1e12) + frozen_sec
    n = usable_gpus(batch=st.batch, micro=st.micro, gpus=hw.gpus)
    acc = st.batch // (st.micro * n)
    bw = (hw.nvlink_gbs if n <= 8 else hw.ib_gbs) * GB
    comm = comm_bytes(zero=st.zero, trainable=st.trainable, frozen=st.frozen, gpus=n, accumulation=acc) / bw
    gpu_hours = st.steps * st.batch * sec / 3600
    rc = st.recompute_flops if needs_recompute(st, hw) else 0.0
    return {"gpus": n, "sec": sec, "step": st.batch * sec / n, "comm": comm, "gpu_hours": gpu_hours,
            "hours": gpu_hours / n, "hours8": gpu_hours / 8, "hfu": hw.mfu * (st.bf16_flops + rc) / st.bf16_flops,
            "frozen_share": frozen_sec / sec}


# --------------------------------------------------------------------------------------------- output


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


# --------------------------------------------------------------------------------------------- measured (GPU)


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


def replace_section(doc: str, name: str, text: str) -> str:
    """``doc`` with the lines between ``<!-- name:begin -->`` and ``<!-- name:end -->`` replaced by ``text``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if doc.count(begin) != 1 or doc.count(end) != 1 or doc.index(begin) > doc.index(end):
        raise SystemExit(f"error: the document needs one {begin} ... {end} section")
    head, rest = doc.split(begin)
    return f"{head}{begin}\n{text.strip()}\n{end}{rest.split(end, 1)[1]}"


def generated_section(doc: str, name: str) -> str:
    """The text between the ``name`` markers of ``doc`` (what :func:`replace_section` wrote)."""
    return doc.split(f"<!-- {name}:begin -->\n", 1)[1].split(f"\n<!-- {name}:end -->", 1)[0]


if __name__ == "__main__":
    raise SystemExit(main())
