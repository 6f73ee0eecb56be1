"""Run a trained multimodal LLM (SeTokIM, or the unified MLLM on SemHiTok) over one benchmark and write its
predictions in the benchmark's official format.

    python -m evaluation.predict.mllm --model results/<v>/stage2/model.pt --tokenizer results/<v>/tokenizer/model.pt
        --config results/<v>/config.yaml --benchmark vqav2 --out results/<v>/predictions/vqav2.json

A reference variant (``reference.kind`` set: a public checkpoint such as LLaVA-1.5-7B, issue 20) needs no
``--model`` / ``--tokenizer``: :class:`evaluation.predict.reference.ReferencePredictor` loads the checkpoint its config
names and answers the text queries as LLaVA-1.5's evaluation would.

    python -m evaluation.predict.mllm --config results/llava15_7b/config.yaml --benchmark vqav2
        --out results/llava15_7b/predictions/vqav2.json

With ``--shard i --num-shards N`` the job answers every N-th batch only and writes a shard folder; merge the N of them
with :mod:`evaluation.predict.merge_shards` (byte-identical to one job: :mod:`evaluation.predict.shards`).

The benchmark's queries come from :mod:`evaluation.tasks` (official inputs, LLaVA-1.5 prompt conventions); the
answers go through the task's writer (:mod:`evaluation.writers`), which checks the ids and writes atomically.

Per query kind, batched with a KV cache (:mod:`setok.modeling.generation`), prompts in the Stage-II template:
    ``answer`` / ``caption``: greedy text up to the query's ``max_new_tokens``, special tokens removed.
    ``generate``: ``[Img]`` forced, SeTok tokens sampled by the diffusion head with classifier-free guidance (the
        unconditional prompt drops the caption), decoded by SeTok's detokenizer.
    ``edit``: as ``generate``, with the input image in the prompt (kept in the unconditional prompt too).
    ``segment``: the answer is forced to start with the training wording's prefix and ``[Img]``; the generated tokens
        prompt the mask decoder over the input image's encoder features; the mask is mapped back to the image size.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from setok.cli import run
from setok.config import Config, load_config
from setok.data.geometry import letterbox_image, unletterbox_logits
from setok.data.multimodal import ImageRef
from setok.data.templates import EOS, Piece, prompt_pieces
from setok.data.transforms import image_transform
from setok.devices import add_device_argument, require_device
from setok.io import DataError, load_image
from setok.modeling.build import frozen_tokenizer_dtype, load_mllm, load_semhitok, load_setok
from setok.modeling.code_generation import generate_codes
from setok.modeling.generation import generate_image, generate_text, pack_prompts
from setok.modeling.hierarchical_codebook import unflatten_codes
from setok.modeling.llm import special_ids
from setok.modeling.mllm import Segment
from setok.modeling.patch_extent import logits_over_image
from setok.modeling.semhitok import Codes

log = logging.getLogger("evaluation.predict.mllm")

# The assistant's words before the object's tokens in referring-segmentation training samples (setok.data readers).
SEGMENT_PREFIX = "Sure, it is "


def to_pil(image: torch.Tensor) -> Any:
    """``(3, S, S)`` in [-1, 1] -> PIL RGB image."""
    from PIL import Image

    arr = ((image.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr)


class Predictor:
    """A trained multimodal LLM + its tokenizer, answering :class:`evaluation.tasks.Query` batches.

    SeTokIM reads and writes SeTok tokens; the unified MLLM on SemHiTok (``family == "semhitok"``) reads and writes
    flattened SemHiTok codes (sampled from the shared head with CFG, decoded by SemHiTok's pixel decoder) and has no
    mask decoder. Everything else (prompts, batching, text decoding, writers) is shared.
    """

    def __init__(self, model_path: Path, tokenizer_path: Path | None, *, device: str = "cpu") -> None:
        loaded = load_mllm(model_path)
        self.family, self.model, self.tokenizer = loaded.family, loaded.model, loaded.tokenizer
        self.mask_decoder, self.cfg = loaded.mask_decoder, loaded.config
        self.baseline = getattr(self.model, "connector", None) is not None  # Table 13: a connector only
        if not self.baseline and tokenizer_path is None:
            raise DataError("--tokenizer: the MLLM reads images through its trained tokenizer (tokenizer/model.pt)")
        self.setok = self.semhitok = None
        trained = None  # the tokenizer's own config
        if self.family == "semhitok":
            self.semhitok, trained = load_semhitok(tokenizer_path)
            self.size = self.cfg.tokenizer.semhitok.semantic.backbone.image_size
            self.token_dim = 0
        else:
            if not self.baseline:
                self.setok, _, trained = load_setok(tokenizer_path)
            self.size = self.cfg.tokenizer.backbone.image_size
            self.token_dim = self.cfg.tokenizer.merger.dim
        self.device = torch.device(device)
        # The frozen tokenizer at the precision it ran at in the MLLM's training stages (paper-notes S8).
        self.tokenizer_dtype = torch.float32 if trained is None else \
            frozen_tokenizer_dtype(self.cfg.mllm.tokenizer_precision, trained)
        for m in (self.model, self.mask_decoder):
            if m is not None:
                m.to(self.device)
        for m in (self.setok, self.semhitok):
            if m is not None:
                m.to(self.device, self.tokenizer_dtype)
        self.ids = special_ids(self.tokenizer)
        self.template = self.cfg.train_stage2.template
        self.transform = image_transform(self.size)
        self.num_slots = self.cfg.mllm.connector.num_tokens
        self.dtype = next(self.model.parameters()).dtype

    # ----------------------------------------------------------------------------------------------- helpers

    def _tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _images(self, images: Sequence[Any], *, letterbox: bool) -> Any:
        """Tokenize PIL images with SeTok. Returns its :class:`~setok.modeling.setok.Tokens` for ``(N, 3, S, S)``."""
        pixels = torch.stack([
            letterbox_image(im, self.size) if letterbox else self.transform(im) for im in images
        ]).to(self.device, self.tokenizer_dtype)
        return self.setok.tokenize(pixels)

    def _image_tokens(self, images: Sequence[Any]) -> list[torch.Tensor]:
        """What each PIL image becomes in the sequence: its valid SeTok tokens ``(C_i, D)``, or its flattened SemHiTok
        codes ``(h*w,)`` long."""
        if self.semhitok is not None:
            pixels = torch.stack([self.transform(im) for im in images]).to(self.device, self.tokenizer_dtype)
            return list(self.semhitok.flat(self.semhitok.encode(pixels)))
        tok = self._images(images, letterbox=False)
        return [t[v] for t, v in zip(tok.tokens, tok.valid)]

    def _segments(self, pieces: list[Piece], image_tokens: list[torch.Tensor]) -> list[Segment]:
        """Pieces -> model segments, images taking ``image_tokens`` in order (all read-only)."""
        out, k = [], 0
        for p in pieces:
            if p.content is EOS:
                out.append(Segment(ids=[self.ids["eos"]], train=False))
            elif isinstance(p.content, str):
                out.append(Segment(text=p.content, train=False))
            else:
                t = image_tokens[k]
                out.append(Segment(tokens=t.to(self.dtype), train=False) if t.is_floating_point()
                           else Segment(codes=t, train=False))
                k += 1
        return out

    def _pack(self, rows: list[list[Segment]]) -> Any:
        return pack_prompts(rows, tokenize=self._tokenize, img_start_id=self.ids["img_start"],
                            img_end_id=self.ids["img_end"], pad_id=self.ids["pad"], token_dim=self.token_dim,
                            bos_id=self.ids["bos"]).to(self.device)

    def _prompts(self, queries: Sequence[Any], image_tokens: list[torch.Tensor] | None, *, prefix: str = "",
                 drop: bool = False) -> Any:
        rows = []
        for i, q in enumerate(queries):
            user: tuple[Any, ...] = (q.prompt,) if q.image is None else (ImageRef(Path(q.image)), q.prompt)
            pieces = prompt_pieces(user, self.template, answer_prefix=prefix, drop_condition=drop)
            rows.append(self._segments(pieces, [] if image_tokens is None else [image_tokens[i]]))
        return self._pack(rows)

    def _generate_tokens(self, queries: Sequence[Any], image_tokens: list[torch.Tensor] | None, *,
                         prefix: str = "", guided: bool = True) -> list[torch.Tensor]:
        d = self.cfg.mllm.code_sampling if self.semhitok is not None else self.cfg.mllm.diffloss
        cond = self._prompts(queries, image_tokens, prefix=prefix)
        scale = d.cfg if guided else 1.0
        uncond = self._prompts(queries, image_tokens, prefix=prefix, drop=True) if scale != 1.0 else None
        g = torch.Generator(device=self.device).manual_seed(0)
        if self.semhitok is not None:
            grid = self.semhitok.grid
            return list(generate_codes(
                self.model, cond, num_tokens=grid[0] * grid[1], img_start_id=self.ids["img_start"],
                temperature=d.temperature, top_k=d.top_k, cfg=scale, uncond_prompts=uncond, generator=g,
                pad_id=self.ids["pad"],
            ))
        return generate_image(
            self.model, cond, max_tokens=self.cfg.train_stage2.max_image_tokens, img_start_id=self.ids["img_start"],
            img_end_id=self.ids["img_end"], temperature=d.temperature, cfg=scale, num_steps=d.sample_steps,
            uncond_prompts=uncond, generator=g, pad_id=self.ids["pad"],
        )

    def _pad(self, tokens: list[torch.Tensor], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``N`` tensors ``(C_i, D)`` -> ``(N, C, D)`` zero-padded ``dtype`` tokens and ``(N, C)`` validity."""
        c = max(t.shape[0] for t in tokens)
        padded = torch.zeros(len(tokens), c, self.token_dim, device=self.device, dtype=dtype)
        valid = torch.zeros(len(tokens), c, dtype=torch.bool, device=self.device)
        for i, t in enumerate(tokens):
            padded[i, : t.shape[0]], valid[i, : t.shape[0]] = t.to(dtype), True
        return padded, valid

    def _decode_images(self, tokens: list[torch.Tensor]) -> list[Any]:
        if self.semhitok is not None:
            sem, pix = unflatten_codes(torch.stack(tokens), self.semhitok.sub_codebook_size)
            codes = Codes(semantic=sem, pixel=None if self.semhitok.sghc is None else pix, grid=self.semhitok.grid)
            return [to_pil(img) for img in self.semhitok.decode(codes)]
        return [to_pil(img) for img in self.setok.detokenize(*self._pad(tokens, self.tokenizer_dtype))]

    # ----------------------------------------------------------------------------------------------- per kind

    def _reads_only(self, kind: str) -> None:
        if self.baseline:
            raise DataError(f"{self.cfg.name}: a connector baseline (Table 13) reads images only; it cannot {kind}")

    @torch.no_grad()
    def answer(self, queries: Sequence[Any]) -> list[str]:
        prompts = self.answer_prompts(queries)
        ids = generate_text(self.model, prompts, max_new_tokens=max(q.max_new_tokens for q in queries),
                            eos_id=self.ids["eos"], pad_id=self.ids["pad"])
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in ids]

    @torch.no_grad()
    def answer_prompts(self, queries: Sequence[Any]) -> Any:
        """The packed prompts of text answers: images tokenized (or, for a connector baseline, their patch features in
        ``extras["features"]``) and placed in the template. This is all the model reads before the first answer
        token, so it is what :mod:`evaluation.predict.cost` counts."""
        tokens, feats = None, None
        if any(q.image is not None for q in queries):
            if not all(q.image is not None for q in queries):
                raise ValueError("a batch mixes queries with and without an image")
            paths = [Path(q.image) for q in queries]
            if self.baseline:  # placeholders: the connector fills the image positions from the patch features
                vision_dtype = next(self.model.vision.parameters()).dtype  # float32 beside a bf16 LLM
                pixels = torch.stack([self.transform(load_image(p)) for p in paths]).to(self.device, vision_dtype)
                feats = self.model.vision(pixels)  # (N, h, w, D)
                tokens = [torch.zeros(self.num_slots, self.token_dim)] * len(paths)
            else:
                tokens = self._image_tokens([load_image(p) for p in paths])
        prompts = self._prompts(queries, tokens)
        if feats is not None:
            prompts.extras["features"] = feats
        return prompts

    @torch.no_grad()
    def generate(self, queries: Sequence[Any]) -> list[Any]:
        self._reads_only("generate images")
        return self._decode_images(self._generate_tokens(queries, None))

    @torch.no_grad()
    def edit(self, queries: Sequence[Any]) -> list[Any]:
        self._reads_only("edit images")
        tokens = self._image_tokens([load_image(Path(q.image)) for q in queries])
        return self._decode_images(self._generate_tokens(queries, tokens))

    @torch.no_grad()
    def segment(self, queries: Sequence[Any]) -> list[np.ndarray]:
        self._reads_only("segment")
        if self.mask_decoder is None:
            raise DataError(f"{self.cfg.name}: the unified MLLM on SemHiTok has no mask decoder; it cannot segment")
        images = [load_image(Path(q.image)) for q in queries]
        tok = self._images(images, letterbox=True)
        generated = self._generate_tokens(queries, [t[v] for t, v in zip(tok.tokens, tok.valid)],
                                          prefix=SEGMENT_PREFIX, guided=False)
        md_dtype = next(self.mask_decoder.parameters()).dtype
        prompts, valid = self._pad(generated, md_dtype)
        logits = self.mask_decoder(tok.features.to(md_dtype), prompts, valid)[:, 0]  # (N, 4h, 4w), letterboxed
        masks = []
        for lg, im in zip(logits, images):
            square = logits_over_image(lg, tok.grid, self.size)  # (S, S): the decoder covers the patch grid's pixels
            masks.append((unletterbox_logits(square, *im.size) > 0).cpu().numpy())
        return masks


