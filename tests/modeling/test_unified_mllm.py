"""The unified MLLM on SemHiTok codes (SemHiTok Sec. 3.3): sequence layout and joint labels, the Dual-MLP adapter,
next-token cross-entropy over text + image codes, and cached CFG sampling of codes."""
import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

from setok.modeling.code_generation import generate_codes, sample_logits
from setok.modeling.generation import generate_text, pack_prompts
from setok.modeling.mllm import Segment, pack_sequences
from setok.modeling.unified_mllm import SemHiTokIM

PAD, BOS, IMG, END = 0, 1, 98, 99
K, M, DS, DP = 5, 3, 4, 2  # semantic codes, sub-codebook size, widths: 15 image codes


def tokenize(text: str) -> list[int]:
    return [2 + (ord(ch) % 90) for ch in text]


def model(dual: bool = True) -> SemHiTokIM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    return SemHiTokIM(lm=LlamaForCausalLM(cfg), semantic_codes=torch.randn(K, DS), pixel_codes=torch.randn(K, M, DP),
                      dual_mlp=dual).eval()


def batch(gen: torch.Tensor, read: torch.Tensor):
    samples = [
        [Segment(text="ab"), Segment(codes=gen, train=True), Segment(text="c")],  # caption -> image
        [Segment(codes=read, train=False), Segment(text="xyz")],  # image -> caption
    ]
    return pack_sequences(samples, tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=0,
                          bos_id=BOS)


def test_joint_labels_put_each_code_after_its_predecessor_and_nothing_on_read_images():
    mm = model()
    gen, read = torch.tensor([7, 0, 14]), torch.tensor([3, 4])
    b = batch(gen, read)
    assert b.visual_codes.tolist() == [7, 0, 14, 3, 4] and b.visual_tokens.shape == (0, 0)
    ab, c, xyz = tokenize("ab"), tokenize("c"), tokenize("xyz")
    labels = mm.joint_labels(b)
    v = mm.text_vocab
    assert v == 100 and mm.image_vocab == K * M
    # [BOS] a b [Img] c1 c2 c3 [/Img] c: [Img] predicts c1, c1 -> c2, c2 -> c3, c3 -> [/Img] (no loss).
    assert labels[0].tolist() == [ab[0], ab[1], IMG, v + 7, v + 0, v + 14, -100, c[0], -100]
    assert labels[1].tolist()[:8] == [-100, -100, -100, -100, xyz[0], xyz[1], xyz[2], -100]


def test_dual_mlp_keeps_semantic_and_pixel_features_in_separate_halves():
    mm = model()
    # Codes 4 and 5 share semantic code 1 (4 // 3 = 5 // 3 = 1) and differ in the pixel code.
    e = mm.code_embeddings(torch.tensor([4, 5, 7]))
    assert torch.equal(e[0, :16], e[1, :16]) and not torch.equal(e[0, 16:], e[1, 16:])
    expected = torch.cat([mm.adapter.sem(mm.semantic_codes[1]), mm.adapter.pix(mm.pixel_codes[1, 1])])
    torch.testing.assert_close(e[0], expected)
    single = model(dual=False).code_embeddings(torch.tensor([4, 5]))
    assert not torch.equal(single[0, :16], single[1, :16])  # one MLP mixes both


def test_embed_places_adapter_outputs_at_visual_positions():
    mm = model()
    b = batch(torch.tensor([7, 0, 14]), torch.tensor([3, 4]))
    emb = mm.embed(b)
    torch.testing.assert_close(emb[b.visual], mm.code_embeddings(b.visual_codes))
    torch.testing.assert_close(emb[~b.visual], mm.lm.get_input_embeddings()(b.input_ids)[~b.visual])


def test_loss_is_cross_entropy_over_the_joint_vocabulary():
    mm = model()
    b = batch(torch.tensor([7, 0, 14]), torch.tensor([3, 4]))
    loss, logs = mm(b)
    out = mm.lm(inputs_embeds=mm.embed(b), attention_mask=b.attention_mask, output_hidden_states=True)
    logits = torch.cat([out.logits, mm.image_head(out.hidden_states[-1])], -1)  # (B, L, 115)
    labels = mm.joint_labels(b)
    torch.testing.assert_close(loss, F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100))
    assert set(logs) == {"loss", "image", "text"}
    # A batch of read-only images and no text targets has no loss terms (and no NaN).
    empty = pack_sequences([[Segment(codes=torch.tensor([1, 2]), train=False)]], tokenize=tokenize,
                           img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=0)
    assert mm(empty)[0].item() == 0.0


