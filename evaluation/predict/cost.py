"""Visual tokens and TFLOPs per image, counted on the trained model (SeTok Tables 5 and 13: "#Tokens", "TFLOPs").

``python -m evaluation.predict.cost --model results/<v>/stage2/model.pt [--tokenizer results/<v>/tokenizer/model.pt]
--images DIR [--limit 8] --out results/<v>/cost.json``

The cost of one image is what the multimodal LLM computes before its first answer token to a question about it: the
tokenizer (SeTok, SemHiTok, or the frozen SigLIP of a connector baseline with its connector), then one prefill pass of
the LLM over the template, the image's tokens and the question. It is counted by :class:`torch.utils.flop_counter.
FlopCounterMode` on the real modules (matmul-class operators: linear, bmm, convolution, attention, as fvcore and
torch count them; elementwise operators are not counted), so a variant whose tokenizer emits fewer tokens is cheaper
by exactly what its LLM pass saves. SeTok's token count depends on the image, so the numbers are means over images.

Output (atomic JSON)::

    {"tflops": mean, "tflops_tokenizer": mean, "tflops_llm": mean, "tokens": mean visual tokens per image,
     "sequence": mean prompt length, "n": images, "prompt": str, "per_image": {stem: {"tflops", "tokens"}}}
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count
from tqdm import tqdm

from evaluation.features.images import list_images
from evaluation.tasks.base import Query
from setok.cli import run
from setok.devices import add_device_argument, require_device
from setok.io import DataError, write_json

log = logging.getLogger(__name__)

PROMPT = "Describe this image in one sentence."  # a short question, the same for every variant


def _cpu_attention_flops(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of ``aten._scaled_dot_product_flash_attention_for_cpu`` (shapes in), which torch's registry lacks: the
    same count as its CUDA kernels (``Q K^T`` and ``P V``, 2 FLOPs a multiply-add)."""
    return sdpa_flop_count(query, key, value)


# torch counts the CUDA attention kernels; the CPU one is added so CPU and GPU counts agree.
CUSTOM_FLOPS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}


def counter() -> FlopCounterMode:
    """A silent FLOP counter that also counts CPU attention."""
    return FlopCounterMode(display=False, custom_mapping=CUSTOM_FLOPS)


def count_flops(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """``fn(*args, **kwargs)`` and the FLOPs it ran."""
    with counter() as c:
        out = fn(*args, **kwargs)
    return out, int(c.get_total_flops())


def image_cost(predictor: Any, image: Path, prompt: str = PROMPT) -> dict[str, float]:
    """FLOPs of the tokenizer and of the LLM prefill for one image and ``prompt``, and the image's token count.

    Args:
        predictor: an :class:`evaluation.predict.mllm.Predictor`.
        image: the image file.
        prompt: the question asked about it.
    """
    from setok.modeling.generation import CachedLM

    query = Query(id=image.stem, kind="answer", prompt=prompt, image=image)
    with torch.no_grad():
        prompts, tok_flops = count_flops(predictor.answer_prompts, [query])
        _, llm_flops = count_flops(CachedLM, predictor.model, prompts)
    return {
        "tflops": (tok_flops + llm_flops) / 1e12,
        "tflops_tokenizer": tok_flops / 1e12,
        "tflops_llm": llm_flops / 1e12,
        "tokens": float(prompts.visual.sum()),  # visual positions of the one prompt
        "sequence": float(prompts.input_ids.shape[1]),
    }


def measure(model: Path, tokenizer: Path | None, images: Path, *, limit: int = 8, prompt: str = PROMPT,
            device: str = "cpu") -> dict[str, Any]:
    """Mean cost over the first ``limit`` images of ``images`` (sorted by name)."""
    from evaluation.predict.mllm import Predictor

    files = list_images(images)[:limit]
    if not files:
        raise DataError(f"{images}: no images to count the cost on")
    predictor = Predictor(model, tokenizer, device=device)
    per_image = {}
    for f in tqdm(files, desc="cost", file=sys.stderr):
        per_image[f.stem] = image_cost(predictor, f, prompt)
    keys = ("tflops", "tflops_tokenizer", "tflops_llm", "tokens", "sequence")
    mean = {k: sum(c[k] for c in per_image.values()) / len(per_image) for k in keys}
    return {**mean, "n": len(per_image), "prompt": prompt, "family": predictor.family,
            "per_image": {k: {"tflops": v["tflops"], "tokens": v["tokens"]} for k, v in per_image.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.predict.cost", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, type=Path, help="the Stage-II model.pt")
    ap.add_argument("--tokenizer", type=Path, help="the tokenizer's model.pt (not used by connector baselines)")
    ap.add_argument("--images", required=True, type=Path, help="a folder of images (the evaluation set)")
    ap.add_argument("--limit", type=int, default=8, help="how many images to average over")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--out", required=True, type=Path)
    add_device_argument(ap)
    args = ap.parse_args(argv)

    def job() -> None:
        device = require_device(args.device)  # first: a missing GPU fails before the model loads
        result = measure(args.model, args.tokenizer, args.images, limit=args.limit, prompt=args.prompt,
                         device=device)
        write_json(args.out, result)
        log.info("%s: %.4g TFLOPs, %.1f visual tokens per image (%d images)", args.out, result["tflops"],
                 result["tokens"], result["n"])

    return run(job)


if __name__ == "__main__":
    raise SystemExit(main())
