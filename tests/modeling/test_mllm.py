"""SeTokIM sequence layout and the Eq. (4) losses on a tiny random Llama."""
import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from setok.modeling.mllm import MultimodalBatch, Segment, SeTokIM, pack_sequences

PAD, BOS, IMG, END = 0, 1, 98, 99
D = 6


def tokenize(text: str) -> list[int]:
    return [2 + (ord(ch) % 90) for ch in text]


class RecordingDiffLoss(nn.Module):
    """Stand-in head: MSE between a linear map of z and the target; records what it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(16, D)
        self.seen: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, target: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.seen = (target.detach(), z.detach())
        return F.mse_loss(self.lin(z), target)


def model() -> SeTokIM:
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return SeTokIM(lm=LlamaForCausalLM(cfg), diffloss=RecordingDiffLoss(), token_dim=D, cond_dim=16).eval()


def batch(img_a: torch.Tensor, img_b: torch.Tensor) -> MultimodalBatch:
    samples = [
        [Segment(text="ab"), Segment(tokens=img_a, train=True), Segment(text="c")],  # caption -> image
        [Segment(tokens=img_b, train=False), Segment(text="xyz")],  # image -> caption
    ]
    return pack_sequences(samples, tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=D,
                          bos_id=BOS)


def test_pack_lays_out_images_between_markers_and_aligns_labels():
    a, b = torch.randn(3, D), torch.randn(2, D)
    out = batch(a, b)
    ab, c = tokenize("ab"), tokenize("c")
    assert out.input_ids[0].tolist() == [BOS, *ab, IMG, PAD, PAD, PAD, END, *c]
    assert out.visual[0].tolist() == [False, False, False, False, True, True, True, False, False]
    # Targets: the 2 text tokens, [Img] of the trained image, nothing for visual tokens or [/Img], then "c".
    assert out.labels[0].tolist() == [ab[0], ab[1], IMG, -100, -100, -100, -100, c[0], -100]
    xyz = tokenize("xyz")
    assert out.input_ids[1].tolist()[:8] == [BOS, IMG, PAD, PAD, END, *xyz]
    assert out.labels[1].tolist()[:8] == [-100, -100, -100, -100, xyz[0], xyz[1], xyz[2], -100]
    assert out.attention_mask.sum(1).tolist() == [9, 8]
    torch.testing.assert_close(out.visual_tokens, torch.cat([a, b]))
    assert out.visual_train.tolist() == [True, True, True, False, False]
    assert out.visual_last.tolist() == [False, False, True, False, True]


def test_visual_positions_receive_the_projected_tokens():
    m, a, b = model(), torch.randn(3, D), torch.randn(2, D)
    bt = batch(a, b)
    emb = m.embed(bt)
    torch.testing.assert_close(emb[0, 4:7], m.input_projector(a))
    torch.testing.assert_close(emb[1, 2:4], m.input_projector(b))
    torch.testing.assert_close(emb[0, 0], m.lm.get_input_embeddings().weight[BOS])


def test_text_loss_is_cross_entropy_on_supervised_positions_only():
    m = model()
    bt = batch(torch.randn(3, D), torch.randn(2, D))
    _, logs = m(bt)
    logits = m.lm(inputs_embeds=m.embed(bt), attention_mask=bt.attention_mask).logits  # the LLM's own full head
    keep = bt.labels != -100
    expected = F.cross_entropy(logits[keep], bt.labels[keep])
    assert abs(logs["text"] - expected.item()) < 1e-5


def test_diffusion_targets_are_the_generated_image_tokens_conditioned_one_position_earlier():
    m = model()
    a = torch.randn(3, D)
    bt = batch(a, torch.randn(2, D))
    m(bt)
    target, z = m.diffloss.seen
    torch.testing.assert_close(target, a)  # only the trained image, never the read-only one
    h = m.hidden_states(bt)
    torch.testing.assert_close(z, m.output_projector(h[0, 3:6]))  # states at [Img], v1, v2 predict v1, v2, v3


def test_a_generated_token_does_not_change_the_loss_of_what_came_before():
    m = model()
    a, b = torch.randn(3, D), torch.randn(2, D)
    h1 = m.hidden_states(batch(a, b))
    a2 = a.clone()
    a2[2] += 5.0
    h2 = m.hidden_states(batch(a2, b))
    torch.testing.assert_close(h1[0, :6], h2[0, :6])  # causal: the last visual token is only seen from position 6
    assert not torch.allclose(h1[0, 6:], h2[0, 6:])


def test_training_step_reduces_the_loss():
    m = model().train()
    bt = batch(torch.randn(3, D), torch.randn(2, D))
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        loss, logs = m(bt)
        first = first or logs
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["loss"] < 0.5 * first["loss"] and {"text", "vis", "eoi"} <= set(logs)


def test_text_only_batch_has_no_visual_losses():
    m = model()
    bt = pack_sequences([[Segment(text="hello")]], tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD,
                        token_dim=D)
    _, logs = m(bt)
    assert "vis" not in logs and logs["loss"] == logs["text"]


def test_setokim_trains_with_the_real_diffusion_head():
    from setok.modeling.diffloss import DiffLoss

    m = model().train()
    m.diffloss = DiffLoss(token_dim=D, cond_dim=16, width=32, depth=3, num_timesteps=100)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    bt = batch(torch.randn(3, D), torch.randn(2, D))
    # MAR zero-initialises the output layer and the AdaLN modulation: the output layer moves at step 1, the
    # modulation at step 2, and z receives gradient from step 3 on.
    for _ in range(3):
        opt.zero_grad()
        loss, logs = m(bt)
        loss.backward()
        opt.step()
    assert torch.isfinite(loss) and logs["vis"] > 0
    assert m.output_projector.weight.grad.abs().sum() > 0


def test_a_one_token_sample_packs():
    """An unconditional prompt can be just [bos] (classifier-free guidance drops the caption)."""
    bt = pack_sequences([[Segment(text="")], [Segment(text="ab")]], tokenize=tokenize, img_start_id=IMG,
                        img_end_id=END, pad_id=PAD, token_dim=D, bos_id=BOS)
    assert bt.input_ids[0].tolist() == [BOS, PAD, PAD] and bt.labels[0].tolist() == [-100, -100, -100]


def test_every_trainable_parameter_gets_a_gradient_whatever_the_micro_batch_holds():
    """ZeRO-1/2 needs every rank to produce gradients for the same parameters: a micro-batch with no image (or no
    image to generate) still gives the projectors and heads a gradient, and it is exactly zero."""
    text_only = [[Segment(text="hello")]]
    read_only = [[Segment(tokens=torch.randn(2, D), train=False), Segment(text="xyz")]]
    for samples in (text_only, read_only):
        m = model().train()
        bt = pack_sequences(samples, tokenize=tokenize, img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=D)
        loss, logs = m(bt)
        loss.backward()
        missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, missing
        for head in (m.output_projector, m.eoi_head, m.diffloss):
            assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in head.parameters())
        assert logs["loss"] == logs["text"]  # the zero terms change no value
    # a text-only micro-batch leaves the input projector at a zero gradient; one that reads an image does not
    assert any(p.grad.abs().sum() > 0 for p in m.input_projector.parameters())


def test_bf16_llm_beside_float32_heads_trains_and_generates():
    """Inference at paper precision: the LLM in bf16, the projectors, end-of-image head and diffusion head float32."""
    from setok.modeling.diffloss import DiffLoss
    from setok.modeling.generation import generate_image, pack_prompts

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    ref = SeTokIM(lm=LlamaForCausalLM(cfg), diffloss=DiffLoss(token_dim=D, cond_dim=32, width=16), token_dim=D,
                  cond_dim=32).eval()
    mixed = SeTokIM(lm=LlamaForCausalLM(cfg), diffloss=DiffLoss(token_dim=D, cond_dim=32, width=16), token_dim=D,
                    cond_dim=32).eval()
    mixed.load_state_dict(ref.state_dict())
    mixed.lm.to(torch.bfloat16)
    bt = batch(torch.randn(3, D), torch.randn(2, D))
    _, want = ref(bt)
    _, got = mixed(bt)
    assert abs(got["text"] - want["text"]) < 0.05 * want["text"]  # the same model, to bf16 precision
    prompts = pack_prompts([[Segment(tokens=torch.randn(2, D)), Segment(text="draw")]], tokenize=tokenize,
                           img_start_id=IMG, img_end_id=END, pad_id=PAD, token_dim=D, bos_id=BOS)
    out = generate_image(mixed, prompts, max_tokens=3, img_start_id=IMG, img_end_id=END, num_steps=5,
                         generator=torch.Generator().manual_seed(0))
    assert out[0].dtype == torch.float32 and 1 <= out[0].shape[0] <= 3 and bool(torch.isfinite(out[0]).all())
