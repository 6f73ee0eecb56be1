"""SemHiTok's generator and discriminator share one DeepSpeed engine; the stage's grad_clip applies to each network
by its own norm, as LlamaGen's two optimisers clip them (issue 18 item 10; docs/paper-notes.md H11)."""

import pytest
import torch
from test_semhitok_training import tiny_config  # tests/train is on sys.path (pytest rootdir import)
from torch import nn

from setok.config import TrainConfig
from setok.modeling import discriminator
from setok.train.distributed import init_distributed
from setok.train.engine import build_engine
from setok.train.network_clip import ClippedPerNetwork, clip_coefficient
from setok.train.schedule import warmup_cosine
from setok.train.semhitok import train


class TwoNetworks(nn.Module):
    """A generator and a discriminator whose loss is ``d_scale`` times larger (a huge discriminator gradient)."""

    def __init__(self, d_scale: float) -> None:
        super().__init__()
        self.g = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.Linear(16, 4))
        self.d = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 1))
        self.d_scale = d_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(x).pow(2).mean() + self.d_scale * self.d(x[:, :4]).pow(2).mean()


def batches() -> list[torch.Tensor]:
    return [torch.randn(2, 8, generator=torch.Generator().manual_seed(k)) for k in range(4)]


def train_clipped(tc: TrainConfig, d_scale: float) -> dict[str, torch.Tensor]:
    """Two optimizer steps of 2 micro-batches each through a ClippedPerNetwork engine; the fp32 master weights."""
    from deepspeed.utils import safe_get_full_fp32_param

    init_distributed()
    torch.manual_seed(0)
    model = TwoNetworks(d_scale)
    engine = build_engine(model, tc, world=1)
    assert engine.gradient_clipping() == 0.0
    clipped = ClippedPerNetwork(engine, {"g": list(model.g.parameters()), "d": list(model.d.parameters())},
                                max_norm=1.0)
    dtype = next(engine.module.parameters()).dtype
    for x in batches():
        clipped.backward(clipped(x.to(dtype)))
        clipped.step()
    assert clipped.last_norms["d"] > 10 * clipped.last_norms["g"] > 10  # both clipped, D far more
    return {n: (safe_get_full_fp32_param(p) if tc.zero_stage else p).detach().float().clone()
            for n, p in engine.module.named_parameters()}


def train_by_hand(tc: TrainConfig, d_scale: float) -> dict[str, torch.Tensor]:
    """The same two steps with two clip_grad_norm_ calls (one per network) before one AdamW step."""
    torch.manual_seed(0)
    model = TwoNetworks(d_scale)
    groups = [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": tc.weight_decay},
              {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=tc.lr, betas=tuple(tc.betas))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, warmup=tc.warmup_steps, total=tc.steps))
    xs = batches()
    for k in range(2):
        opt.zero_grad()
        for x in xs[2 * k: 2 * k + 2]:
            (model(x) / 2).backward()  # the engine averages the accumulated micro-batches
        torch.nn.utils.clip_grad_norm_(model.g.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(model.d.parameters(), 1.0)
        opt.step()
        sched.step()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def stage(zero: int, precision: str, optimizer: str) -> TrainConfig:
    return TrainConfig(steps=3, batch_size=4, micro_batch_size=2, lr=1e-2, warmup_steps=0, grad_clip=0.0,
                       precision=precision, zero_stage=zero, optimizer=optimizer)


@pytest.mark.parametrize("zero,optimizer", [(0, "torch_adamw"), (1, "torch_adamw"), (2, "torch_adamw"),
                                            (2, "deepspeed_adam")])
def test_fp32_engine_equals_two_clip_grad_norm_calls(zero: int, optimizer: str):
    tc = stage(zero, "fp32", optimizer)
    ours, hand = train_clipped(tc, 1e4), train_by_hand(tc, 1e4)
    for n in hand:
        torch.testing.assert_close(ours[n], hand[n], rtol=0, atol=1e-6)


@pytest.mark.parametrize("zero,precision", [(0, "fp32"), (2, "fp32"), (0, "bf16"), (1, "bf16"), (2, "bf16")])
def test_a_huge_discriminator_gradient_leaves_the_generator_step_alone(zero: int, precision: str):
    tc = stage(zero, precision, "torch_adamw")
    small, huge = train_clipped(tc, 1e2), train_clipped(tc, 1e8)
    for n in small:
        if n.startswith("g."):
            assert torch.equal(small[n], huge[n]), n


def test_clip_coefficient_is_clip_grad_norms():
    assert clip_coefficient(0.5, 1.0) == 1.0
    assert clip_coefficient(4.0, 1.0) == pytest.approx(0.25)


def pixel_stage(tmp_path, monkeypatch, *, d_scale: float, per_network: bool) -> dict[str, torch.Tensor]:
    """One pixel-codebook step of the CI SemHiTok with the GAN on from the start and D's hinge loss times
    ``d_scale``; the tokenizer's weights after that step."""
    cfg = tiny_config(**{"tokenizer": {"semhitok": {"loss": {"disc_start": 0, "clip_per_network": per_network}}},
                         "train_pixel_codebook": {"steps": 1, "checkpoint_every": 10}})
    hinge = discriminator.hinge_d_loss  # PixelObjective's hinge loss, through discriminator.adversarial_losses
    monkeypatch.setattr(discriminator, "hinge_d_loss", lambda real, fake: d_scale * hinge(real, fake))
    out = tmp_path / f"{d_scale}-{per_network}"
    sem = train(cfg, "semantic_codebook", out / "semantic")
    pix = train(cfg, "pixel_codebook", out / "pixel", init=sem)
    return torch.load(pix, weights_only=True)["weights"]


def test_pixel_stage_generator_step_ignores_the_discriminators_gradient(tmp_path, monkeypatch):
    """The generator's first step is the same whether D's loss is scaled by 1 or 1e6; with one joint norm (the old
    single-engine clip) D's huge gradient shrinks it."""
    plain = pixel_stage(tmp_path, monkeypatch, d_scale=1.0, per_network=True)
    huge = pixel_stage(tmp_path, monkeypatch, d_scale=1e6, per_network=True)
    assert plain.keys() == huge.keys()
    for k in plain:
        assert torch.equal(plain[k], huge[k]), k
    joint_plain = pixel_stage(tmp_path, monkeypatch, d_scale=1.0, per_network=False)
    joint_huge = pixel_stage(tmp_path, monkeypatch, d_scale=1e6, per_network=False)
    assert any(not torch.equal(joint_plain[k], joint_huge[k]) for k in joint_plain if k.startswith("pixel_"))


def test_fp16_with_per_network_clipping_is_refused(tmp_path):
    from setok.config import ConfigError

    cfg = tiny_config(**{"train_pixel_codebook": {"precision": "fp16"}})
    sem = train(tiny_config(), "semantic_codebook", tmp_path / "semantic")
    with pytest.raises(ConfigError, match="clip_per_network"):
        train(cfg, "pixel_codebook", tmp_path / "pixel", init=sem)


