"""Image generation with the unified MLLM on SemHiTok codes (SemHiTok Sec. 3.3): ``[Img]``, then ``N = h * w``
codes sampled one at a time from the image rows of the shared head, with classifier-free guidance on the logits.

CFG (Sec. 3.3: the text condition is dropped with p = 0.1 in training) follows the autoregressive recipe of LlamaGen:
``l = l_uncond + s (l_cond - l_uncond)``, the conditional and unconditional prompts running as the two halves of one
batch, ``[cond; uncond]``, sharing the KV cache machinery of :mod:`setok.modeling.generation` but not one history;
both halves are fed the same sampled code. Text answers use :func:`setok.modeling.generation.generate_text`
unchanged: the LLM's own logits cover the text vocabulary only, so a text answer never emits an image code.
"""
from __future__ import annotations

import torch
from torch import Tensor

from setok.modeling.generation import CachedLM, concat_prompts
from setok.modeling.mllm import MultimodalBatch
from setok.modeling.unified_mllm import SemHiTokIM


def sample_logits(logits: Tensor, *, temperature: float, top_k: int, generator: torch.Generator | None) -> Tensor:
    """``(B, V)`` -> ``(B,)`` sampled ids (greedy when ``temperature == 0``; ``top_k = 0`` keeps every id)."""
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.no_grad()
def generate_codes(
    model: SemHiTokIM,
    prompts: MultimodalBatch,
    *,
    num_tokens: int,
    img_start_id: int,
    temperature: float = 1.0,
    top_k: int = 0,
    cfg: float = 1.0,
    uncond_prompts: MultimodalBatch | None = None,
    generator: torch.Generator | None = None,
    pad_id: int = 0,
) -> Tensor:
    """Generate one image of ``num_tokens`` flattened codes after every prompt.

    Args:
        model: the unified MLLM.
        prompts: ``(B, L)`` left-padded prompts (:func:`setok.modeling.generation.pack_prompts`), without ``[Img]``.
        num_tokens: codes per image (the tokenizer's ``h * w``).
        img_start_id: id of ``[Img]``.
        temperature, top_k, generator: sampling (:func:`sample_logits`).
        cfg: guidance scale ``s``; ``cfg != 1`` needs ``uncond_prompts`` (row-aligned with ``prompts``).
        pad_id: id written where the two halves are padded to one width.

    Returns: ``(B, num_tokens)`` long codes in ``[0, K*m)``.
    """
    guided = cfg != 1.0
    b = prompts.input_ids.shape[0]
    if guided:
        if uncond_prompts is None or uncond_prompts.input_ids.shape[0] != b:
            raise ValueError("classifier-free guidance needs one unconditional prompt per prompt")
        prompts = concat_prompts(prompts, uncond_prompts, pad_id=pad_id)  # (2B, L')
    rows = prompts.input_ids.shape[0]
    start = torch.full((rows, 1), img_start_id, dtype=torch.long, device=prompts.input_ids.device)
    run = CachedLM(model, prompts, extra=model.lm.get_input_embeddings()(start))  # state at [Img]
    codes = []
    for k in range(num_tokens):
        logits = model.image_logits(run.hidden).float()  # (rows, K*m)
        if guided:
            cond, uncond = logits[:b], logits[b:]
            logits = uncond + cfg * (cond - uncond)
        code = sample_logits(logits, temperature=temperature, top_k=top_k, generator=generator)  # (B,)
        codes.append(code)
        if k == num_tokens - 1:
            break
        emb = model.code_embeddings(code.repeat(rows // b)).to(run.hidden.dtype)  # (rows, H), same code per half
        run.step(emb)
    return torch.stack(codes, dim=1)
