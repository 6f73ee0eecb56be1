""":class:`ReferencePredictor`: a public LLaVA checkpoint answering the harness's queries as LLaVA-1.5's own
evaluation would, so its scores can be held against the published ones (issue 20, ``reference_variants``).

Per batch of ``answer`` / ``caption`` queries (the only kinds LLaVA-1.5 has: it neither generates, edits nor
segments images):

1. the prompt of each query, LLaVA-1.5's ``vicuna_v1`` conversation around ``Query.prompt``
   (:mod:`~evaluation.predict.reference.conversation`), tokenized piece by piece as ``tokenizer_image_token`` does;
2. its image padded to a square of the mean colour (``pad``) or cropped (``crop``), then the CLIP processor
   (:mod:`~evaluation.predict.reference.images`);
3. the rows LEFT padded to one length (so every row's last prompt token is the last column), greedy generation
   (``do_sample=False``, ``num_beams=1``, LLaVA's ``--temperature 0``) up to the batch's largest ``max_new_tokens``,
   stopped at the tokenizer's end of sequence;
4. each row's new tokens cut to its own query's ``max_new_tokens``, decoded with ``skip_special_tokens=True`` and
   stripped (``model_vqa_loader.py``: ``batch_decode(..., skip_special_tokens=True)[0].strip()``).

LLaVA's scripts run one query at a time; batching with left padding and an attention mask gives the same greedy
tokens (tests/evaluation/test_reference_predictor.py checks it token for token against one-at-a-time generation and
a hand-written greedy loop).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from evaluation.predict.reference.conversation import IMAGE_TOKEN, llava_prompt, prompt_ids, prompt_parts
from evaluation.predict.reference.images import image_token_count, pixel_values
from evaluation.predict.reference.loading import load_reference
from setok.io import DataError, load_image

if TYPE_CHECKING:
    from evaluation.tasks.base import Query
    from setok.config import Config

TEXT_KINDS = ("answer", "caption")


def model_label(cfg: Config) -> str:
    """How errors name a reference variant's model: ``<variant> (<checkpoint>)``, or ``(random llava_hf)`` in CI."""
    ref = cfg.reference
    return f"{cfg.name} ({ref.name if ref.source == 'pretrained' else f'random {ref.kind}'})"


def require_text_kinds(queries: Sequence[Query], model: str) -> None:
    """Every query must want text back.

    Raises:
        DataError: ``<model>: a reference checkpoint answers in text; '<kind>' queries (<first id>) need ...``.
    """
    bad = next((q for q in queries if q.kind not in TEXT_KINDS), None)
    if bad is not None:
        raise DataError(f"{model}: a reference checkpoint answers in text ({', '.join(TEXT_KINDS)}); the benchmark's "
                        f"{bad.kind!r} queries (e.g. {bad.id!r}) need a model that outputs images or masks")


class ReferencePredictor:
    """A public checkpoint (``cfg.reference``, e.g. LLaVA-1.5-7B) answering :class:`evaluation.tasks.Query` batches.

    Attributes:
        model: The ``LlavaForConditionalGeneration`` (eval mode, on ``device``).
        processor: Its ``LlavaProcessor`` (``processor.tokenizer`` pads on the left).
    """

    def __init__(self, cfg: Config, *, device: str = "cpu") -> None:
        """Args: cfg: A resolved config whose ``reference.enabled``. device: Where the model runs.

        Raises:
            ConfigError: ``cfg`` is not a reference variant, or its ``reference`` section does not load.
            setok.weights.MissingWeights: The pretrained checkpoint is not in the weights cache (offline).
        """
        from setok.config import ConfigError

        ref = cfg.reference
        if not ref.enabled:
            raise ConfigError(f"{cfg.name}: reference.kind is 'none' (a trained variant, not a public checkpoint)")
        self.name = model_label(cfg)
        self.template, self.aspect_ratio = ref.template, ref.image_aspect_ratio
        self.max_new_tokens_cap = ref.max_new_tokens  # None: each query's own budget
        self.model, self.processor = load_reference(source=ref.source, name=ref.name, model_config=ref.model_config,
                                                    tokenizer=ref.tokenizer, dtype=ref.dtype)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.tokenizer = self.processor.tokenizer
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.dtype = next(self.model.parameters()).dtype

    def prompt(self, query: Query) -> str:
        """The LLaVA-1.5 prompt string of ``query`` (``<image>`` standing for the image's placeholders)."""
        return llava_prompt(query.prompt, image=query.image is not None, template=self.template)

    def inputs(self, queries: Sequence[Query]) -> dict[str, torch.Tensor]:
        """The model inputs of a batch: ``input_ids`` / ``attention_mask`` ``(N, L)`` left padded, and
        ``pixel_values`` ``(N, 3, S, S)`` when the queries show images (all of them or none).

        Raises:
            DataError: Another kind than answer/caption, a batch mixing queries with and without an image, an
                unreadable image (one line naming it).
        """
        require_text_kinds(queries, self.name)
        with_image = [q.image is not None for q in queries]
        if any(with_image) and not all(with_image):
            raise DataError(f"{self.name}: a batch mixes queries with and without an image")
        out: dict[str, torch.Tensor] = {}
        count = 0
        if all(with_image):
            images = [load_image(Path(q.image)) for q in queries]  # type: ignore[arg-type]
            out["pixel_values"] = pixel_values(images, self.processor.image_processor, aspect_ratio=self.aspect_ratio)
            count = image_token_count(self.processor, out["pixel_values"])
        rows = [prompt_ids(prompt_parts(q.prompt, image=q.image is not None, template=self.template), self.tokenizer,
                           image_token_id=self.image_token_id, num_image_tokens=count) for q in queries]
        padded = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
        out["input_ids"], out["attention_mask"] = padded["input_ids"], padded["attention_mask"]
        return {k: v.to(self.device, self.dtype if v.is_floating_point() else v.dtype) for k, v in out.items()}

    @torch.no_grad()
    def generate(self, inputs: dict[str, Any], max_new_tokens: int) -> torch.Tensor:
        """Greedy continuation of a batch (:meth:`inputs`): ``(N, T)`` new token ids, ``T <= max_new_tokens``, rows
        that ended early filled with the pad id."""
        out = self.model.generate(**inputs, do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                                  use_cache=True, eos_token_id=self.tokenizer.eos_token_id,
                                  pad_token_id=self.tokenizer.pad_token_id)
        return out[:, inputs["input_ids"].shape[1]:]

    def answer(self, queries: Sequence[Query]) -> list[str]:
        """The text answer of each query (see the module docstring for how)."""
        inputs = self.inputs(queries)
        budgets = [self.budget(q) for q in queries]
        new = self.generate(inputs, max(budgets))
        return [self.tokenizer.decode(row[:n], skip_special_tokens=True).strip()
                for row, n in zip(new.tolist(), budgets)]

    def budget(self, query: Query) -> int:
        """The query's ``max_new_tokens``, capped by ``reference.max_new_tokens`` when that is set."""
        cap = self.max_new_tokens_cap
        return query.max_new_tokens if cap is None else min(query.max_new_tokens, cap)