Runner = dict[str, Callable[[list[Any]], list[Any]]]  # query kind -> batch of queries -> outputs


def trained_runner(model: Path | None, tokenizer: Path | None, config: Path, device: str) -> Runner:
    """A trained MLLM's :class:`Predictor`, per query kind."""
    if model is None:
        raise DataError(f"--model: required for {config} (a trained variant; only a reference variant, "
                        "reference.kind set, runs without one)")
    predictor = Predictor(model, tokenizer, device=device)
    return {"answer": predictor.answer, "caption": predictor.answer, "generate": predictor.generate,
            "edit": predictor.edit, "segment": predictor.segment}


def reference_runner(cfg: Config, queries: Sequence[Any], device: str) -> Runner:
    """A reference checkpoint's :class:`~evaluation.predict.reference.ReferencePredictor` (text kinds only; other
    kinds are refused before the checkpoint loads)."""
    from evaluation.predict.reference import ReferencePredictor, model_label, require_text_kinds

    require_text_kinds(queries, model_label(cfg))
    predictor = ReferencePredictor(cfg, device=device)
    return {"answer": predictor.answer, "caption": predictor.answer}


def predict(
    model: Path | None, tokenizer: Path | None, config: Path, benchmark: str, out: Path, *,
    batch_size: int | None = None, device: str = "cpu", shard: int | None = None, num_shards: int = 1,
) -> Path:
    """Answer every query of ``benchmark`` and write the official predictions to ``out``; or, with ``shard``, answer
    that shard's batches (:mod:`evaluation.predict.shards`) and write the shard folder ``out`` for
    :mod:`evaluation.predict.merge_shards`.

    ``model`` (and ``tokenizer``) name the trained MLLM; a reference variant's config names its checkpoint itself,
    so both are ignored there.

    Raises:
        DataError: ``model`` missing for a trained variant, an unconfigured benchmark, a bad shard request, or
            (reference variants) queries that want images or masks back.
    """
    from evaluation.predict.shards import batch_plan, fingerprint, shard_batches, write_shard
    from evaluation.tasks import build_task

    cfg = load_config(config)
    if benchmark not in cfg.benchmarks:
        raise DataError(f"{config}: benchmark {benchmark!r} is not configured (known: {', '.join(cfg.benchmarks)})")
    task = build_task(benchmark, cfg.benchmarks[benchmark])
    queries = task.queries()
    size = batch_size or cfg.eval.batch_size
    plan = batch_plan(queries, size)
    if shard is not None:
        plan = shard_batches(plan, shard, num_shards)
    elif num_shards != 1:
        raise DataError(f"--num-shards {num_shards}: give --shard too (which of the {num_shards} shards to run)")
    run_kind = reference_runner(cfg, queries, device) if cfg.reference.enabled else \
        trained_runner(model, tokenizer, config, device)
    outputs: dict[int, Any] = {}  # query index -> output
    name = benchmark if shard is None else f"{benchmark} {shard}/{num_shards}"
    bar = tqdm(total=sum(len(b) for b in plan), desc=f"predict[{name}]", file=sys.stderr)
    for batch in plan:
        chunk = [queries[k] for k in batch]
        outputs.update(zip(batch, run_kind[chunk[0].kind](chunk)))
        bar.update(len(chunk))
    bar.close()
    if shard is not None:
        path = write_shard(out, outputs, benchmark=benchmark, shard=shard, num_shards=num_shards,
                           total=len(queries), batch_size=size, queries_sha=fingerprint(queries))
    else:
        path = task.write({queries[k].id: o for k, o in outputs.items()}, out)
    log.info("wrote %d predictions of %s to %s", len(outputs), name, path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.predict.mllm", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="SeTokIM model.pt (results/<v>/stage2/model.pt); not used by a "
                    "reference variant (its config names the checkpoint)")
    ap.add_argument("--tokenizer", type=Path,
                    help="SeTok model.pt (results/<v>/tokenizer/model.pt); not used by connector baselines")
    ap.add_argument("--config", required=True, type=Path, help="resolved config with the benchmark's inputs")
    ap.add_argument("--benchmark", required=True)
    ap.add_argument("--out", required=True, type=Path, help="the predictions file or folder the scorer reads")
    ap.add_argument("--batch-size", type=int)
    add_device_argument(ap)
    ap.add_argument("--shard", type=int,
                    help="run only this shard's batches (0-based) and write a shard folder to --out "
                         "(merge: python -m evaluation.predict.merge_shards)")
    ap.add_argument("--num-shards", type=int, default=1, help="how many shards the benchmark is split into")
    args = ap.parse_args(argv)
    return run(lambda: predict(args.model, args.tokenizer, args.config, args.benchmark, args.out,
                               batch_size=args.batch_size, device=require_device(args.device), shard=args.shard,
                               num_shards=args.num_shards))


if __name__ == "__main__":
    raise SystemExit(main())
