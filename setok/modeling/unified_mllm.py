"""The unified MLLM on SemHiTok tokens (SemHiTok Sec. 3.3, Fig. 3c): next-token prediction over text and image codes.

An image sits in the sequence as ``[Img] c_1 ... c_N [/Img]`` with ``c_i = k_i * m + j_i`` its flattened codes. The
vocabulary is the LLM's text vocabulary ``V`` followed by the ``K * m`` image codes (id ``V + c``), scored by ONE
softmax: the shared output head is the LLM's ``lm_head`` (rows ``0 .. V-1``) and ``image_head`` (rows ``V ..``),
whose logits are concatenated. "The vocabulary expansion is merely for implementation convenience": an image code
enters the LLM not through an embedding row but through the Dual-MLP adapter over the frozen codebook features,

    e(c) = [MLP_sem(z_sem[k]) ; MLP_pix(z_pix[k, j])]      (each MLP to half the LLM width, concatenated)

(``dual_mlp=False``, Table 7 without Dual MLP: one MLP over ``[z_sem ; z_pix]``). Text positions and the codes of an
image the model must generate get cross-entropy over the joint vocabulary; the image length is fixed (``h * w``), so
``[/Img]`` follows the last code by construction and carries no loss.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from setok.modeling.hierarchical_codebook import unflatten_codes
from setok.modeling.mllm import MultimodalBatch, touch


def _mlp(din: int, dout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(din, dout), nn.GELU(), nn.Linear(dout, dout))


class DualMLPAdapter(nn.Module):
    """``(M, d_sem)``, ``(M, d_pix)`` -> ``(M, H)``: two MLPs to ``H/2`` each, concatenated (Sec. 3.3); or one MLP
    over the concatenated features when ``dual=False``."""

    def __init__(self, *, sem_dim: int, pix_dim: int, hidden: int, dual: bool = True) -> None:
        super().__init__()
        self.dual = dual and pix_dim > 0
        if self.dual:
            self.sem = _mlp(sem_dim, hidden // 2)
            self.pix = _mlp(pix_dim, hidden - hidden // 2)
        else:
            self.joint = _mlp(sem_dim + pix_dim, hidden)

    def forward(self, z_sem: Tensor, z_pix: Tensor | None) -> Tensor:
        if self.dual:
            return torch.cat([self.sem(z_sem), self.pix(z_pix)], dim=-1)
        return self.joint(z_sem if z_pix is None else torch.cat([z_sem, z_pix], dim=-1))


class SemHiTokIM(nn.Module):
    """LLM + Dual-MLP adapter + image rows of the shared head.

    Args:
        lm: a transformers causal LM whose vocabulary holds ``[Img]`` / ``[/Img]`` (text vocabulary ``V``).
        semantic_codes: ``(K, d_sem)`` the frozen semantic codebook (buffers, saved with the model).
        pixel_codes: ``(K, m, d_pix)`` the frozen SGHC codes, or None (a tokenizer without SGHC: ``m = 1``).
        dual_mlp: the Dual-MLP adapter (Table 7) or a single MLP.
    """

    def __init__(self, *, lm: nn.Module, semantic_codes: Tensor, pixel_codes: Tensor | None,
                 dual_mlp: bool = True) -> None:
        super().__init__()
        self.lm = lm
        hidden = lm.get_input_embeddings().embedding_dim
        self.register_buffer("semantic_codes", semantic_codes.detach().float().clone())
        self.register_buffer("pixel_codes", None if pixel_codes is None else pixel_codes.detach().float().clone())
        self.m = 1 if pixel_codes is None else int(pixel_codes.shape[1])
        self.image_vocab = int(semantic_codes.shape[0]) * self.m
        self.text_vocab = int(lm.get_output_embeddings().weight.shape[0])
        pix_dim = 0 if pixel_codes is None else int(pixel_codes.shape[-1])
        self.adapter = DualMLPAdapter(sem_dim=int(semantic_codes.shape[1]), pix_dim=pix_dim, hidden=hidden,
                                      dual=dual_mlp)
        self.image_head = nn.Linear(hidden, self.image_vocab, bias=False)
        nn.init.normal_(self.image_head.weight, std=0.02)

    def code_embeddings(self, codes: Tensor) -> Tensor:
        """Flattened codes ``(...,)`` -> LLM input embeddings ``(..., H)`` through the adapter."""
        sem, pix = unflatten_codes(codes, self.m)
        z_sem = self.semantic_codes[sem]
        z_pix = None if self.pixel_codes is None else self.pixel_codes[sem, pix]
        dtype = self.image_head.weight.dtype
        return self.adapter(z_sem.to(dtype), None if z_pix is None else z_pix.to(dtype))

    def embed(self, batch: MultimodalBatch) -> Tensor:
        """``(B, L, H)``: text from the LLM's table, image codes through the adapter."""
        emb = self.lm.get_input_embeddings()(batch.input_ids)
        if batch.visual_codes.shape[0]:
            emb = emb.masked_scatter(batch.visual[..., None], self.code_embeddings(batch.visual_codes).to(emb.dtype))
        return emb

    def image_logits(self, hidden: Tensor) -> Tensor:
        """``(..., H)`` -> ``(..., K*m)`` logits of the image rows of the shared head."""
        return self.image_head(hidden.to(self.image_head.weight.dtype))  # a bf16 LLM beside float32 heads

    def joint_labels(self, batch: MultimodalBatch) -> Tensor:
        """``(B, L)`` next-token targets over the joint vocabulary: the text labels, plus ``V + c_k`` at the position
        before each code of an image to generate."""
        labels = batch.labels.clone()
        if bool(batch.visual_train.any()):
            before = torch.zeros_like(batch.visual)
            before[:, :-1] = batch.visual[:, 1:]  # the position predicting visual token k: [Img] or c_{k-1}
            target = torch.where(batch.visual_train, batch.visual_codes + self.text_vocab,
                                 torch.full_like(batch.visual_codes, -100))
            labels[before] = target
        return labels

    def forward(self, batch: MultimodalBatch) -> tuple[Tensor, dict[str, float]]:
        """Next-token cross-entropy over the joint vocabulary. Returns ``(loss, logs)``.

        The heads run on the supervised positions only (``logits_to_keep=1`` skips the LLM's own full-sequence
        logits): at paper scale ``(B, L, V + K*m)`` float logits would take ~11 GB for Qwen2.5's 152k + 197k rows.
        """
        out = self.lm(inputs_embeds=self.embed(batch), attention_mask=batch.attention_mask, output_hidden_states=True,
                      logits_to_keep=1)
        labels = self.joint_labels(batch)
        sel = labels != -100  # (B, L)
        # Every rank must give the same parameters a gradient (ZeRO-1/2): heads without input get a zero one.
        idle = touch(self.adapter, self.image_head)
        if not bool(sel.any()):
            return out.hidden_states[-1].sum() * 0.0 + idle + touch(self.lm.get_output_embeddings()), {"loss": 0.0}
        h = out.hidden_states[-1][sel]  # (N, H)
        logits = torch.cat([self.lm.get_output_embeddings()(h), self.image_logits(h)], dim=-1).float()  # (N, V+K*m)
        target = labels[sel]  # (N,)
        per = F.cross_entropy(logits, target, reduction="none")
        loss = per.mean() + idle
        logs = {"loss": loss.item()}
        is_image = target >= self.text_vocab
        if bool(is_image.any()):
            logs["image"] = per[is_image].mean().item()
        if bool((~is_image).any()):
            logs["text"] = per[~is_image].mean().item()
        return loss, logs
