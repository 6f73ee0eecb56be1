"""TFLOPs per image (SeTok Tables 5 and 13) by torch's FLOP counter: known counts for a LLaMA prefill (attention on
the CPU included) and the tokenizer / LLM split of one image's cost."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from evaluation.predict import cost


def test_cpu_attention_is_counted_like_the_cuda_kernels() -> None:
    q, k = torch.randn(2, 4, 16, 8), torch.randn(2, 4, 32, 8)
    _, flops = cost.count_flops(torch.nn.functional.scaled_dot_product_attention, q, k, k)
    assert flops == 2 * (2 * 2 * 4 * 16 * 32 * 8)  # Q K^T and P V, 2 FLOPs a multiply-add


def test_llama_prefill_flops_match_the_analytic_count() -> None:
    h, inter, layers, heads, vocab, length = 64, 128, 2, 4, 100, 12
    cfg = LlamaConfig(hidden_size=h, intermediate_size=inter, num_hidden_layers=layers, num_attention_heads=heads,
                      num_key_value_heads=heads, vocab_size=vocab, max_position_embeddings=64)
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, vocab, (1, length))
    with torch.no_grad():
        _, flops = cost.count_flops(model, input_ids=ids)
    per_layer = (
        2 * length * h * h * 4  # q, k, v, o projections
        + 4 * length * length * h  # attention: Q K^T and P V over all heads (the causal mask does not skip work)
        + 2 * length * h * inter * 3  # gate, up, down
    )
    assert flops == layers * per_layer + 2 * length * h * vocab  # + the LM head


def test_image_cost_splits_tokenizer_and_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    tok_layer, llm_layer = torch.nn.Linear(10, 20, bias=False), torch.nn.Linear(30, 40, bias=False)
    visual = torch.tensor([[False, True, True, True, False]])

    def answer_prompts(queries):  # the tokenizer's work: one (5, 10) x (10, 20) matmul
        assert queries[0].image == Path("a.png") and queries[0].kind == "answer"
        tok_layer(torch.randn(5, 10))
        return SimpleNamespace(visual=visual, input_ids=torch.zeros(1, 5, dtype=torch.long))

    class FakeCachedLM:  # the LLM's prefill: one (7, 30) x (30, 40) matmul
        def __init__(self, model, prompts) -> None:
            llm_layer(torch.randn(7, 30))

    monkeypatch.setattr("setok.modeling.generation.CachedLM", FakeCachedLM)
    c = cost.image_cost(SimpleNamespace(answer_prompts=answer_prompts, model=None), Path("a.png"))
    assert c["tflops_tokenizer"] == 2 * 5 * 10 * 20 / 1e12
    assert c["tflops_llm"] == 2 * 7 * 30 * 40 / 1e12
    assert c["tflops"] == pytest.approx(c["tflops_tokenizer"] + c["tflops_llm"])
    assert c["tokens"] == 3.0 and c["sequence"] == 5.0


def test_no_images_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "imgs").mkdir()
    code = cost.main(["--model", str(tmp_path / "m.pt"), "--images", str(tmp_path / "imgs"), "--out",
                      str(tmp_path / "c.json"), "--device", "cpu"])
    assert code != 0 and "imgs" in capsys.readouterr().err
