"""SeTokIM (Sec. 2.2, Figure 3): an LLM over one sequence of text tokens and SeTok's variable-length visual tokens.

An image sits in the sequence as ``[Img] v_1 ... v_C [/Img]``. Text positions are trained with cross-entropy; each
visual token ``v_k`` of an image the model must *generate* is predicted from the LLM state one position earlier,
``z_k = W_out h_{k-1}``, through the diffusion loss (Eq. 4, MAR's ``DiffLoss``); a learned end-of-image head decides,
at every generated visual token, whether the image ends there, so the number of generated tokens is dynamic.

Batches are packed once on the data side (:func:`pack_sequences`); the forward pass is vectorised over the batch.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IMG_START, IMG_END = "[Img]", "[/Img]"


@dataclass
class Segment:
    """One piece of a sample: text, or an image given as SeTok tokens.

    Attributes:
        text: the text (None for an image segment).
        tokens: ``(C, D)`` SeTok tokens of an image (None for text).
        ids: already tokenized text (e.g. the end-of-sequence id of a chat template); used instead of ``text``.
        train: text: whether its tokens get the cross-entropy loss; image: whether the model learns to generate it
            (diffusion loss + end-of-image decision). Images the model only reads have ``train=False``.
        codes: ``(N,)`` long, an image given as discrete tokens (SemHiTok's flattened codes) instead of ``tokens``.
    """

    text: str | None = None
    tokens: Tensor | None = None
    train: bool = True
    ids: list[int] | None = None
    codes: Tensor | None = None

    @property
    def is_image(self) -> bool:
        return self.tokens is not None or self.codes is not None

    @property
    def image_length(self) -> int:
        return int((self.tokens if self.tokens is not None else self.codes).shape[0])


@dataclass
class MultimodalBatch:
    """A packed, right-padded batch.

    Attributes:
        input_ids: ``(B, L)`` token ids; visual positions hold ``pad_id``.
        attention_mask: ``(B, L)`` 1 for real positions.
        labels: ``(B, L)`` next-token targets for the text loss, -100 where ignored (already aligned: the target of
            position ``t`` is the token at ``t + 1``).
        visual: ``(B, L)`` bool, True at visual-token positions.
        visual_tokens: ``(M, D)`` the visual tokens in row-major order of ``visual``.
        visual_train: ``(M,)`` bool, the visual tokens the model must generate.
        visual_last: ``(M,)`` bool, the last token of its image (end-of-image target).
        visual_codes: ``(M,)`` long, the discrete codes of the visual positions (images given as ``codes``; empty
            otherwise).
    """

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor
    visual: Tensor
    visual_tokens: Tensor
    visual_train: Tensor
    visual_last: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)
    visual_codes: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

    def to(self, device: torch.device | str) -> "MultimodalBatch":
        fields = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in vars(self).items() if k != "extras"}
        return MultimodalBatch(**fields, extras={k: v.to(device) for k, v in self.extras.items()})


def pack_sequences(
    samples: list[list[Segment]],
    *,
    tokenize: Callable[[str], list[int]],
    img_start_id: int,
    img_end_id: int,
    pad_id: int,
    token_dim: int,
    bos_id: int | None = None,
) -> MultimodalBatch:
    """Lay out samples as ``[bos] text [Img] v_1..v_C [/Img] text ...`` and right-pad them.

    Args:
        samples: each a list of :class:`Segment`.
        tokenize: ``str -> list[int]`` without special tokens.
        img_start_id, img_end_id: ids of ``[Img]`` / ``[/Img]``.
        pad_id: id written at padding and visual positions.
        token_dim: width ``D`` of the SeTok tokens (for an empty batch of images).
        bos_id: prepended when given.

    The text loss covers trained text tokens and the ``[Img]`` that opens a trained image (the LLM decides to
    draw); ``[/Img]`` is emitted by the end-of-image head, so it carries no text loss.
    """
    rows: list[tuple[list[int], list[int], list[bool]]] = []
    vis_tokens, vis_codes, vis_train, vis_last = [], [], [], []
    for segments in samples:
        ids: list[int] = [] if bos_id is None else [bos_id]
        supervised: list[bool] = [False] * len(ids)  # whether ids[t] is a target (predicted from t - 1)
        visual: list[bool] = [False] * len(ids)
        for seg in segments:
            if not seg.is_image:
                toks = list(seg.ids) if seg.ids is not None else tokenize(seg.text or "")
                ids += toks
                supervised += [seg.train] * len(toks)
                visual += [False] * len(toks)
                continue
            c = seg.image_length
            ids += [img_start_id] + [pad_id] * c + [img_end_id]
            supervised += [seg.train] + [False] * c + [False]
            visual += [False] + [True] * c + [False]
            if seg.codes is not None:
                vis_codes.append(seg.codes.long())
            else:
                vis_tokens.append(seg.tokens)
            vis_train += [seg.train] * c
            vis_last += [False] * (c - 1) + [True]
        rows.append((ids, supervised, visual))
    length = max(len(r[0]) for r in rows)
    b = len(rows)
    input_ids = torch.full((b, length), pad_id, dtype=torch.long)
    attention = torch.zeros(b, length, dtype=torch.long)
    labels = torch.full((b, length), -100, dtype=torch.long)
    visual = torch.zeros(b, length, dtype=torch.bool)
    for i, (ids, sup, vis) in enumerate(rows):
        n = len(ids)
        input_ids[i, :n] = torch.tensor(ids)
        attention[i, :n] = 1
        visual[i, :n] = torch.tensor(vis, dtype=torch.bool)
        target = torch.tensor(ids[1:], dtype=torch.long)
        labels[i, : n - 1] = torch.where(torch.tensor(sup[1:], dtype=torch.bool), target, torch.full_like(target, -100))
    if vis_tokens and vis_codes:
        raise ValueError("a batch mixes continuous image tokens and discrete image codes")
    tokens = torch.cat(vis_tokens) if vis_tokens else torch.zeros(0, token_dim)
    codes = torch.cat(vis_codes) if vis_codes else torch.zeros(0, dtype=torch.long)
    return MultimodalBatch(
        input_ids=input_ids, attention_mask=attention, labels=labels, visual=visual, visual_tokens=tokens,
        visual_train=torch.tensor(vis_train, dtype=torch.bool), visual_last=torch.tensor(vis_last, dtype=torch.bool),
        visual_codes=codes,
    )


def touch(*modules: nn.Module | None) -> Tensor:
    """``0 *`` the sum of every trainable parameter of ``modules``: added to every loss, it changes no value.

    DeepSpeed ZeRO-1/2 reduces gradients in buckets that assume every rank produced a gradient for the same
    parameters (a head that ran on one rank and not on another aborts, or hangs under NCCL). With this term a head
    that had no input in a micro-batch still gets a (zero) gradient on every rank. The heads are small beside the LLM
    (60 M of 6.8 B parameters at paper scale), so the sum costs nothing worth a per-batch case analysis. Empty
    parameters are left out: under ZeRO-3 a parameter outside its module's forward is an empty placeholder (ZeRO-3
    tolerates unused parameters, and a gradient for the placeholder would clash with the gathered one).
    """
    params = [p for m in modules if m is not None for p in m.parameters() if p.requires_grad and p.numel()]
    if not params:
        return torch.zeros(())
    return sum(p.sum() for p in params) * 0.0


def _dtype(module: nn.Module) -> torch.dtype:
    """The dtype of ``module``'s first floating-point parameter."""
    return next(p.dtype for p in module.parameters() if p.is_floating_point())


