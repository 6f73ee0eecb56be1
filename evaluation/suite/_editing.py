"""Instruction-based image editing, scored like MagicBrush's ``evaluation/image_eval.py``: the base of
:mod:`evaluation.suite.magicbrush`, :mod:`evaluation.suite.evr` and :mod:`evaluation.suite.ma5k`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from evaluation.bootstrap import means_with_ci95
from evaluation.metrics.editing import cosine_similarities, l1_distance, l2_distance, to_unit_float
from evaluation.readers import preview
from evaluation.readers.editing import EditPair, load_pair, read_captions, read_edit_pairs
from evaluation.registry import Benchmark, Metric, PathLike, ScoreResult
from setok.io import DataError

if TYPE_CHECKING:
    from evaluation.tasks.base import BenchmarkTask
    from setok.config import BenchmarkConfig
    from setok.data.layout import Layout

ALL_METRICS = ("l1", "l2", "clip_i", "dino", "clip_t", "lpips")
DEFAULT_METRICS = ("l1", "l2", "clip_i", "dino", "lpips")  # + clip_t when --captions is given

FORMATS = """
references (--annotations): a folder of target images (.png .jpg .jpeg .bmp .webp; sub-folders allowed).
predictions (--predictions): a folder of generated images with the same relative paths, e.g.
    targets/139/139-output1.png  <->  generated/139/139-output1.png   (or flat: targets/0001.png <-> generated/0001.png)
  Every target needs exactly one generated image and vice versa: missing and extra files are errors (named).
  For MagicBrush's official settings, put each session's last target turn (final-turn) or every turn (all-turn)
  under the same name on both sides; the official script's own generated names (iter_N.png, inde_N.png) must be
  renamed to the targets' names.
captions (--captions, needed for clip_t only): JSON, flat {"<file name or relative path>": "caption"} or MagicBrush's
  global_descriptions.json {"<session>": {"<session>-output1.png": "caption", ...}}.

Metrics (--metrics, comma-separated subset; default l1,l2,clip_i,dino,lpips, plus clip_t with --captions):
  l1, l2   mean |g - t| and mean (g - t)^2 (no square root) over all pixels and channels, images as [0, 1] floats,
           the generated image resized to the target's size with PIL bicubic; per image, then averaged over images
           (MagicBrush eval_distance: nn.L1Loss / nn.MSELoss). Needs no model.
  clip_i   cosine of CLIP image embeddings of generated (at its own size) vs target; default OpenAI CLIP ViT-B/32
           (open_clip ViT-B-32-quickgelu, pretrained "openai").
  dino     cosine of DINO ViT-S/16 CLS features (timm vit_small_patch16_224.dino), resize 256 + centre crop 224.
  clip_t   cosine of the generated image's CLIP embedding and the target caption's CLIP text embedding.
  lpips    LPIPS (lpips package, --lpips-net alex) of the resized generated image vs the target, inputs in [-1, 1].
