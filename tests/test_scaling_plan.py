"""Known answers for the closed forms of ``benchmarks/scaling_plan.py`` (docs/scaling.md).

Parameter and FLOP formulas are checked against real tiny models (``sum(p.numel())``, peft, torch's FLOP counter);
memory and communication formulas against cases worked out by hand.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

TINY = {"hidden": 64, "intermediate": 176, "layers": 2, "heads": 4, "vocab": 100}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def plan() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "scaling_plan.py"
    if str(path.parent) not in sys.path:  # its ``scaling`` package, as ``python benchmarks/scaling_plan.py`` finds it
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("scaling_plan", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scaling_plan"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def tiny_llama(*, tied: bool = False, attn: str = "eager") -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        hidden_size=TINY["hidden"], intermediate_size=TINY["intermediate"], num_hidden_layers=TINY["layers"],
        num_attention_heads=TINY["heads"], num_key_value_heads=TINY["heads"], vocab_size=TINY["vocab"],
        tie_word_embeddings=tied, attn_implementation=attn))


def test_llama_params_gives_llama2_7b_and_matches_real_tiny_models(plan: ModuleType) -> None:
    # LLaMA-2-7B, vocab 32000: also what LlamaForCausalLM builds on the meta device (the script prints both).
    assert plan.llama_params(hidden=4096, intermediate=11008, layers=32, vocab=32000) == 6_738_415_616
    sizes = {k: TINY[k] for k in ("hidden", "intermediate", "layers", "vocab")}
    for tied in (False, True):
        real = sum(p.numel() for p in tiny_llama(tied=tied).parameters())
        assert plan.llama_params(**sizes, tied=tied) == real


def test_lora_params_equal_what_peft_adds(plan: ModuleType) -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llama(), LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, task_type="CAUSAL_LM"))
    added = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert plan.lora_params(hidden=64, intermediate=176, layers=2, r=8, targets=TARGETS) == added
    # LLaMA-2-7B, r = 128, by hand: per layer 4 x 128 x (4096 + 4096) + 3 x 128 x (4096 + 11008) = 9,994,240.
    assert plan.lora_params(hidden=4096, intermediate=11008, layers=32, r=128, targets=TARGETS) == 32 * 9_994_240


def test_zero_bytes_partition_states_stage_by_stage(plan: ModuleType) -> None:
    # 1000 trainable + 600 frozen parameters on 4 GPUs: weights 2 x 1600, grads 2 x 1000, Adam + master 12 x 1000.
    totals = [plan.zero_bytes(trainable=1000, frozen=600, stage=s, gpus=4)["total"] for s in range(4)]
    assert totals == [3200 + 2000 + 12000, 3200 + 2000 + 3000, 3200 + 500 + 3000, 800 + 500 + 3000]
    # The brief's Stage-I example: 7B full fine-tuning under ZeRO-2 on 64 GPUs = 7B x 2 + 7B x 14 / 64 bytes.
    assert plan.zero_bytes(trainable=7e9, frozen=0, stage=2, gpus=64)["total"] == pytest.approx(14e9 + 7e9 * 14 / 64)


def test_layer_activations_add_up_to_korthikanti_with_dropout(plan: ModuleType) -> None:
    s, b, h, a = 128, 3, 256, 8
    ours = plan.layer_activation_bytes(seq=s, batch=b, hidden=h, heads=a, ffn=4 * h, mlp="gelu", flash=False)
    dropout = 2 * s * b * h + 3 * a * s * s * b  # two residual dropout masks; attention dropout mask + output
    assert ours + dropout == pytest.approx(plan.korthikanti_bytes(seq=s, batch=b, hidden=h, heads=a))
    # LLaMA-2-7B (SwiGLU, f = 11008 = 2.6875 h), flash attention: (16 + 8 x 2.6875) s b h = 37.5 s b h.
    llama = plan.layer_activation_bytes(seq=s, batch=b, hidden=4096, heads=32, ffn=11008, mlp="swiglu")
    assert llama == 37.5 * s * b * 4096


def test_llm_activations_stage1_by_hand(plan: ModuleType) -> None:
    s, b, h, f, v = 2048, 8, 4096, 11008, 32003
    layer = (16 * h + 8 * f) * s * b
    logits = 10 * s * b * v
    assert plan.llm_activations(seq=s, batch=b, lora=None, recompute=False) == 32 * layer + logits
    assert plan.llm_activations(seq=s, batch=b, lora=None, recompute=True) == 32 * 2 * s * b * h + layer + logits


def test_lora_activations_by_hand(plan: ModuleType) -> None:
    # q (in 64) and down (in 176), r = 8, seq 5, batch 2: dropout keeps 3 bytes per input element, A's output 2 x r.
    got = plan.lora_activation_bytes(seq=5, batch=2, hidden=64, intermediate=176, r=8, targets=["q_proj", "down_proj"],
                                     dropout=0.1)
    assert got == 10 * (3 * 64 + 16) + 10 * (3 * 176 + 16)
    assert plan.lora_activation_bytes(seq=5, batch=2, hidden=64, intermediate=176, r=8, targets=["q_proj"],
                                      dropout=0.0) == 10 * 16


def test_llm_forward_flops_match_the_flop_counter_on_a_tiny_llama(plan: ModuleType) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    model, tokens = tiny_llama(attn="eager"), 16  # eager attention: QK^T and AV are counted bmm's
    with FlopCounterMode(display=False) as counter:
        model(torch.randint(0, TINY["vocab"], (1, tokens)))
    want = plan.llm_forward_flops(matmul_params=plan.matmul_params(model), layers=2, hidden=64, tokens=tokens)
    assert counter.get_total_flops() == want
    assert plan.implied_tokens(flops=want, matmul_params=plan.matmul_params(model), layers=2,
                               hidden=64) == pytest.approx(tokens)


def test_usable_gpus_follow_the_samplers_batch_split(plan: ModuleType) -> None:
    assert plan.usable_gpus(batch=512, micro=8, gpus=64) == 64  # tokenizer, Stage-I
    assert plan.usable_gpus(batch=128, micro=4, gpus=64) == 32  # Stage-II: 128 = 4 x 64 x k has no k >= 1
    assert plan.usable_gpus(batch=256, micro=32, gpus=64) == 8  # mask decoder
    assert plan.usable_gpus(batch=96, micro=4, gpus=64) == 24


def test_comm_bytes_by_hand(plan: ModuleType) -> None:
    f = 3 / 4  # ring collectives on 4 GPUs
    assert plan.comm_bytes(zero=0, trainable=1000, frozen=600, gpus=4, accumulation=2) == 2 * f * 2000
    assert plan.comm_bytes(zero=2, trainable=1000, frozen=600, gpus=4, accumulation=2) == f * 2000 * 3
    assert plan.comm_bytes(zero=3, trainable=1000, frozen=600, gpus=4, accumulation=2) == 2 * f * (2 * 3200 + 2000)


def test_saved_bytes_counts_activations_not_weights(plan: ModuleType) -> None:
    linear = nn.Linear(3, 5)
    x = torch.randn(4, 3, requires_grad=True)
    # addmm keeps x (4 x 3 fp32) and a view of the weight (not counted); ReLU keeps its output (4 x 5 fp32).
    assert plan.saved_bytes(lambda: torch.relu(linear(x))) == 4 * (4 * 3) + 4 * (4 * 5)


def test_flop_count_of_a_linear_forward_and_backward(plan: ModuleType) -> None:
    linear = nn.Linear(3, 5, bias=False)
    x = torch.randn(4, 3, requires_grad=True)
    assert plan.flop_count(lambda: linear(x), backward=False) == 2 * 4 * 3 * 5
    assert plan.flop_count(lambda: linear(x), backward=True) == 3 * (2 * 4 * 3 * 5)
    assert math.isclose(plan.flop_count(lambda: linear(x.detach()), backward=True), 2 * (2 * 4 * 3 * 5))


def test_replace_section_rewrites_only_between_its_markers(plan: ModuleType) -> None:
    doc = "intro\n<!-- plan:begin -->\nold\n<!-- plan:end -->\nrest\n"
    new = plan.replace_section(doc, "plan", "new\ntable\n")
    assert new == "intro\n<!-- plan:begin -->\nnew\ntable\n<!-- plan:end -->\nrest\n"
    assert plan.generated_section(new, "plan") == "new\ntable"
    with pytest.raises(SystemExit, match="measured:begin"):
        plan.replace_section(doc, "measured", "x")


@pytest.mark.slow
def test_docs_scaling_md_holds_the_plan_of_the_current_config(plan: ModuleType) -> None:
    """docs/scaling.md's generated section is what the script prints for config/paper.yaml (regenerate with
    ``python benchmarks/scaling_plan.py --write docs/scaling.md``)."""
    from setok.config import load_config

    root = Path(__file__).resolve().parents[1]
    cfg = load_config([str(root / "config" / "paper.yaml")])
    expected = plan.report(cfg, plan.Hardware(), plan.Assumptions()).strip()
    doc = (root / "docs" / "scaling.md").read_text()
    assert plan.generated_section(doc, "plan") == expected, \
        "docs/scaling.md is stale: run python benchmarks/scaling_plan.py --write docs/scaling.md"