class InputProjector(nn.Sequential):
    """SeTok token -> LLM embedding (two-layer MLP, as LLaVA-1.5's connector)."""

    def __init__(self, *, token_dim: int, hidden: int) -> None:
        super().__init__(nn.Linear(token_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))


class SeTokIM(nn.Module):
    """The multimodal LLM of SeTok.

    Args:
        lm: a transformers causal LM whose vocabulary already holds ``[Img]`` and ``[/Img]``.
        diffloss: the per-token diffusion head; ``diffloss(target (N, D), z (N, cond_dim)) -> loss``.
        token_dim: width of SeTok tokens (512).
        cond_dim: width of the diffusion head's condition ``z``.
        vis_weight, eoi_weight: weights of the diffusion and end-of-image losses next to the text loss.
        connector: Table 13 baselines: a module mapping patch features ``(N, h, w, D)`` to ``(N, Q, hidden)`` that
            replaces SeTok tokens + input projector (the batch then carries ``extras["features"]``).
        vision: the baselines' frozen vision encoder (images ``(N, 3, S, S)`` -> features ``(N, h, w, D)``), kept here
            so that its weights travel with the model.
    """

    def __init__(
        self, *, lm: nn.Module, diffloss: nn.Module, token_dim: int, cond_dim: int, vis_weight: float = 1.0,
        eoi_weight: float = 1.0, connector: nn.Module | None = None, vision: nn.Module | None = None,
    ) -> None:
        super().__init__()
        hidden = lm.get_input_embeddings().embedding_dim
        self.lm = lm
        self.diffloss = diffloss
        self.input_projector = InputProjector(token_dim=token_dim, hidden=hidden)
        self.output_projector = nn.Linear(hidden, cond_dim)
        self.eoi_head = nn.Linear(hidden, 1)
        self.connector = connector
        self.vision = vision
        if vision is not None:
            vision.requires_grad_(False)
        self.vis_weight, self.eoi_weight = vis_weight, eoi_weight

    def embed(self, batch: MultimodalBatch) -> Tensor:
        """``(B, L, H)`` input embeddings: text from the LLM's table, visual tokens through the input projector (or,
        for a connector baseline, the connector over ``extras["features"]`` ``(N, h, w, D)``)."""
        emb = self.lm.get_input_embeddings()(batch.input_ids)  # (B, L, H)
        if self.connector is not None and "features" in batch.extras:
            feats = batch.extras["features"]
            if feats.shape[0]:
                vis = self.connector(feats.to(_dtype(self.connector))).flatten(0, 1)  # (N * Q, H)
                emb = emb.masked_scatter(batch.visual[..., None], vis.to(emb.dtype))
        elif batch.visual_tokens.shape[0]:
            emb = emb.masked_scatter(batch.visual[..., None], self.project_tokens(batch.visual_tokens, emb.dtype))
        return emb

    # The heads keep their own dtype: at inference a bf16 LLM (paper scale) runs beside float32 projectors, heads
    # and diffusion MLP (DeepSpeed's bf16 engine casts them all alike in training, where these casts are no-ops).

    def project_tokens(self, tokens: Tensor, dtype: torch.dtype) -> Tensor:
        """SeTok tokens ``(N, D)`` -> LLM input embeddings ``(N, H)`` in the LLM's ``dtype``."""
        return self.input_projector(tokens.to(_dtype(self.input_projector))).to(dtype)

    def condition(self, h: Tensor) -> Tensor:
        """LLM states ``(N, H)`` -> diffusion conditions ``z (N, cond_dim)`` in the heads' dtype."""
        return self.output_projector(h.to(self.output_projector.weight.dtype))

    def end_of_image_logit(self, h: Tensor) -> Tensor:
        """LLM states ``(N, H)`` of generated visual tokens -> ``(N,)`` logits of "this token ends the image"."""
        return self.eoi_head(h.to(self.eoi_head.weight.dtype)).squeeze(-1)

    def hidden_states(self, batch: MultimodalBatch) -> Tensor:
        """Run the LLM. Returns its last hidden state ``(B, L, H)`` (after the final norm).

        The LLM's own logits are kept for the last position only (``logits_to_keep=1``): the text loss runs the output
        head on the supervised positions alone, instead of ``(B, L, V)`` float logits (2 GB per micro-batch of
        8 x 2048 positions over LLaMA-2's 32k words; and most of a CI step, whose 64-wide LLM has GPT-2's 50k).
        """
        out = self.lm(inputs_embeds=self.embed(batch), attention_mask=batch.attention_mask, output_hidden_states=True,
                      logits_to_keep=1)
        return out.hidden_states[-1]

    def forward(self, batch: MultimodalBatch) -> tuple[Tensor, dict[str, float]]:
        """Eq. (4) over text and visual positions. Returns ``(loss, logs)``."""
        h = self.hidden_states(batch)
        head = self.lm.get_output_embeddings()
        sel = batch.labels != -100  # (B, L) the text targets
        # Every head gets a gradient on every micro-batch, zero where it had no input (ranks must agree: touch()).
        idle = touch(self.input_projector, self.connector, self.output_projector, self.diffloss, self.eoi_head)
        if bool(sel.any()):
            text = F.cross_entropy(head(h[sel]).float(), batch.labels[sel])  # mean over the targets, as ignore_index
        else:
            text = h.sum() * 0.0 + touch(head)
        loss, logs = text + idle, {"text": text.item()}
        train = batch.visual_train
        if bool(train.any()):
            # z_k comes from the position just before visual token k ([Img] or v_{k-1}).
            before = torch.zeros_like(batch.visual)
            before[:, :-1] = batch.visual[:, 1:]
            z = self.condition(h[before])[train]  # (M_train, cond_dim)
            vis = self.diffloss(batch.visual_tokens[train].to(z.dtype), z)
            # End of image: decided at each generated visual token from its own state.
            eoi_logit = self.end_of_image_logit(h[batch.visual])[train]  # (M_train,)
            eoi = F.binary_cross_entropy_with_logits(eoi_logit.float(), batch.visual_last[train].float())
            loss = loss + self.vis_weight * vis + self.eoi_weight * eoi
            logs.update(vis=vis.item(), eoi=eoi.item())
        logs["loss"] = loss.item()
        return loss, logs