All values raw (no scaling); l1, l2, lpips lower is better. Model weights download on first use (cache them for
offline runs; --clip-pretrained and --dino-weights also take local files).
Per-sample rows: {"id": relative path, "resized": bool, <metric>: value, ...}. ci95: percentile bootstrap over
image pairs (default 1000 resamples)."""


def parse_metrics(metrics: str | list[str] | tuple[str, ...] | None, has_captions: bool) -> list[str]:
    """The requested metric names in canonical order (``clip-i`` and ``clip_i`` both accepted).

    Raises:
        DataError: Unknown names, or ``clip_t`` without captions.
    """
    if metrics is None or metrics == "":
        wanted = list(DEFAULT_METRICS) + (["clip_t"] if has_captions else [])
    else:
        items = metrics.split(",") if isinstance(metrics, str) else list(metrics)
        wanted = [m.strip().lower().replace("-", "_") for m in items if m.strip()]
    unknown = [m for m in wanted if m not in ALL_METRICS]
    if unknown or not wanted:
        raise DataError(f"--metrics: unknown {', '.join(unknown) or '(empty)'}; choose from {','.join(ALL_METRICS)}")
    if "clip_t" in wanted and not has_captions:
        raise DataError("--metrics: clip_t needs --captions (the target captions JSON)")
    return [m for m in ALL_METRICS if m in wanted]


def _cosines(ids: list[str], a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    try:
        return cosine_similarities(a, b)
    except ValueError as e:
        raise DataError(f"{what} embeddings of {preview(ids)}: {e}") from None


def _score_chunk(
    pairs: list[EditPair], names: list[str], models: Any, captions: dict[str, str] | None
) -> list[dict[str, Any]]:
    """Per-sample rows for one chunk of pairs (images loaded once; embeddings batched)."""
    ids = [p.id for p in pairs]
    loaded = [load_pair(p) for p in pairs]
    rows: list[dict[str, Any]] = [{"id": i, "resized": lp.resized} for i, lp in zip(ids, loaded)]
    for row, lp in zip(rows, loaded):
        if "l1" in names or "l2" in names:
            g, t = to_unit_float(lp.generated_resized), to_unit_float(lp.target_pixels)
            if "l1" in names:
                row["l1"] = l1_distance(g, t)
            if "l2" in names:
                row["l2"] = l2_distance(g, t)
    columns: dict[str, np.ndarray] = {}
    if "clip_i" in names or "clip_t" in names:
        gen = models.clip.embed_images([lp.generated for lp in loaded])
        if "clip_i" in names:
            tgt = models.clip.embed_images([lp.target for lp in loaded])
            columns["clip_i"] = _cosines(ids, gen, tgt, "CLIP image")
        if "clip_t" in names:
            assert captions is not None
            txt = models.clip.embed_texts([captions[i] for i in ids])
            columns["clip_t"] = _cosines(ids, gen, txt, "CLIP image/text")
    if "dino" in names:
        gen = models.dino.embed_images([lp.generated for lp in loaded])
        tgt = models.dino.embed_images([lp.target for lp in loaded])
        columns["dino"] = _cosines(ids, gen, tgt, "DINO")
    if "lpips" in names:
        columns["lpips"] = models.lpips.distances(
            [lp.generated_resized for lp in loaded], [lp.target_pixels for lp in loaded]
        )
    for name, values in columns.items():
        for row, v in zip(rows, values):
            row[name] = float(v)
    return rows


class EditingBenchmark(Benchmark):
    """Shared scorer, layout check and task of the editing benchmarks (each registered in its own module)."""

    metrics = (
        Metric("l1", higher_is_better=False, help="mean absolute pixel difference, [0, 1] scale"),
        Metric("l2", higher_is_better=False, help="mean squared pixel difference, [0, 1] scale"),
        Metric("clip_i", higher_is_better=True, help="CLIP image-image cosine (raw)"),
        Metric("dino", higher_is_better=True, help="DINO ViT-S/16 image-image cosine (raw)"),
        Metric("clip_t", higher_is_better=True, help="CLIP image-caption cosine (raw)"),
        Metric("lpips", higher_is_better=False, help="LPIPS distance (raw)"),
    )

    missing_annotations = "the folder of target images"

    # the official input list of a pair-list benchmark: (input image, output image, instruction) keys and the file
    pair_keys: ClassVar[tuple[str, str, str]] = ("input", "output", "instruction")
    pair_file: ClassVar[str] = ""

    headline = "l1"
    output = "image"
    scoring_needs_gpu = True  # CLIP-I, DINO and LPIPS embedders

    @classmethod
    def task(cls, cfg: BenchmarkConfig) -> BenchmarkTask:
        """The ``targets/`` folder (annotations), the input list (inputs) and ``images/``: EVR ``test.json``, MA5K
        ``annotations/test_sess_1.json``, read with :attr:`pair_keys` and :meth:`instruction`."""
        from evaluation.tasks.editing import PairListTask

        return PairListTask(cls.name, input_key=cls.pair_keys[0], output_key=cls.pair_keys[1],
                            instruction=cls.instruction, **cls.edit_paths(cfg))

    @classmethod
    def edit_paths(cls, cfg: BenchmarkConfig) -> dict[str, Any]:
        """The task's configured paths: ``targets`` (annotations), ``inputs``, ``images`` and the ``limit``."""
        from evaluation.tasks.base import configured

        return {"targets": configured(cls.name, cfg, "annotations", folder=True),
                "inputs": configured(cls.name, cfg, "inputs"),
                "images": configured(cls.name, cfg, "images", folder=True), "limit": cfg.limit}

    @staticmethod
    def instruction(record: dict[str, Any]) -> Any:
        """The edit instruction of one record of the input list (``None`` when there is none)."""
        return record.get("instruction")

    @classmethod
    def check_layout(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """The folder of target images holds an image; then the benchmark's inputs (:meth:`check_inputs`)."""
        from setok.data.layout import first_image_below

        expected = "a folder of target images (<session>/<file> or flat)"
        folder = lay.folder(lay.path(spec, "annotations"), expected)
        image = first_image_below(folder)
        if image is None:
            raise lay.error(folder, "has no images", expected)
        lay.seen(image)
        cls.check_inputs(lay, spec)

    @classmethod
    def check_inputs(cls, lay: Layout, spec: Mapping[str, Any]) -> None:
        """EVR / MA5K: ``pair_file``, a JSON list of :attr:`pair_keys` records; the first input image exists."""
        keys, what = cls.pair_keys, cls.pair_file
        expected = f"{what} [{{{', '.join(repr(k) for k in keys)}}}]"
        path = lay.path(spec, "inputs")
        records = lay.records(path, lay.json(path, expected, list), keys, expected, "records")
        images = lay.folder(lay.path(spec, "images"), f"the {what} images")
        lay.sample(images / str(records[0][keys[0]]), f"the {what} images", images)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add ``--metrics``, ``--captions`` and the model options."""
        from evaluation.features.embedders import (
            PAPER_CLIP_MODEL,
            PAPER_CLIP_PRETRAINED,
            PAPER_DINO_MODEL,
            PAPER_LPIPS_NET,
        )

        parser.add_argument("--metrics", default=None, help=f"comma-separated subset of {','.join(ALL_METRICS)}")
        parser.add_argument("--captions", default=None, help="target captions JSON (for clip_t)")
        parser.add_argument("--clip-model", default=PAPER_CLIP_MODEL, help="open_clip architecture")
        parser.add_argument("--clip-pretrained", default=PAPER_CLIP_PRETRAINED, help="open_clip weight tag or file")
        parser.add_argument("--dino-model", default=PAPER_DINO_MODEL, help="timm DINO model")
        parser.add_argument("--dino-weights", default=None, help="local DINO checkpoint instead of the download")
        parser.add_argument("--lpips-net", default=PAPER_LPIPS_NET, help="LPIPS backbone: alex, vgg or squeeze")
        parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
        parser.add_argument("--batch-size", type=int, default=32, help="image pairs per forward pass")

    def _score(
        self, predictions: Path, annotations: Path, *, n_bootstrap: int, seed: int,
        metrics: str | list[str] | None = None, captions: PathLike | None = None, models: Any = None,
        clip_model: str | None = None, clip_pretrained: str | None = None, dino_model: str | None = None,
        dino_weights: str | None = None, lpips_net: str | None = None, device: str | None = None, batch_size: int = 32,
        **opts: Any
    ) -> ScoreResult:
        names = parse_metrics(metrics, captions is not None)
        if batch_size < 1:
            raise DataError(f"--batch-size must be >= 1, got {batch_size}")
        pairs = read_edit_pairs(predictions, annotations)
        caps = read_captions(captions, [p.id for p in pairs]) if "clip_t" in names and captions else None
        if models is None:
            from evaluation.features.embedders import build_editing_models

            settings = {
                "clip_model": clip_model,
                "clip_pretrained": clip_pretrained,
                "dino_model": dino_model,
                "dino_weights": dino_weights,
                "lpips_net": lpips_net,
            }
            models = build_editing_models(
                names,
                **{k: v for k, v in settings.items() if v is not None},
                device=device,
                batch_size=batch_size,
            )
        needs = {"clip_i": "clip", "clip_t": "clip", "dino": "dino", "lpips": "lpips"}
        lacking = sorted({needs[m] for m in names if m in needs and getattr(models, needs[m]) is None})
        if lacking:
            raise ValueError(f"models lack {', '.join(lacking)} needed by metrics {','.join(names)}")
        rows: list[dict[str, Any]] = []
        for start in range(0, len(pairs), batch_size):
            rows.extend(_score_chunk(pairs[start : start + batch_size], names, models, caps))
        values, ci95 = means_with_ci95(
            {m: np.array([r[m] for r in rows]) for m in names},
            n_boot=n_bootstrap,
            seed=seed,
        )
        return ScoreResult(metrics=values, n=len(rows), rows=rows, ci95=ci95)
