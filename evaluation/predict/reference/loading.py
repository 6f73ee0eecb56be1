"""Loading the reference checkpoint: transformers' ``LlavaForConditionalGeneration`` and a ``LlavaProcessor``.

``source: pretrained`` (the llava-hf conversion of LLaVA-1.5, e.g. ``llava-hf/llava-1.5-7b-hf``): the model at the
configured dtype and its tokenizer from the weights cache, offline (``fetch_weights`` fills it; a missing checkpoint
is one line naming it, :func:`setok.weights.require_weights`). The image processor is loaded with transformers' PIL
backend: LLaVA-1.5 was evaluated with ``CLIPImageProcessor`` when it resized with PIL (bicubic), and the torchvision
backend (transformers 5's default) resizes slightly differently.

``source: random`` (CI): ``LlavaConfig(**model_config)`` initialised from a fixed seed, the GPT-2 byte-level tokenizer
the harness pairs with random LLMs (:func:`setok.modeling.llm.gpt2_bytelevel_tokenizer`) with ``<image>`` and a pad
token added, and a PIL CLIP image processor of the vision tower's image size with CLIP's mean and std.

Either way the processor's placeholder count is set from the MODEL's config (patch size, feature selection; CLIP
towers add one CLS token), so it always matches the features the vision tower returns.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from evaluation.predict.reference.conversation import IMAGE_TOKEN
from setok.config import ConfigError
from setok.modeling.llm import DTYPES, PAD_TOKEN, gpt2_bytelevel_tokenizer
from setok.weights import require_weights

if TYPE_CHECKING:
    from transformers import LlavaForConditionalGeneration, LlavaProcessor, PreTrainedTokenizerBase

CLIP_EXTRA_TOKENS = 1  # the CLS token a CLIP vision tower puts before its patches
RANDOM_SEED = 0


def processor_for(model: LlavaForConditionalGeneration, tokenizer: PreTrainedTokenizerBase,
                  image_processor: Any) -> LlavaProcessor:
    """A ``LlavaProcessor`` whose placeholder count matches ``model``'s vision tower, tokenizer padding on the left.

    Raises:
        ConfigError: The vision tower is not CLIP's (the only one whose extra tokens are known here).
    """
    from transformers import LlavaProcessor

    cfg = model.config
    if cfg.vision_config.model_type != "clip_vision_model":
        raise ConfigError(f"reference.model_config.vision_config.model_type: {cfg.vision_config.model_type!r}; "
                          "LLaVA-1.5's tower is 'clip_vision_model'")
    tokenizer.padding_side = "left"
    return LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                          patch_size=cfg.vision_config.patch_size,
                          vision_feature_select_strategy=cfg.vision_feature_select_strategy,
                          num_additional_image_tokens=CLIP_EXTRA_TOKENS)


def load_pretrained(name: str, *, dtype: torch.dtype) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """The released checkpoint ``name`` from the weights cache (offline jobs: one line when it is missing)."""
    from transformers import AutoImageProcessor, AutoTokenizer, LlavaForConditionalGeneration

    with require_weights(f"transformers:{name}"):
        model = LlavaForConditionalGeneration.from_pretrained(name, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(name)
        image_processor = AutoImageProcessor.from_pretrained(name, backend="pil")
    return model, processor_for(model, tokenizer, image_processor)


def random_tokenizer(name: str | None) -> PreTrainedTokenizerBase:
    """The tokenizer of a random checkpoint: GPT-2's byte-level BPE with ``<image>`` and ``<pad>`` added (ids 50257,
    50258), the layout of llava-hf's LLaMA tokenizer (``<image>`` 32000, ``<pad>`` 32001).

    Raises:
        ConfigError: ``name`` is not ``gpt2-bytelevel``.
    """
    if name != "gpt2-bytelevel":
        raise ConfigError(f"reference.tokenizer: {name!r}; source 'random' supports 'gpt2-bytelevel'")
    tokenizer = gpt2_bytelevel_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    return tokenizer


def load_random(model_config: dict[str, Any], *, tokenizer: str | None, dtype: torch.dtype,
                seed: int = RANDOM_SEED) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """A seeded random ``LlavaForConditionalGeneration(LlavaConfig(**model_config))`` and its processor; the caller's
    RNG stream is untouched (the global RNG is forked).

    Raises:
        ConfigError: ``model_config``'s image token id or vocabulary does not fit the tokenizer (named key).
    """
    from transformers import LlavaConfig, LlavaForConditionalGeneration
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tok = random_tokenizer(tokenizer)
    cfg = LlavaConfig(**model_config)
    image_id = tok.convert_tokens_to_ids(IMAGE_TOKEN)
    if cfg.image_token_id != image_id:
        raise ConfigError(f"reference.model_config.image_token_index: {cfg.image_token_id}, but the tokenizer's "
                          f"{IMAGE_TOKEN} is {image_id}")
    if cfg.text_config.vocab_size < len(tok):
        raise ConfigError(f"reference.model_config.text_config.vocab_size: {cfg.text_config.vocab_size} < "
                          f"{len(tok)} tokens of {tokenizer} with {IMAGE_TOKEN} and {PAD_TOKEN}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(cfg).to(dtype)
    size = cfg.vision_config.image_size
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return model, processor_for(model, tok, image_processor)


def load_reference(*, source: str, name: str, model_config: dict[str, Any] | None, tokenizer: str | None,
                   dtype: str) -> tuple[LlavaForConditionalGeneration, LlavaProcessor]:
    """The reference model (eval mode) and its processor, from a ``reference`` section's fields.

    Raises:
        ConfigError: Unknown source, or a random model without its sizes.
        setok.weights.MissingWeights: A pretrained checkpoint not in the cache (offline).
    """
    torch_dtype = DTYPES[dtype]
    if source == "pretrained":
        model, processor = load_pretrained(name, dtype=torch_dtype)
    elif source == "random":
        if not model_config:
            raise ConfigError("reference.model_config: source 'random' needs the model's sizes")
        model, processor = load_random(model_config, tokenizer=tokenizer, dtype=torch_dtype)
    else:
        raise ConfigError(f"reference.source: {source!r} (expected 'pretrained' or 'random')")
    return model.eval(), processor
