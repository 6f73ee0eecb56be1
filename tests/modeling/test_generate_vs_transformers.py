"""The harness's greedy text decoding (generate_text) against transformers' ``generate`` on the same inputs_embeds.

The LLM is a random Llama of the CI sizes (config/ci.yaml ``mllm.llm.model_config``); prompts of different lengths
are left-padded by pack_prompts, and two of them hold SeTok tokens through the input projector.
"""
from pathlib import Path

import pytest
import torch
from torch import nn

from setok.config import load_config
from setok.modeling.generation import generate_text, pack_prompts, transformers_greedy
from setok.modeling.llm import random_llama
from setok.modeling.mllm import Segment, SeTokIM

ROOT = Path(__file__).resolve().parents[2]
PAD, BOS, IMG, END = 50256, 50255, 50254, 50253  # ids inside the random model's vocabulary
D = 12
pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread (tests/modeling/conftest.py)
STEPS = 10
ANSWER_1 = [23458, 42418, 24694, 47550]  # the image row's first greedy tokens (seeded model)


def tokenize(text: str) -> list[int]:
    return [100 + 7 * ord(ch) for ch in text]


@pytest.fixture(scope="module")
def model() -> SeTokIM:
    cfg = load_config([ROOT / "config/paper.yaml", ROOT / "config/ci.yaml"], "hard_cluster")
    lm = random_llama(model_config=cfg.mllm.llm.model_config, seed=3)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return SeTokIM(lm=lm, diffloss=nn.Identity(), token_dim=D, cond_dim=8).eval()


@pytest.fixture(scope="module")
def prompts():
    g = torch.Generator().manual_seed(1)
    rows = [
        [Segment(text="What is in the picture? Answer briefly.")],
        [Segment(tokens=torch.randn(5, D, generator=g)), Segment(text="Color?")],  # an image, shorter
        [Segment(text="hi")],  # the most padding
        [Segment(text="Look: "), Segment(tokens=torch.randn(3, D, generator=g)), Segment(text="and then?")],
    ]
    return pack_prompts(rows, tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=D,
                        bos_id=BOS)


def test_prompts_are_left_padded_and_hold_image_tokens(prompts):
    assert prompts.attention_mask.sum(1).tolist() == [40, 14, 3, 21]
    assert prompts.visual.sum(1).tolist() == [0, 5, 0, 3]
    assert prompts.attention_mask[:, -1].tolist() == [1, 1, 1, 1]


def test_greedy_tokens_equal_generate_without_a_stop(model, prompts):
    ours = generate_text(model, prompts, max_new_tokens=STEPS, eos_id=-1, pad_id=PAD)
    assert ours == transformers_greedy(model, prompts, max_new_tokens=STEPS, eos_id=-1, pad_id=PAD)
    assert [len(r) for r in ours] == [STEPS] * 4
    assert ours[1][:4] == ANSWER_1  # known answer of the image row
    assert len({tuple(r) for r in ours}) == 4  # the rows answer differently: padding and images reach the output


def test_rows_stop_at_their_eos_as_generate_stops_them(model, prompts):
    eos = ANSWER_1[3]  # the image row stops after its 4th token; no other row emits it
    ours = generate_text(model, prompts, max_new_tokens=STEPS, eos_id=eos, pad_id=PAD)
    assert ours == transformers_greedy(model, prompts, max_new_tokens=STEPS, eos_id=eos, pad_id=PAD)
    free = generate_text(model, prompts, max_new_tokens=STEPS, eos_id=-1, pad_id=PAD)
    assert [len(r) for r in ours] == [STEPS, 4, STEPS, STEPS]
    assert ours[1] == ANSWER_1 and [ours[i] for i in (0, 2, 3)] == [free[i] for i in (0, 2, 3)]  # fed padding after


def test_a_single_unpadded_prompt_stops_generation_at_its_eos(model, prompts):
    """One row, no padding (``generate`` drops the all-ones mask; the harness keeps it): both stop after 4 tokens."""
    one = pack_prompts([[Segment(tokens=prompts.visual_tokens[:5]), Segment(text="Color?")]], tokenize=tokenize,
                       img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=D, bos_id=BOS)
    assert bool(one.attention_mask.all())
    kw = {"max_new_tokens": STEPS, "eos_id": ANSWER_1[3], "pad_id": PAD}
    assert generate_text(model, one, **kw) == transformers_greedy(model, one, **kw) == [ANSWER_1]
