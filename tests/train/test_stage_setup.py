"""What the SeTokIM stages set up before training: modes for activation checkpointing, per-rank CFG dropout."""
from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from setok.train.mllm import cfg_drop, training_mode


def test_training_mode_turns_on_recomputation_of_a_model_loaded_in_eval_mode():
    """``from_pretrained`` returns the LLM in eval mode; decoder layers recompute only when training."""
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                      num_attention_heads=2, num_key_value_heads=2)).eval()
    lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})  # as the stages
    model = nn.Module()
    model.lm, model.vision = lm, nn.Sequential(nn.Dropout(0.5))
    calls = []
    for layer in lm.model.layers:  # the layer's own hooks sit outside the checkpoint: count its MLP's runs
        layer.mlp.register_forward_pre_hook(lambda m, a: calls.append(1))
    ids = torch.randint(0, 50, (1, 5))
    lm(input_ids=ids, labels=ids).loss.backward()
    assert len(calls) == 2  # eval mode: each layer runs once, nothing recomputed in backward
    training_mode(model)
    calls.clear()
    lm(input_ids=ids, labels=ids).loss.backward()
    assert len(calls) == 4  # each layer's forward again during backward
    assert lm.training and not model.vision.training  # the frozen vision encoder stays in eval mode


def test_cfg_dropout_differs_between_ranks_and_repeats_on_one():
    batch = SimpleNamespace(samples=[SimpleNamespace(task="generation")] * 64)
    drops = [cfg_drop(batch, p=0.5, seed=0, step=3, micro=1, rank=r) for r in (0, 1)]
    assert drops[0] != drops[1]
    assert drops[0] == cfg_drop(batch, p=0.5, seed=0, step=3, micro=1, rank=0)
