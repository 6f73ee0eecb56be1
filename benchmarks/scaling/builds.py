"""Paper-scale SeTok, SeTokIM, mask decoder and LoRA LLaMA built through the harness's factories, with the pieces
that need the Hub (SigLIP's text tokenizer, the LLaMA checkpoint) patched out for stand-ins of the same shapes."""
from __future__ import annotations

from typing import Any
from unittest import mock

import torch
from torch import nn

from setok.config import Config, LoRAConfig

from .counting import n_params
from .formulas import ADDED_TOKENS, LLAMA2_7B


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
