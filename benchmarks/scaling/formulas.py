"""Closed forms of the plan: parameter counts, ZeRO model-state bytes, activation bytes, FLOPs and communication.

Plain arithmetic on sizes (no torch); ``tests/test_scaling_plan.py`` checks each against a real tiny model.
"""
from __future__ import annotations

import math

GB = 1e9
LLAMA2_7B = {"hidden": 4096, "intermediate": 11008, "layers": 32, "heads": 32, "vocab": 32000}
ADDED_TOKENS = 3  # [Img], [/Img] and <pad> (LLaMA-2 has none): setok.modeling.llm.add_image_tokens
SHAPES = {"q_proj": "hh", "k_proj": "hh", "v_proj": "hh", "o_proj": "hh", "gate_proj": "hf", "up_proj": "hf",
          "down_proj": "fh"}  # (in, out) of LLaMA's linear layers: h = hidden, f = intermediate


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
