"""SeTokIM generation: left-padded prompts, KV-cached greedy text and image loops against naive full re-runs."""
import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from setok.modeling.generation import concat_prompts, generate_image, generate_text, pack_prompts
from setok.modeling.mllm import Segment, SeTokIM, pack_sequences

PAD, BOS, IMG, END = 0, 1, 98, 99
D, COND = 6, 16


def tokenize(text: str) -> list[int]:
    return [2 + (ord(ch) % 90) for ch in text]


class StubDiffLoss(nn.Module):
    """``sample(z) = tanh(g(z) W)``, with ``g`` the guided mix of ``z = [cond; uncond]`` (no randomness)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(COND, D))

    def sample(self, z, *, temperature=1.0, cfg=1.0, num_steps=100, generator=None):
        if cfg == 1.0:
            return torch.tanh(z @ self.w)
        zc, zu = z.chunk(2)
        return torch.tanh((zu + cfg * (zc - zu)) @ self.w).repeat(2, 1)


def model() -> SeTokIM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return SeTokIM(lm=LlamaForCausalLM(cfg), diffloss=StubDiffLoss(), token_dim=D, cond_dim=COND).eval()


def samples() -> list[list[Segment]]:
    g = torch.Generator().manual_seed(1)
    return [
        [Segment(text="draw a cat")],
        [Segment(tokens=torch.randn(2, D, generator=g)), Segment(text="q?")],  # shorter, with an image
        [Segment(text="hi")],
    ]


def pack(segs: list[list[Segment]]):
    return pack_prompts(segs, tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=D,
                        bos_id=BOS)


def single_embeds(m: SeTokIM, segs: list[Segment]) -> torch.Tensor:
    """``(1, L, H)`` embeddings of one unpadded prompt."""
    bt = pack_sequences([segs], tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=D,
                        bos_id=BOS)
    return m.embed(bt)


def naive_text(m: SeTokIM, segs: list[Segment], steps: int) -> list[int]:
    """Greedy decoding of one unpadded prompt, re-running the whole sequence at every step (no cache)."""
    emb, out = single_embeds(m, segs), []
    table = m.lm.get_input_embeddings()
    for _ in range(steps):
        token = int(m.lm(inputs_embeds=emb, use_cache=False).logits[0, -1].argmax())
        out.append(token)
        emb = torch.cat([emb, table(torch.tensor([[token]]))], dim=1)
    return out


def naive_image(m: SeTokIM, segs: list[Segment], max_tokens: int, cfg: float = 1.0,
                uncond: list[Segment] | None = None) -> torch.Tensor:
    """One image from one unpadded prompt (and its unconditional prompt), no cache, full re-run each step."""
    start = m.lm.get_input_embeddings()(torch.tensor([[IMG]]))
    seqs = [torch.cat([single_embeds(m, s), start], dim=1) for s in ([segs] if cfg == 1.0 else [segs, uncond])]
    tokens = []
    with torch.no_grad():
        for k in range(max_tokens):
            z = torch.cat([m.output_projector(m.lm(inputs_embeds=s, output_hidden_states=True).hidden_states[-1][:, -1])
                           for s in seqs])
            v = m.diffloss.sample(z, cfg=cfg)
            tokens.append(v[0])
            if k == max_tokens - 1:
                break
            seqs = [torch.cat([s, m.input_projector(v[:1])[:, None]], dim=1) for s in seqs]
            h = m.lm(inputs_embeds=seqs[0], output_hidden_states=True).hidden_states[-1][0, -1]
            if m.eoi_head(h).item() > 0:
                break
    return torch.stack(tokens)


def test_pack_prompts_left_pads_and_keeps_visual_positions():
    m, segs = model(), samples()
    bt = pack(segs)
    ref = pack_sequences(segs, tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=D,
                         bos_id=BOS)
    n = ref.attention_mask.sum(1).tolist()
    assert n == [11, 7, 3]
    assert bt.attention_mask.tolist()[2] == [0] * 8 + [1] * 3
    assert bt.input_ids[1].tolist() == [PAD] * 4 + [BOS, IMG, PAD, PAD, END, *tokenize("q?")]
    assert bt.visual[1].tolist() == [False] * 6 + [True, True] + [False] * 3
    emb, ref_emb = m.embed(bt), m.embed(ref)
    for i, k in enumerate(n):
        torch.testing.assert_close(emb[i, -k:], ref_emb[i, :k])
        assert bt.input_ids[i, -k:].tolist() == ref.input_ids[i, :k].tolist()


def test_concat_prompts_pads_the_narrower_half_on_the_left():
    a, b = pack(samples()[:2]), pack([[Segment(text="x")], [Segment(text="yy")]])
    both = concat_prompts(a, b, pad_id=PAD)
    assert both.input_ids.shape == (4, 11)
    assert both.input_ids[2].tolist() == [PAD] * 9 + [BOS, *tokenize("x")]
    assert both.attention_mask.sum(1).tolist() == [11, 7, 2, 3]
    torch.testing.assert_close(both.visual_tokens, a.visual_tokens)


def test_cached_greedy_text_equals_naive_rerun_of_each_unpadded_prompt():
    m, segs = model(), samples()
    out = generate_text(m, pack(segs), max_new_tokens=8, eos_id=-1, pad_id=PAD)
    assert out == [naive_text(m, s, 8) for s in segs]


def test_text_rows_stop_independently_at_eos():
    m, segs = model(), samples()
    ref = [naive_text(m, s, 8) for s in segs]
    eos = ref[0][2]
    assert eos not in ref[0][:2]
    expected = [r[: r.index(eos) + 1] if eos in r else r for r in ref]
    out = generate_text(m, pack(segs), max_new_tokens=8, eos_id=eos, pad_id=PAD)
    assert out == expected and out[0][-1] == eos and len(out[0]) == 3
    assert any(len(r) == 8 for r in out)  # another row went on to max_new_tokens


@pytest.mark.parametrize("bias, expected", [(30.0, 1), (-30.0, 5)])
def test_end_of_image_head_bias_forces_one_token_or_max_tokens(bias, expected):
    m, segs = model(), samples()
    nn.init.zeros_(m.eoi_head.weight)
    nn.init.constant_(m.eoi_head.bias, bias)
    out = generate_image(m, pack(segs), max_tokens=5, img_start_id=IMG, img_end_id=END)
    assert [t.shape for t in out] == [torch.Size([expected, D])] * 3
    for t, s in zip(out, segs):
        torch.testing.assert_close(t, naive_image(m, s, 5), atol=1e-4, rtol=1e-4)


def test_cached_image_loop_equals_naive_rerun_with_independent_stopping():
    m, segs = model(), samples()
    with torch.no_grad():
        m.eoi_head.weight.copy_(torch.randn(m.eoi_head.weight.shape, generator=torch.Generator().manual_seed(0)))
        m.eoi_head.bias.fill_(1.0)
    ref = [naive_image(m, s, 6) for s in segs]
    assert [r.shape[0] for r in ref] == [4, 2, 6]  # the rows stop at different steps, one at max_tokens
    out = generate_image(m, pack(segs), max_tokens=6, img_start_id=IMG, img_end_id=END)
    for t, r in zip(out, ref):
        torch.testing.assert_close(t, r, atol=1e-4, rtol=1e-4)


def test_guided_image_runs_the_unconditional_prompts_as_a_second_half():
    m, segs = model(), samples()
    with torch.no_grad():
        m.eoi_head.weight.copy_(torch.randn(m.eoi_head.weight.shape, generator=torch.Generator().manual_seed(0)))
        m.eoi_head.bias.fill_(0.7)  # row 0 stops on its conditional state, not its unconditional one
    uncond = [[Segment(text=".")], [Segment(text="q?")], [Segment(text=".")]]  # captions removed
    ref = [naive_image(m, s, 6, cfg=3.0, uncond=u) for s, u in zip(segs, uncond)]
    assert len({r.shape[0] for r in ref}) > 1  # the conditional half's end-of-image head stops rows apart
    out = generate_image(m, pack(segs), max_tokens=6, img_start_id=IMG, img_end_id=END, cfg=3.0,
                         uncond_prompts=pack(uncond))
    for t, r in zip(out, ref):
        torch.testing.assert_close(t, r, atol=1e-4, rtol=1e-4)
    unguided = generate_image(m, pack(segs), max_tokens=6, img_start_id=IMG, img_end_id=END)
    assert not torch.allclose(out[0][0], unguided[0][0], atol=1e-3)  # guidance changes the first token
    with pytest.raises(ValueError):
        generate_image(m, pack(segs), max_tokens=4, img_start_id=IMG, img_end_id=END, cfg=3.0)