def test_greedy_codes_equal_a_naive_rerun_and_stay_in_the_image_vocabulary():
    mm = model()
    prompts = pack_prompts([[Segment(text="a cat")], [Segment(text="dog")]], tokenize=tokenize, img_start_id=IMG,
                           img_end_id=END, pad_id=PAD, token_dim=0, bos_id=BOS)
    codes = generate_codes(mm, prompts, num_tokens=4, img_start_id=IMG, temperature=0.0)
    assert codes.shape == (2, 4) and codes.min() >= 0 and codes.max() < K * M
    for row, text in zip(codes, ["a cat", "dog"]):
        done: list[int] = []
        for k in range(4):  # rebuild the whole unpadded sequence and take the argmax of the image rows
            seq = pack_sequences([[Segment(text=text), Segment(codes=torch.tensor(done or [0]), train=False)]],
                                 tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=0,
                                 bos_id=BOS)
            n = 1 + len(tokenize(text)) + 1 + len(done)  # BOS, text, [Img], codes so far
            out = mm.lm(inputs_embeds=mm.embed(seq)[:, :n], output_hidden_states=True)
            done.append(int(mm.image_logits(out.hidden_states[-1][0, -1]).argmax()))
        assert row.tolist() == done


def test_guidance_combines_conditional_and_unconditional_logits():
    mm = model()
    kw = dict(tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=0, bos_id=BOS)
    cond = pack_prompts([[Segment(text="a red cat")]], **kw)
    uncond = pack_prompts([[Segment(text="")]], **kw)
    # With identical halves, any scale gives the unguided result; with s = 1 the unconditional half is not needed.
    same = generate_codes(mm, cond, num_tokens=3, img_start_id=IMG, temperature=0.0, cfg=4.0, uncond_prompts=cond)
    assert torch.equal(same, generate_codes(mm, cond, num_tokens=3, img_start_id=IMG, temperature=0.0))
    # First code under guidance s: argmax of l_u + s (l_c - l_u), computed by hand from the two prompts alone.
    first = []
    for p in (cond, uncond):
        ids = torch.cat([p.input_ids, torch.tensor([[IMG]])], 1)
        mask = torch.cat([p.attention_mask, torch.ones(1, 1, dtype=torch.long)], 1)
        out = mm.lm(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        first.append(mm.image_logits(out.hidden_states[-1][:, -1]))
    expected = (first[1] + 3.0 * (first[0] - first[1])).argmax(-1)
    got = generate_codes(mm, cond, num_tokens=1, img_start_id=IMG, temperature=0.0, cfg=3.0, uncond_prompts=uncond)
    assert got[:, 0].tolist() == expected.tolist()
    with pytest.raises(ValueError, match="unconditional"):
        generate_codes(mm, cond, num_tokens=1, img_start_id=IMG, cfg=3.0)


def test_text_answers_never_emit_image_codes():
    mm = model()
    with torch.no_grad():
        mm.image_head.weight.fill_(100.0)  # image rows would win any joint argmax
    prompts = pack_prompts([[Segment(codes=torch.tensor([1, 2, 3]), train=False), Segment(text="what?")]],
                           tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=0, bos_id=BOS)
    ids = generate_text(mm, prompts, max_new_tokens=5, eos_id=2, pad_id=PAD)[0]
    assert ids and max(ids) < mm.text_vocab


def test_top_k_sampling_keeps_only_the_k_best():
    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0]]).repeat(200, 1)
    g = torch.Generator().manual_seed(0)
    ids = sample_logits(logits, temperature=1.0, top_k=2, generator=g)
    assert set(ids.tolist()) == {1, 2}
    assert sample_logits(logits[:1], temperature=0.0, top_k=0, generator=None).item() == 1


def test_every_trainable_parameter_gets_a_gradient_on_a_text_only_micro_batch():
    """ZeRO-1/2: the adapter and the image head get a (zero) gradient even when the micro-batch has no image."""
    m = model().train()
    bt = pack_sequences([[Segment(text="hello")]], tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD,
                        token_dim=0, bos_id=BOS)
    loss, _ = m(bt)
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in m.adapter.parameters())
