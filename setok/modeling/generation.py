"""SeTokIM inference (Sec. 2.2, Figure 3): greedy text answers and autoregressive images with a KV cache.

Prompts are packed LEFT-padded (:func:`pack_prompts`) so that the last real token of every row sits in the last
column; each step then appends one column. Positions count real tokens only (``cumsum(mask) - 1``), so a padded row
sees the same rotary positions as the same prompt alone.

Images are generated as ``[Img] v_1 .. v_C``: ``z_k = W_out h_{k-1}`` conditions the diffusion head, which samples
``v_k`` (``p(y_k | z_k)``, Eq. 4, MAR); ``v_k`` is fed back through the input projector and the end-of-image head on
its hidden state decides whether the image ends after it. With classifier-free guidance the unconditional prompts run
as a second half of the batch, ``[cond; uncond]``, sharing one KV cache but not one history.

The only Python loop runs over generation steps; everything inside a step is batched. Greedy text gives the same
tokens as transformers' ``generate`` over the same ``inputs_embeds`` and mask (:func:`transformers_greedy`, tested),
with the same forward passes (measured in ``benchmarks/generate_speed.py``); the image loop needs what ``generate``
does not expose between steps (the hidden state, new embeddings that are not token ids), and text shares its cache.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from setok.modeling.mllm import MultimodalBatch, Segment, SeTokIM, pack_sequences


def left_align(batch: MultimodalBatch, *, length: int | None = None, pad_id: int) -> MultimodalBatch:
    """Move each row's padding to the left, optionally widening the batch to ``length`` columns.

    Works on a right- or left-padded batch: every row's real positions are kept in order and end in the last column.
    The visual tokens keep their row-major order, since rows keep their order and tokens their order within a row.

    Args:
        batch: a padded batch with ``(B, L)`` fields.
        length: output width ``L' >= L`` (``L`` when None).
        pad_id: id written at the new padding positions.

    Returns: a batch with ``(B, L')`` fields whose attention mask is ``[0 .. 0, 1 .. 1]`` in every row.
    """
    b, width = batch.input_ids.shape
    length = width if length is None else length
    if length < width:
        raise ValueError(f"cannot narrow a batch of width {width} to {length}")
    mask = batch.attention_mask.bool()
    n = mask.sum(1)  # (B,) real positions per row
    # Rank of each real position inside its row, and the column it moves to: rank + (L' - n).
    rank = mask.long().cumsum(1) - 1  # (B, L)
    column = torch.where(mask, rank + (length - n)[:, None], torch.full_like(rank, length))  # padding -> dropped
    row = torch.arange(b, device=mask.device)[:, None].expand(b, width)  # (B, L)

    def move(x: Tensor, fill: int | bool) -> Tensor:
        out = x.new_full((b, length + 1), fill)  # (B, L' + 1): the extra column collects padding
        out[row, column] = x
        return out[:, :length]  # (B, L')

    return MultimodalBatch(
        input_ids=move(batch.input_ids, pad_id), attention_mask=move(batch.attention_mask, 0),
        labels=move(batch.labels, -100), visual=move(batch.visual, False), visual_tokens=batch.visual_tokens,
        visual_train=batch.visual_train, visual_last=batch.visual_last, extras=dict(batch.extras),
        visual_codes=batch.visual_codes,
    )


def pack_prompts(
    samples: list[list[Segment]],
    *,
    tokenize: Callable[[str], list[int]],
    img_start_id: int,
    img_end_id: int,
    pad_id: int,
    token_dim: int,
    bos_id: int | None = None,
) -> MultimodalBatch:
    """Lay out prompts as :func:`~setok.modeling.mllm.pack_sequences` does, but LEFT-padded for generation.

    Arguments are those of ``pack_sequences``. Returns a batch whose ``(B, L)`` fields end with each row's last real
    token in column ``L - 1``; ``visual_tokens (M, D)`` are the prompts' image tokens in row-major order.
    """
    packed = pack_sequences(samples, tokenize=tokenize, img_start_id=img_start_id, img_end_id=img_end_id,
                            pad_id=pad_id, token_dim=token_dim, bos_id=bos_id)
    return left_align(packed, pad_id=pad_id)


def positions(attention_mask: Tensor) -> Tensor:
    """``(B, L)`` rotary positions of a left-padded mask: ``cumsum(mask) - 1``, 0 at padding."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_min(0)


class CachedLM:
    """A KV-cached pass over a left-padded batch, one column at a time after the prompt.

    Args:
        model: the SeTokIM whose LLM is run.
        prompt: the left-padded prompt batch ``(B, L)``.
        extra: ``(B, E, H)`` embeddings appended after the prompt before the first pass (e.g. ``[Img]``), or None.
        keep_hidden: keep the last hidden state of each new column (``self.hidden``; images need it, text does not,
            and without it the LLM skips collecting every layer's states at every step).
    """

    def __init__(
        self, model: SeTokIM, prompt: MultimodalBatch, *, extra: Tensor | None = None, keep_hidden: bool = True
    ) -> None:
        self.model = model
        self.keep_hidden = keep_hidden
        emb = model.embed(prompt)  # (B, L, H)
        mask = prompt.attention_mask.long()  # (B, L)
        if extra is not None:
            emb = torch.cat([emb, extra.to(emb.dtype)], dim=1)  # (B, L + E, H)
            mask = torch.cat([mask, mask.new_ones(extra.shape[:2])], dim=1)  # (B, L + E)
        self.mask = mask
        self.next_position = mask.sum(1, keepdim=True)  # (B, 1) position of the next column
        out = model.lm(inputs_embeds=emb, attention_mask=mask, position_ids=positions(mask), use_cache=True,
                       output_hidden_states=keep_hidden, logits_to_keep=1)  # the next token's logits only
        self._keep(out)

    def _keep(self, out: Any) -> None:
        """Keep the cache, the logits ``(B, V)`` and (``keep_hidden``) the last hidden state ``(B, H)`` of ``out``."""
        self.cache = out.past_key_values
        self.logits = out.logits[:, -1]
        self.hidden = out.hidden_states[-1][:, -1] if self.keep_hidden else None

    def step(self, emb: Tensor) -> tuple[Tensor, Tensor | None]:
        """Append one column.

        Args:
            emb: ``(B, H)`` embeddings of the new tokens.

        Returns: ``(logits (B, V), last hidden state (B, H) or None without keep_hidden)`` at the new column.
        """
        self.mask = torch.cat([self.mask, self.mask.new_ones(emb.shape[0], 1)], dim=1)  # (B, L + 1)
        out = self.model.lm(inputs_embeds=emb[:, None], attention_mask=self.mask, position_ids=self.next_position,
                            past_key_values=self.cache, use_cache=True, output_hidden_states=self.keep_hidden)
        self.next_position = self.next_position + 1
        self._keep(out)
        return self.logits, self.hidden


@torch.no_grad()
def generate_text(
    model: SeTokIM, prompts: MultimodalBatch, *, max_new_tokens: int, eos_id: int, pad_id: int
) -> list[list[int]]:
    """Greedy decoding of a text answer for every prompt.

    Args:
        model: the SeTokIM.
        prompts: a left-padded batch from :func:`pack_prompts` (``(B, L)``).
        max_new_tokens: the longest answer.
        eos_id: a row stops after emitting it (the returned answer ends with it); negative: no stop.
        pad_id: fed to rows that already stopped (their outputs are discarded).

    Returns: ``B`` lists of generated ids.
    """
    run = CachedLM(model, prompts, keep_hidden=False)
    table = model.lm.get_input_embeddings()
    b = prompts.input_ids.shape[0]
    done = torch.zeros(b, dtype=torch.bool, device=run.logits.device)
    out = torch.full((b, max_new_tokens), pad_id, dtype=torch.long, device=run.logits.device)
    lengths = torch.zeros(b, dtype=torch.long, device=run.logits.device)
    for t in range(max_new_tokens):
        token = torch.where(done, torch.full_like(lengths, pad_id), run.logits.argmax(-1))  # (B,)
        out[:, t] = token
        lengths += (~done).long()
        done = done | (token == eos_id)
        if bool(done.all()) or t == max_new_tokens - 1:
            break
        run.step(table(token))
    return [row[:n].tolist() for row, n in zip(out.cpu(), lengths.cpu())]


@torch.no_grad()
def transformers_greedy(
    model: SeTokIM, prompts: MultimodalBatch, *, max_new_tokens: int, eos_id: int, pad_id: int
) -> list[list[int]]:
    """:func:`generate_text`'s reference: transformers' greedy ``generate`` over the same ``inputs_embeds``.

    Same arguments and result as :func:`generate_text` (``eos_id < 0``: no stop); ``generate`` pads the rows that
    stopped with ``pad_id``, cut here after each row's first ``eos_id``. Used by the equality test and the speed
    benchmark (``benchmarks/generate_speed.py``).
    """
    eos = eos_id if eos_id >= 0 else None  # an explicit None switches off the checkpoint's own stop id
    ids = model.lm.generate(inputs_embeds=model.embed(prompts), attention_mask=prompts.attention_mask,
                            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=eos,
                            pad_token_id=pad_id).tolist()  # (B, n <= max_new_tokens): the new tokens only
    return [row[: row.index(eos_id) + 1] if eos_id in row else row for row in ids]


@torch.no_grad()
def generate_image(
    model: SeTokIM,
    prompts: MultimodalBatch,
    *,
    max_tokens: int,
    img_start_id: int,
    img_end_id: int,
    temperature: float = 1.0,
    cfg: float = 1.0,
    num_steps: int = 100,
    uncond_prompts: MultimodalBatch | None = None,
    generator: torch.Generator | None = None,
    pad_id: int = 0,
) -> list[Tensor]:
    """Generate one image, as SeTok tokens, after every prompt.

    ``[Img]`` is appended; then at step ``k``: ``z = W_out h`` (the last state) -> ``v_k = diffloss.sample(z)`` ->
    ``v_k`` goes back through the input projector -> the end-of-image head on ``v_k``'s state stops the row when
    ``sigmoid(logit) > 0.5``. Every image has at least one token and at most ``max_tokens``.

    Args:
        model: the SeTokIM.
        prompts: ``(B, L)`` left-padded prompts (:func:`pack_prompts`), without the ``[Img]``.
        max_tokens: the most visual tokens per image.
        img_start_id: id of ``[Img]``.
        img_end_id: id of ``[/Img]`` (implied by the end-of-image head; kept for the caller's layout).
        temperature, num_steps, generator: passed to ``diffloss.sample``.
        cfg: classifier-free guidance scale; ``cfg != 1`` needs ``uncond_prompts``.
        uncond_prompts: ``(B, L_u)`` left-padded unconditional prompts (e.g. the caption removed), row-aligned with
            ``prompts``.
        pad_id: id written where the two halves are padded to one width (masked, so any valid id).

    Returns: ``B`` tensors ``(C_i, D)``.
    """
    del img_end_id  # the image's end is the end-of-image head's decision, not a sampled token
    guided = cfg != 1.0
    b = prompts.input_ids.shape[0]
    if guided:
        if uncond_prompts is None or uncond_prompts.input_ids.shape[0] != b:
            raise ValueError("classifier-free guidance needs one unconditional prompt per prompt")
        prompts = concat_prompts(prompts, uncond_prompts, pad_id=pad_id)  # (2B, L') = [cond; uncond]
    rows = prompts.input_ids.shape[0]
    start = torch.full((rows, 1), img_start_id, dtype=torch.long, device=prompts.input_ids.device)
    run = CachedLM(model, prompts, extra=model.lm.get_input_embeddings()(start))  # state at [Img]
    device = run.hidden.device
    done = torch.zeros(b, dtype=torch.bool, device=device)
    lengths = torch.zeros(b, dtype=torch.long, device=device)
    tokens = []
    for k in range(max_tokens):
        z = model.condition(run.hidden)  # (rows, cond_dim)
        v = model.diffloss.sample(z, temperature=temperature, cfg=cfg, num_steps=num_steps, generator=generator)
        tokens.append(v[:b])  # (B, D): both halves hold the guided sample; keep the conditional one
        lengths += (~done).long()
        if k == max_tokens - 1:
            break
        _, h = run.step(model.project_tokens(v, run.hidden.dtype))  # (rows, H)
        stop = model.end_of_image_logit(h[:b]) > 0  # (B,) sigmoid > 0.5
        done = done | stop
        if bool(done.all()):
            break
    image = torch.stack(tokens, dim=1)  # (B, K, D)
    return [row[:n] for row, n in zip(image, lengths.tolist())]


def concat_prompts(a: MultimodalBatch, b: MultimodalBatch, *, pad_id: int) -> MultimodalBatch:
    """Stack two left-padded batches as ``[a; b]`` (``(B_a + B_b, max(L_a, L_b))``), padding the narrower on the left.

    The visual tokens of ``a`` come first, matching the row-major order of the stacked ``visual`` mask.
    """
    length = max(a.input_ids.shape[1], b.input_ids.shape[1])
    a, b = left_align(a, length=length, pad_id=pad_id), left_align(b, length=length, pad_id=pad_id)
    return MultimodalBatch(**{
        name: torch.cat([getattr(a, name), getattr(b, name)])
        for name in ("input_ids", "attention_mask", "labels", "visual", "visual_tokens", "visual_train", "visual_last",
                     "visual_codes")
    })
