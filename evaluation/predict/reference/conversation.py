"""LLaVA-1.5's evaluation prompt and its tokenization, as the reference checkpoint was evaluated.

The prompt (haotian-liu/LLaVA ``llava/eval/model_vqa_loader.py``, ``model_vqa.py``, ``model_vqa_mmbench.py`` with
``--conv-mode vicuna_v1``): the question gets ``DEFAULT_IMAGE_TOKEN + "\\n"`` in front when the query has an image,
goes into ``conv_vicuna_v1`` (``llava/conversation.py``: ``SeparatorStyle.TWO``, ``sep=" "``, ``sep2="</s>"``) as
the USER message with an empty ASSISTANT message after it, and ``get_prompt()`` renders::

    <system> USER: <image>\\n<question> ASSISTANT:

with NO space after the final colon (an empty message renders as ``role + ":"``). The question text is the task's
``Query.prompt``, which already carries the benchmark's LLaVA-1.5 answer instruction (:mod:`evaluation.tasks`).

The tokenization (``llava/mm_utils.py`` ``tokenizer_image_token``): the prompt is cut at ``<image>`` and each piece is
tokenized ON ITS OWN with the tokenizer's special tokens (LLaMA: a BOS in front of each piece); the BOS of every piece
after the first is dropped, and the image's tokens go between the pieces. Tokenizing the pieces apart can matter for a
SentencePiece tokenizer: the piece after the image starts a new text and gets a leading ``"▁"``, which tokenizing the
whole string through the processor (``<image>`` an added token mid-string) may not give it, depending on the
tokenizer's ``legacy`` setting; pieces reproduce LLaVA's ids whatever that setting is. Here the image
stands for ``num_image_tokens`` copies of the image token id, as transformers' ``LlavaForConditionalGeneration``
expects (one placeholder per projected patch feature).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from setok.data.templates import SYSTEM_VICUNA_V1
from setok.io import DataError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IMAGE_TOKEN = "<image>"  # llava/constants.py DEFAULT_IMAGE_TOKEN, also the llava-hf tokenizer's added token
TEMPLATES = ("vicuna_v1",)


def prompt_parts(question: str, *, image: bool, template: str = "vicuna_v1") -> tuple[str, ...]:
    """The prompt's text around the image: ``(before, after)`` with an image, ``(whole,)`` without.

    Args:
        question: The user text (``Query.prompt``: the question with the benchmark's instruction).
        image: Whether the query shows an image (then ``"<image>\\n"`` leads the user message).
        template: The conversation the checkpoint was tuned with (only ``vicuna_v1``, LLaVA-1.5's).

    Returns:
        Strings whose join with :data:`IMAGE_TOKEN` is :func:`llava_prompt`.

    Raises:
        DataError: ``question`` itself contains ``<image>`` (it would become an image placeholder).
    """
    if template not in TEMPLATES:
        raise DataError(f"reference.template: {template!r} is not a LLaVA conversation this harness renders "
                        f"(known: {', '.join(TEMPLATES)})")
    if IMAGE_TOKEN in question:
        raise DataError(f"question {question[:60]!r}: contains {IMAGE_TOKEN!r}, the image placeholder itself")
    head = SYSTEM_VICUNA_V1 + " USER: "  # system + sep, then role + ": "
    tail = question + " ASSISTANT:"  # message + sep, then the empty assistant message: role + ":"
    return (head, "\n" + tail) if image else (head + tail,)


def llava_prompt(question: str, *, image: bool, template: str = "vicuna_v1") -> str:
    """The full prompt string LLaVA-1.5's evaluation builds for ``question`` (see the module docstring)."""
    return IMAGE_TOKEN.join(prompt_parts(question, image=image, template=template))


def prompt_ids(parts: tuple[str, ...], tokenizer: PreTrainedTokenizerBase, *, image_token_id: int,
               num_image_tokens: int) -> list[int]:
    """Token ids of a prompt, as ``tokenizer_image_token`` builds them, each image expanded to its placeholders.

    Args:
        parts: :func:`prompt_parts` (one image between consecutive parts).
        tokenizer: The checkpoint's tokenizer (called with its special tokens, as LLaVA calls it).
        image_token_id: Id of :data:`IMAGE_TOKEN`.
        num_image_tokens: Placeholders per image (the vision tower's patch features after the feature selection).

    Returns:
        ``L`` ids: the first part's ids (with its BOS, if the tokenizer adds one), then for every later part the
        image placeholders and that part's ids without its leading BOS.
    """
    chunks = [list(tokenizer(p)["input_ids"]) for p in parts]
    bos = tokenizer.bos_token_id
    offset = 1 if chunks[0] and bos is not None and chunks[0][0] == bos else 0  # LLaVA: a BOS on the first piece
    ids = chunks[0]
    for chunk in chunks[1:]:
        ids = ids + [image_token_id] * num_image_tokens + chunk[offset:]
    return ids
